"""A variational autoencoder trained by backprop, as an update rule (a baseline).

``vae``: the base network is the encoder; linear heads map its top-layer
features ``f`` to the posterior mean and log-variance of a latent ``z`` with as
many dimensions as ``f``, and a linear decoder maps ``z`` back to the input,
with a Gaussian likelihood whose scale ``sigma`` (one scalar) is learned::

    mu = f W_mu + b_mu,  log s2 = f W_s + b_s,  z = mu + exp(log s2 / 2) eps
    L = 1/B sum_b [ |x_b - (z_b D + d)|^2 / (2 sigma^2) + n_in log sigma
                    + KL(N(mu_b, s2_b) || N(0, I)) ]

(the negative ELBO per example, up to the constant ``n_in/2 log 2 pi``). The
decoder is linear, like the ``ae_sgd`` autoencoder's, so the two differ only in
the objective. Options are those of :class:`metaunsup.rules.hand.AutoencoderConfig`
(learning rate, "sgd" or "adam", decoder init scale). The probed representation
is the base network's top layer ``f``, as for every other method.
(D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014.)
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metaunsup.models import MLPSpec, forward
from metaunsup.rules.base import register_rule
from metaunsup.rules.hand import AutoencoderConfig, with_config
from metaunsup.types import Array, LayerParams, MetaParams, Metrics, Params, PRNGKey

LOGVAR_CLIP = 10.0  # |log s2| is clipped, so exp() cannot overflow early in training


class VAEState(NamedTuple):
    """State of the VAE rule.

    Attributes:
      heads: ``(w_mu [K, K], b_mu [K], w_s [K, K], b_s [K])``, K = top width.
      decoder: ``(w [K, n_in], b [n_in])``.
      log_sigma: scalar, log of the likelihood's scale.
      opt_state: the optax state over the trainable tree (see ``VAERule``).
    """

    heads: tuple[Array, Array, Array, Array]
    decoder: tuple[Array, Array]
    log_sigma: Array
    opt_state: Any


def negative_elbo(trainable, v: tuple[Array, ...], x: Array, noise: Array,
                  net: MLPSpec) -> tuple[Array, Array]:
    """Mean negative ELBO per example (module doc) and its KL part.

    Args:
      trainable: ``(layers, heads, decoder, log_sigma)``; ``layers`` is a tuple
        of ``(w, b)`` per encoder layer.
      v: backward weights of each layer (unused by the loss).
      x: [B, n_in] batch.
      noise: [B, K] standard normal draws (the reparameterisation's eps).
      net: the encoder's description.

    Returns:
      ``(loss, kl)``, both averaged over the batch.
    """
    layers, (w_mu, b_mu, w_s, b_s), (dec_w, dec_b), log_sigma = trainable
    params = tuple(LayerParams(w=w, b=b, v=v_l) for (w, b), v_l in zip(layers, v))
    f = forward(params, x, net).post[-1]
    mu = f @ w_mu + b_mu
    logvar = jnp.clip(f @ w_s + b_s, -LOGVAR_CLIP, LOGVAR_CLIP)
    z = mu + jnp.exp(0.5 * logvar) * noise
    x_hat = z @ dec_w + dec_b
    nll = (0.5 * jnp.sum(jnp.square(x - x_hat), axis=1) * jnp.exp(-2.0 * log_sigma)
           + x.shape[1] * log_sigma)
    kl = 0.5 * jnp.sum(jnp.square(mu) + jnp.exp(logvar) - 1.0 - logvar, axis=1)
    return jnp.mean(nll + kl), jnp.mean(kl)


@dataclasses.dataclass(frozen=True)
class VAERule:
    """Backprop on :func:`negative_elbo`; updates W, b of every layer, heads, decoder, sigma.

    Metrics: ``neg_elbo`` (per example, before the update) and ``kl``.
    """

    name: ClassVar[str] = "vae"
    net: MLPSpec
    config: AutoencoderConfig = AutoencoderConfig(lr=1e-3, optimizer="adam")

    def init_meta_params(self, key: PRNGKey) -> MetaParams:
        del key
        return {}

    def _trainable(self, params: Params, state: VAEState):
        return (tuple((p.w, p.b) for p in params), state.heads, state.decoder, state.log_sigma)

    def init_state(self, meta_params: MetaParams, params: Params, *, key: PRNGKey) -> VAEState:
        del meta_params
        k = self.net.widths[-1]
        k_mu, k_dec = jax.random.split(key)
        std = 1.0 / jnp.sqrt(k)
        heads = (std * jax.random.normal(k_mu, (k, k), jnp.float32), jnp.zeros((k,), jnp.float32),
                 jnp.zeros((k, k), jnp.float32), jnp.zeros((k,), jnp.float32))
        dec_std = self.config.decoder_init_scale * std
        decoder = (dec_std * jax.random.normal(k_dec, (k, self.net.n_in), jnp.float32),
                   jnp.zeros((self.net.n_in,), jnp.float32))
        state = VAEState(heads, decoder, jnp.zeros((), jnp.float32), None)
        opt_state = self.config.make_optimizer().init(self._trainable(params, state))
        return state._replace(opt_state=opt_state)

    def step(self, meta_params: MetaParams, params: Params, state: VAEState, x: Array, *,
             key: PRNGKey) -> tuple[Params, VAEState, Metrics]:
        del meta_params
        opt = self.config.make_optimizer()
        trainable = self._trainable(params, state)
        v = tuple(p.v for p in params)
        noise = jax.random.normal(key, (x.shape[0], self.net.widths[-1]), x.dtype)
        (loss, kl), grads = jax.value_and_grad(negative_elbo, has_aux=True)(
            trainable, v, x, noise, self.net)
        updates, opt_state = opt.update(grads, state.opt_state, trainable)
        layers, heads, decoder, log_sigma = optax.apply_updates(trainable, updates)
        new_params = tuple(p._replace(w=w, b=b) for p, (w, b) in zip(params, layers))
        return new_params, VAEState(heads, decoder, log_sigma, opt_state), {
            "neg_elbo": loss, "kl": kl}


def make_vae(net: MLPSpec, config: AutoencoderConfig | None = None, **overrides) -> VAERule:
    """The VAE rule; default Adam, lr 1e-3; e.g. ``make_vae(net, lr=3e-4)``."""
    if config is None:
        config = VAERule.config
    return VAERule(net, with_config(AutoencoderConfig, config, overrides, "vae"))


register_rule("vae", make_vae)
