"""The learned neuron-local update rule (Metz et al., ICLR 2019, arXiv 1804.00222).

One step on an unlabeled batch x [B, n_in] of a network with L layers. Unit
levels k = 0..L: level 0 holds the inputs (z^0 = a^0 = x), level k >= 1 the
pre-activations z^k and post-activations a^k of layer k (``models.forward``).

Per-unit arrays are channels-first, [C, B, n] (see ``unit_nets``).

1. Top error net (``unit_nets.top_net``): (z^L, a^L) -> d^L [C_d, B, n_L].
2. Top to bottom, for k = L..0: the per-unit net reads z^k, a^k, d^k, weight
   statistics of W^k (incoming) and W^{k+1} (outgoing), b^k and the level's
   kind, and returns h^k [C_h, B, n_k]. For k >= 1 the signal goes down:
   ``delta^k = d^k * sigmoid(z^k) + W_delta^T h^k`` and
   ``d^{k-1} = rmsnorm_unit(delta^k V^k^T)`` (no weight transport).
3. For each layer l = 1..L: read-outs ``c = P_pre^T h^{l-1} + p_pre``
   [R, B, n_{l-1}], ``e = P_post^T h^l + p_post`` [R, B, n_l]; the planes of
   ``planes.weight_planes``; ``dW = mix_planes(planes, m + m_kind[l])``;
   ``db = rmsnorm(mean_b(w_b^T h^l + b_b))``.
4. Bounded step ``u <- (1 - lr) u - lr du`` for W, b and (``v_update="same"``)
   V with V's du = W's dW. Since rms(.) is a norm and rms(dW) < s (s = 1, or
   1/sqrt(n_in) with ``scale_by_fan_in``), ``rms(W_t) <= (1 - lr) rms(W_{t-1})
   + lr s``, hence by induction ``rms(W_t) <= max(rms(W_0), s)`` for ever;
   likewise ``rms(b_t) <= max(rms(b_0), 1)``.

Labels are never read. One ``meta_params`` serves any width and depth; with
``mixing="batch_stats"`` and no unit-index code the update is equivariant to
permutations of hidden units and invariant to the order of examples. The
paper's ``mixing="conv"`` (convolutions along the batch and unit axes) is
neither, as documented in ``unit_nets.unit_net``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp

from metaunsup.errors import UserError
from metaunsup.models import MLPSpec, forward
from metaunsup.rules import unit_nets as un
from metaunsup.rules.base import register_rule
from metaunsup.rules.learned_config import (  # noqa: F401 - re-exported
    CONFIGS,
    MIXINGS,
    PAPER,
    SMALL,
    V_UPDATES,
    LearnedRuleConfig,
    rule_config,
)
from metaunsup.rules.plane_mix import mixed_update
from metaunsup.rules.planes import SOFT_PLANES, unit_rms
from metaunsup.types import Array, LayerParams, MetaParams, Metrics, Params, PRNGKey


class LearnedRuleState(NamedTuple):
    """Per-layer column RMS of W and V at ``init_state`` (for ``normalize_columns``).

    Attributes:
      w_col_rms: tuple of [n_out_l] arrays.
      v_col_rms: tuple of [n_out_l] arrays.
    """

    w_col_rms: tuple[Array, ...]
    v_col_rms: tuple[Array, ...]


def num_meta_params(meta_params: MetaParams) -> int:
    """Total number of scalars in a meta-parameter tree."""
    return sum(int(math.prod(x.shape)) for x in jax.tree_util.tree_leaves(meta_params))


def _col_rms(w: Array, eps: float) -> Array:
    return jnp.sqrt(jnp.mean(jnp.square(w), axis=0) + eps)


def _weight_kind(layer: int, depth: int) -> int:
    """Kind of weight layer ``layer`` (1-based): 0 bottom, 1 middle, 2 top."""
    if layer == 1:
        return 0
    return 2 if layer == depth else 1


@dataclasses.dataclass(frozen=True)
class LearnedRule:
    """The learned neuron-local rule (see the module docstring).

    Attributes:
      config: the rule's constants.
      net: the base network it updates.
    """

    config: LearnedRuleConfig
    net: MLPSpec
    name: ClassVar[str] = "learned"

    def init_meta_params(self, key: PRNGKey) -> MetaParams:
        """Theta: a nested dict of float32 arrays, independent of ``net``."""
        cfg = self.config
        k = jax.random.split(key, 6)
        ch = cfg.state_channels
        meta: MetaParams = {}
        if cfg.uses_signals:
            meta["top"] = un.init_top_net(k[0], hidden=cfg.top_hidden,
                                          channels=cfg.signal_channels,
                                          unit_context=cfg.top_unit_context,
                                          scale=cfg.net_init_scale)
            meta["delta"] = {"w": un.dense_init(k[1], ch, (ch, cfg.signal_channels),
                                                cfg.delta_init_scale)}
        if cfg.use_unit_net:
            freqs = cfg.index_frequencies if cfg.unit_index_encoding else 0
            meta["unit"] = un.init_unit_net(
                k[2], ex_features=2 + cfg.signal_channels,
                unit_features=un.unit_feature_count(freqs), hidden=cfg.unit_hidden,
                channels=cfg.hidden_channels, mixing=cfg.mixing, conv_width=cfg.conv_width,
                scale=cfg.net_init_scale)
        if cfg.learned_readouts:
            kp, kq = jax.random.split(k[3])
            r = cfg.readout_rank
            meta["readout"] = {
                "w_pre": un.dense_init(kp, ch, (ch, r), cfg.net_init_scale),
                "b_pre": jnp.zeros((r,), jnp.float32),
                "w_post": un.dense_init(kq, ch, (ch, r), cfg.net_init_scale),
                "b_post": jnp.zeros((r,), jnp.float32),
            }
        meta["bias"] = {"w": un.dense_init(k[4], ch, (ch,), 0.0 if cfg.zero_bias_readout
                                           else cfg.net_init_scale),
                        "b": jnp.zeros((), jnp.float32)}
        labels = cfg.plane_labels
        base = dict(cfg.init_mix)
        mix0 = jnp.array([base.get(lab.split("[")[0], 0.0) for lab in labels], jnp.float32)
        mix = {"w": mix0 + cfg.init_mix_std * jax.random.normal(k[5], mix0.shape, jnp.float32)}
        if cfg.per_kind_mix:
            mix["kind"] = jnp.zeros((3, len(labels)), jnp.float32)
        meta["mix"] = mix
        if any(p in cfg.planes for p in SOFT_PLANES):
            mix["log_tau"] = jnp.asarray(math.log(cfg.comp_tau), jnp.float32)
        if cfg.learn_lr:
            meta["log_lr"] = jnp.asarray(math.log(cfg.lr), jnp.float32)
        if cfg.per_kind_lr:
            meta["log_lr_kind"] = jnp.zeros((3,), jnp.float32)
        return meta

    def num_meta_params(self) -> int:
        """How many scalars ``init_meta_params`` returns (computed without running it)."""
        return num_meta_params(jax.eval_shape(self.init_meta_params, jax.random.PRNGKey(0)))

    def learning_rate(self, meta_params: MetaParams, kind: int | None = None) -> Array:
        """The step size: the config's lr, or exp(clip(log_lr)) when learned; with
        ``per_kind_lr``, ``exp(clip(log_lr + log_lr_kind[kind]))`` for weight-layer
        kind ``kind`` (0 bottom, 1 middle, 2 top)."""
        cfg = self.config
        if not cfg.learn_lr:
            return jnp.asarray(cfg.lr, jnp.float32)
        log_lr = meta_params["log_lr"]
        if cfg.per_kind_lr and kind is not None:
            log_lr = log_lr + meta_params["log_lr_kind"][kind]
        return jnp.exp(jnp.clip(log_lr, math.log(cfg.lr_min), math.log(cfg.lr_max)))

    def temperature(self, meta_params: MetaParams) -> Array:
        """Softmax temperature of the soft_* planes: exp(clip(log_tau)) (1 if none)."""
        cfg = self.config
        if "log_tau" not in meta_params["mix"]:
            return jnp.asarray(1.0, jnp.float32)
        return jnp.exp(jnp.clip(meta_params["mix"]["log_tau"], math.log(cfg.comp_tau_min),
                                math.log(cfg.comp_tau_max)))

    def init_state(self, meta_params: MetaParams, params: Params, *,
                   key: PRNGKey) -> LearnedRuleState:
        del meta_params, key  # the state only remembers the initial column scales
        eps = self.config.eps
        return LearnedRuleState(tuple(_col_rms(p.w, eps) for p in params),
                                tuple(_col_rms(p.v, eps) for p in params))

    def _check(self, params: Params, x: Array) -> None:
        shapes = tuple(p.w.shape for p in params)
        if shapes != self.net.layer_shapes:
            raise UserError(f"learned rule: params have layer shapes {shapes}, the rule's net "
                            f"expects {self.net.layer_shapes}")
        if x.ndim != 2 or x.shape[1] != self.net.n_in:
            raise UserError(f"learned rule: x must be [batch, {self.net.n_in}], got {x.shape}")

    def _unit_features(self, params: Params, level: int, n: int, dtype) -> Array:
        """[U, n] per-unit features of unit level ``level`` (missing ones are zero)."""
        cfg, depth = self.config, len(params)
        zeros = jnp.zeros((un.WEIGHT_STATS, n), dtype)
        kinds = len(un.LEVEL_KINDS)
        parts = [
            un.weight_stats(params[level - 1].w, 0, cfg.eps) if level > 0 else zeros,
            un.weight_stats(params[level].w, 1, cfg.eps) if level < depth else zeros,
            params[level - 1].b[None] if level > 0 else jnp.zeros((1, n), dtype),
            jnp.broadcast_to(jax.nn.one_hot(un.level_kind(level, depth), kinds,
                                            dtype=dtype)[:, None], (kinds, n)),
        ]
        if cfg.unit_index_encoding:
            parts.append(un.index_encoding(n, cfg.index_frequencies, dtype))
        return jnp.concatenate(parts)

    def _hidden(self, meta: MetaParams, params: Params, level: int, z: Array, a: Array,
                d: Array | None) -> Array:
        """h^k [C, B, n_k] of one unit level (z, a: [B, n_k]; d: [C_d, B, n_k])."""
        cfg = self.config
        ex = [z[None], a[None]] + ([d] if d is not None else [])
        ex = jnp.concatenate(ex)
        if not cfg.use_unit_net:
            return ex
        unit = self._unit_features(params, level, z.shape[1], z.dtype)
        return un.unit_net(meta["unit"], ex, unit, activation=cfg.activation,
                           mixing=cfg.mixing, var_eps=cfg.var_eps)

    def _readouts(self, meta: MetaParams, h: Array, level: int, lowest: int,
                  depth: int) -> dict[str, Array]:
        """Linear read-outs of h^k [C, B, n] that level ``level`` needs, in one matmul.

        "delta" [C_d, B, n] (the learned part of the signal sent down),
        "pre" / "post" [R, B, n] (read-outs for the layer above / below) and
        "bias" [B, n] (the bias update before averaging).
        """
        cfg = self.config
        blocks: list[tuple[str, Array, Array]] = []  # (name, weight [C, k], bias [k])
        if level > lowest and cfg.uses_signals:
            w = meta["delta"]["w"]
            blocks.append(("delta", w, jnp.zeros(w.shape[1:], w.dtype)))
        if cfg.learned_readouts:
            ro = meta["readout"]
            if level < depth:
                blocks.append(("pre", ro["w_pre"], ro["b_pre"]))
            if level > 0:
                blocks.append(("post", ro["w_post"], ro["b_post"]))
        if level > 0:
            blocks.append(("bias", meta["bias"]["w"][:, None], meta["bias"]["b"][None]))
        # One [C, sum k] matmul instead of several thin ones; then split.
        y = un.channel_dense(jnp.concatenate([w for _, w, _ in blocks], axis=1), h)
        y = y + jnp.concatenate([b for _, _, b in blocks]).astype(h.dtype)[:, None, None]
        out, start = {}, 0
        for name, w, _ in blocks:
            out[name] = y[start:start + w.shape[1]]
            start += w.shape[1]
        if "bias" in out:
            out["bias"] = out["bias"][0]
        return out

    def step(self, meta_params: MetaParams, params: Params, state: LearnedRuleState, x: Array, *,
             key: PRNGKey) -> tuple[Params, LearnedRuleState, Metrics]:
        """One unsupervised update from the unlabeled batch ``x`` [B, n_in] (see module doc).

        Returns:
          ``(params, state, metrics)``: the updated layers (same shapes and
          dtypes), the unchanged state, and float scalars "lr", "dw_abs/{l}"
          (mean |W_new - W| of layer l, 0-based), "w_rms/{l}" (RMS of W_new)
          and "top_std" (mean over top units of the batch std of a^L).
        """
        del key  # the rule is deterministic
        self._check(params, x)
        cfg, meta, depth = self.config, meta_params, len(params)
        acts = forward(params, x, self.net)
        zs, as_ = (x,) + acts.pre, (x,) + acts.post
        # Level 0 only feeds the pre-synaptic read-outs of W^1; skip it (and the
        # widest signal propagation) when the read-outs are the activations.
        lowest = 0 if cfg.learned_readouts else 1
        d = None
        if cfg.uses_signals:
            d = un.top_net(meta["top"], zs[-1], as_[-1], activation=cfg.activation,
                           eps=cfg.eps, var_eps=cfg.var_eps)
        outs: list[dict[str, Array]] = [{} for _ in range(depth + 1)]
        for k in range(depth, lowest - 1, -1):
            h = self._hidden(meta, params, k, zs[k], as_[k], d)
            outs[k] = self._readouts(meta, h, k, lowest, depth)
            if "delta" in outs[k]:
                delta = d * jax.nn.sigmoid(zs[k])[None] + outs[k]["delta"]
                d = un.pass_down(delta, params[k - 1].v, cfg.eps)

        lr = self.learning_rate(meta).astype(x.dtype)
        mix = meta["mix"]
        tau = self.temperature(meta).astype(x.dtype)
        new_params, metrics = [], {"lr": lr}
        for k in range(1, depth + 1):
            layer = params[k - 1]
            w = layer.w
            if cfg.per_kind_lr:
                lr = self.learning_rate(meta, _weight_kind(k, depth)).astype(x.dtype)
                metrics[f"lr/{k - 1}"] = lr
            if cfg.learned_readouts:
                c, e = outs[k - 1]["pre"], outs[k]["post"]  # [R, B, n_{k-1}], [R, B, n_k]
            else:
                c = e = None  # the activations: mixed_update shares their products
            m = mix["w"] + (mix["kind"][_weight_kind(k, depth)] if cfg.per_kind_mix else 0.0)
            dw = mixed_update(w, c, e, as_[k - 1], as_[k], m, planes=cfg.planes,
                              eps=cfg.eps, var_eps=cfg.var_eps, tau=tau,
                              comp_k=cfg.comp_k, comp_delta=cfg.comp_delta)
            if cfg.scale_by_fan_in:
                dw = dw / math.sqrt(w.shape[0])
            db = unit_rms(jnp.mean(outs[k]["bias"], axis=0), axis=None, eps=cfg.eps)  # [n_k]
            new_w = (1.0 - lr) * w - lr * dw
            new_b = (1.0 - lr) * layer.b - lr * db
            new_v = (1.0 - lr) * layer.v - lr * dw if cfg.v_update == "same" else layer.v
            if cfg.normalize_columns:
                new_w = new_w * (state.w_col_rms[k - 1] / _col_rms(new_w, cfg.eps))
                if cfg.v_update == "same":
                    new_v = new_v * (state.v_col_rms[k - 1] / _col_rms(new_v, cfg.eps))
            new_params.append(LayerParams(w=new_w, b=new_b, v=new_v))
            metrics[f"dw_abs/{k - 1}"] = jnp.mean(jnp.abs(new_w - w))
            metrics[f"w_rms/{k - 1}"] = jnp.sqrt(jnp.mean(jnp.square(new_w)))
        metrics["top_std"] = jnp.mean(jnp.std(as_[-1], axis=0))
        # Diagnostics: no gradient flows through them (std's derivative is
        # infinite at 0, e.g. for a dead top unit).
        return tuple(new_params), state, jax.lax.stop_gradient(metrics)


def make_learned_rule(net: MLPSpec, config: str | LearnedRuleConfig = "small",
                      **overrides: Any) -> LearnedRule:
    """Factory registered as ``"learned"``: ``make_rule("learned", net, config="paper")``."""
    return LearnedRule(rule_config(config, **overrides), net)


register_rule("learned", make_learned_rule)
