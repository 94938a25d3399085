"""Hand-designed unsupervised update rules: references and baselines.

Three rules (and ``none``, which never changes the network) in the
:class:`~metaunsup.rules.base.UpdateRule` interface, so they
run through the same inner loop, evaluation and benchmarks as the learned rule
(Metz et al. 2019 compare the learned rule with such hand-designed objectives):

- ``sanger``: the generalised Hebbian algorithm (T. D. Sanger, "Optimal
  unsupervised learning in a single-layer linear feedforward neural network",
  Neural Networks 1989), applied to every layer independently.
- ``oja``: Oja's symmetric subspace rule (E. Oja, "Neural networks, principal
  components, and subspaces", 1989), likewise layer-wise.
- ``ae_sgd``: backpropagation on an autoencoder's squared reconstruction
  error, with a linear decoder from the representation (top layer) back to
  the input, by SGD or Adam.

None of them has meta-parameters: ``init_meta_params`` returns ``{}``, which has
no leaves, so gradients with respect to it are empty and every code path that
takes ``meta_params`` accepts it. None of them touches the backward weights V.
"""
from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import optax

from metaunsup.errors import UserError
from metaunsup.models import MLPSpec, forward
from metaunsup.optim import adam
from metaunsup.rules.base import register_rule
from metaunsup.types import Array, LayerParams, MetaParams, Metrics, Params, PRNGKey
from metaunsup.values import cast_fields

# --------------------------------------------------------------------------
# Hebbian principal-subspace rules (Sanger / Oja), layer-wise.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class HebbianConfig:
    """Options of the Sanger and Oja rules.

    Attributes:
      lr: step size eta, in (0, 1]. The rules are stable roughly when
        ``eta * lambda_max < 1``, ``lambda_max`` being the largest eigenvalue
        of a layer's input covariance.
      max_delta: bound on every element of a step, ``|dW_ij| <= max_delta``
        (clipping; it leaves the fixed points unchanged, since these have
        ``dW = 0``, and keeps early steps with large activations bounded).
      center: subtract the batch mean of each layer's input before the rule,
        so that it finds principal components of the covariance rather than of
        the uncentred second moment.
    """

    lr: float = 1e-3
    max_delta: float = 1e-2
    center: bool = True

    def __post_init__(self):
        if not 0 < self.lr <= 1:
            raise UserError(f"hebbian lr must be in (0, 1], got {self.lr}")
        if not self.max_delta > 0:
            raise UserError(f"hebbian max_delta must be > 0, got {self.max_delta}")


def hebbian_delta(w: Array, x: Array, *, lr: float, triangular: bool, center: bool) -> Array:
    """One (unclipped) step of Sanger's or Oja's subspace rule for one layer.

    Derivation. In the usual row convention (components as rows of
    ``M = W^T`` [k, n], output ``y = M x``), Sanger's rule is
    ``dM = eta (y x^T - LT(y y^T) M)`` with ``LT`` the lower triangle including
    the diagonal; Oja's subspace rule drops ``LT``. Transposing to our column
    convention (``W`` [n, k], components as columns, ``y = x W``) and averaging
    over the batch:

        C_xy = X^T Y / B          [n, k]
        C_yy = Y^T Y / B          [k, k]
        dW   = eta (C_xy - W UT(C_yy))        (Sanger; UT = upper triangle)
        dW   = eta (C_xy - W C_yy)            (Oja subspace)

    since ``(LT(A) M)^T = M^T LT(A)^T = W UT(A)`` for symmetric ``A``. Column
    ``i`` of the Sanger step is ``E[y_i (x - sum_{j<=i} y_j w_j)]``: unit ``i``
    learns on the input with the first ``i-1`` components removed, so the
    columns converge to the top-k unit eigenvectors of ``E[x x^T]`` (the
    covariance when ``x`` is centred) in order; with Oja's rule they converge
    to an orthonormal basis of the same subspace, in no particular rotation.

    Args:
      w: [n, k] the layer's forward weights.
      x: [B, n] the layer's inputs.
      lr: step size eta.
      triangular: True for Sanger, False for Oja's subspace rule.
      center: subtract the batch mean of ``x`` first.

    Returns:
      [n, k] the step ``dW`` (to be added to ``w``).
    """
    if center:
        x = x - jnp.mean(x, axis=0)
    batch = x.shape[0]
    y = x @ w  # [B, k]: the layer's pre-batch-norm projection.
    c_xy = x.T @ y / batch
    c_yy = y.T @ y / batch
    if triangular:
        c_yy = jnp.triu(c_yy)
    return lr * (c_xy - w @ c_yy)


@dataclasses.dataclass(frozen=True)
class HebbianRule:
    """Base of Sanger's and Oja's rules, applied to every layer.

    Each layer ``l`` treats its own input ``x^l`` (the network input for the
    first layer, the previous layer's post-activations above it, computed by
    the current parameters with batch norm) and its *pre-batch-norm*
    projection ``y^l = x^l W^l`` as the linear neuron of the classical rule.
    All layers are updated simultaneously from one forward pass. The bias b
    and the backward weights V are left untouched.
    """

    name: ClassVar[str] = "hebbian"
    triangular: ClassVar[bool] = True
    net: MLPSpec
    config: HebbianConfig = HebbianConfig()

    def init_meta_params(self, key: PRNGKey) -> MetaParams:
        del key
        return {}

    def init_state(self, meta_params: MetaParams, params: Params, *, key: PRNGKey) -> tuple:
        del meta_params, params, key
        return ()

    def step(self, meta_params: MetaParams, params: Params, state: tuple, x: Array, *,
             key: PRNGKey) -> tuple[Params, tuple, Metrics]:
        del meta_params, key
        cfg = self.config
        acts = forward(params, x, self.net)
        new_params, sq_sum, n_el = [], 0.0, 0
        for layer, x_l in zip(params, acts.inputs):
            dw = hebbian_delta(layer.w, x_l, lr=cfg.lr, triangular=self.triangular,
                               center=cfg.center)
            dw = jnp.clip(dw, -cfg.max_delta, cfg.max_delta)
            new_params.append(layer._replace(w=layer.w + dw))
            sq_sum = sq_sum + jnp.sum(jnp.square(dw))
            n_el += dw.size
        metrics = {"update_rms": jnp.sqrt(sq_sum / n_el)}
        return tuple(new_params), state, metrics


@dataclasses.dataclass(frozen=True)
class SangerRule(HebbianRule):
    """Sanger's generalised Hebbian algorithm: columns -> ordered principal components."""

    name: ClassVar[str] = "sanger"
    triangular: ClassVar[bool] = True


@dataclasses.dataclass(frozen=True)
class OjaRule(HebbianRule):
    """Oja's symmetric subspace rule: columns -> an orthonormal principal-subspace basis."""

    name: ClassVar[str] = "oja"
    triangular: ClassVar[bool] = False


# --------------------------------------------------------------------------
# Autoencoder trained by backpropagation.
# --------------------------------------------------------------------------

OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class AutoencoderConfig:
    """Options of the autoencoder-by-backprop rule.

    Attributes:
      lr: learning rate of the optimizer.
      optimizer: "sgd" (plain ``p <- p - lr * grad``) or "adam".
      b1, b2, eps: Adam's moment decay rates and denominator floor.
      decoder_init_scale: decoder weights start as N(0, s^2 / widths[-1]).
    """

    lr: float = 1e-2
    optimizer: str = "sgd"
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    decoder_init_scale: float = 1.0

    def __post_init__(self):
        if not self.lr > 0:
            raise UserError(f"autoencoder lr must be > 0, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")

    def make_optimizer(self) -> optax.GradientTransformation:
        if self.optimizer == "adam":
            return adam(self.lr, b1=self.b1, b2=self.b2, eps=self.eps)
        return optax.sgd(self.lr)


class AEState(NamedTuple):
    """State of the autoencoder rule.

    Attributes:
      decoder_w: [widths[-1], n_in] linear decoder weights.
      decoder_b: [n_in] decoder bias.
      opt_state: the optax state over ``(((w, b) per layer), (decoder_w,
        decoder_b))``; leafless for SGD.
    """

    decoder_w: Array
    decoder_b: Array
    opt_state: Any


def reconstruction_loss(trainable, v: tuple[Array, ...], x: Array, net: MLPSpec) -> Array:
    """Squared reconstruction error per example, summed over input dimensions.

    ``L = 1/B sum_{b,i} (xhat_bi - x_bi)^2 = n_in * MSE`` with
    ``xhat = features(x) @ decoder_w + decoder_b``; batch norm uses the
    batch's statistics, as in the forward pass the rules see. Summing over
    inputs (not averaging) keeps per-weight gradients O(1), so ordinary SGD
    learning rates (1e-2) work for any input size.

    Args:
      trainable: ``(layers, (decoder_w, decoder_b))`` where ``layers`` is a
        tuple of ``(w, b)`` per layer.
      v: the backward weights of each layer (not used by the loss; needed to
        rebuild :class:`LayerParams`).
      x: [B, n_in] batch.
      net: the encoder's description.
    """
    layers, (dec_w, dec_b) = trainable
    params = tuple(LayerParams(w=w, b=b, v=v_l) for (w, b), v_l in zip(layers, v))
    z = forward(params, x, net).post[-1]
    x_hat = z @ dec_w + dec_b
    return jnp.sum(jnp.square(x_hat - x)) / x.shape[0]


@dataclasses.dataclass(frozen=True)
class AutoencoderRule:
    """Backprop on :func:`reconstruction_loss`; updates W, b of every layer and the decoder.

    Metrics: ``recon_mse``, the mean squared error per input dimension
    (``L / n_in``) before the update.
    """

    name: ClassVar[str] = "ae_sgd"
    net: MLPSpec
    config: AutoencoderConfig = AutoencoderConfig()

    def init_meta_params(self, key: PRNGKey) -> MetaParams:
        del key
        return {}

    def _trainable(self, params: Params, state: AEState):
        return (tuple((p.w, p.b) for p in params), (state.decoder_w, state.decoder_b))

    def init_state(self, meta_params: MetaParams, params: Params, *, key: PRNGKey) -> AEState:
        del meta_params
        n_top = self.net.widths[-1]
        std = self.config.decoder_init_scale / jnp.sqrt(n_top)
        dec_w = std * jax.random.normal(key, (n_top, self.net.n_in), jnp.float32)
        dec_b = jnp.zeros((self.net.n_in,), jnp.float32)
        state = AEState(dec_w, dec_b, None)
        opt_state = self.config.make_optimizer().init(self._trainable(params, state))
        return state._replace(opt_state=opt_state)

    def step(self, meta_params: MetaParams, params: Params, state: AEState, x: Array, *,
             key: PRNGKey) -> tuple[Params, AEState, Metrics]:
        del meta_params, key
        opt = self.config.make_optimizer()
        trainable = self._trainable(params, state)
        v = tuple(p.v for p in params)
        loss, grads = jax.value_and_grad(reconstruction_loss)(trainable, v, x, self.net)
        updates, opt_state = opt.update(grads, state.opt_state, trainable)
        layers, (dec_w, dec_b) = optax.apply_updates(trainable, updates)
        new_params = tuple(p._replace(w=w, b=b) for p, (w, b) in zip(params, layers))
        metrics = {"recon_mse": loss / self.net.n_in}
        return new_params, AEState(dec_w, dec_b, opt_state), metrics


# --------------------------------------------------------------------------
# No learning: the reference every rule is compared with on the same network.
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class NoLearning:
    """A rule that never changes the network (``none``: the network as initialised)."""

    net: MLPSpec
    name: ClassVar[str] = "none"

    def init_meta_params(self, key: PRNGKey) -> MetaParams:
        return {}

    def init_state(self, meta_params: MetaParams, params: Params, *, key: PRNGKey):
        return ()

    def step(self, meta_params: MetaParams, params: Params, state, x: Array, *,
             key: PRNGKey) -> tuple[Params, Any, Metrics]:
        return params, state, {}


def make_none(net: MLPSpec, config: None = None, **overrides) -> NoLearning:
    """The ``none`` rule; it has no options."""
    if config is not None or overrides:
        raise UserError(f"rule 'none' has no options, got {sorted(overrides) or config!r}")
    return NoLearning(net)


# --------------------------------------------------------------------------
# Registration.
# --------------------------------------------------------------------------


def with_config(config_cls, config, overrides: dict, rule_name: str):
    """``config`` (default ``config_cls()``) with ``overrides``, each typed by its field.

    Option values may be text (``lr="0.01"`` from ``oja:lr=0.01``) or typed values;
    an unknown name or a value of the wrong type is a one-line error
    (:func:`metaunsup.values.cast_fields`).
    """
    if config is None:
        config = config_cls()
    elif not isinstance(config, config_cls):
        raise UserError(f"rule {rule_name!r} takes a {config_cls.__name__}, got {config!r}")
    typed = cast_fields(config_cls, overrides, what=f"rule {rule_name!r}")
    return dataclasses.replace(config, **typed)


def make_sanger(net: MLPSpec, config: HebbianConfig | None = None, **overrides) -> SangerRule:
    """Sanger's rule; ``overrides`` replace fields of ``config`` (e.g. ``lr=1e-2``)."""
    return SangerRule(net, with_config(HebbianConfig, config, overrides, "sanger"))


def make_oja(net: MLPSpec, config: HebbianConfig | None = None, **overrides) -> OjaRule:
    """Oja's symmetric subspace rule; ``overrides`` replace fields of ``config``."""
    return OjaRule(net, with_config(HebbianConfig, config, overrides, "oja"))


def make_autoencoder(net: MLPSpec, config: AutoencoderConfig | None = None,
                     **overrides) -> AutoencoderRule:
    """Autoencoder by backprop; e.g. ``make_autoencoder(net, optimizer="adam", lr=1e-3)``."""
    return AutoencoderRule(net, with_config(AutoencoderConfig, config, overrides, "ae_sgd"))


register_rule("sanger", make_sanger)
register_rule("oja", make_oja)
register_rule("ae_sgd", make_autoencoder)
register_rule("none", make_none)
