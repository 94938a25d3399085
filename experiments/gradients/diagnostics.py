"""Meta-gradient and meta-parameter diagnostics (issue 9), on the validation split only.

Usage (each prints JSON lines; add --quick for a fast smoke run)::

    python experiments/gradients/diagnostics.py spread   [--rule shipped] [--keys 6]
    python experiments/gradients/diagnostics.py reset    [--rule shipped]
    python experiments/gradients/diagnostics.py snr      [--rule shipped]
    python experiments/gradients/diagnostics.py overfit  [--rule compact] [--steps 60]
    python experiments/gradients/diagnostics.py ablate   --rule TRAINED.safetensors --init INIT.safetensors

- spread:  the untrained rule's suite score for each meta-initialisation key,
           and the same with only the bias read-out zeroed (which random part
           causes the spread).
- reset:   the rule's suite score when one group of meta-parameters (mix,
           per-unit nets, read-outs, bias read-out, step size, ...) is reset to
           its initial value (key 0), paired against the rule itself.
- snr:     cosine similarity between meta-gradients of independent meta-batches
           (TBPTT at truncation 5/20, PES, ES) and between the 20-step TBPTT
           gradient and a long-horizon ES gradient (many pairs, 300 steps) on
           the same tasks: signal to noise and truncation bias.
- overfit: meta-train on ONE fixed task (same data, network, minibatches and
           episode every step) with full-horizon ES and TBPTT; the meta-objective
           should fall far below the untrained rule's.
- ablate:  knock-out ablations of a trained rule (issue 11): the untrained rule
           (--init, the same configuration at step 0), the trained mixing weights
           on the untrained read-outs and per-unit nets ("mix only"), the trained
           read-outs and nets with the untrained mix, and the trained rule with
           the mixing weights of the competition planes, of the read-out planes
           (outer*, gram_*), or of both (hand-designed planes only) set to zero;
           paired against the trained rule. Nothing is retrained.

Everything draws from the glyphs/digits splits (train split for meta-gradients,
the validation suite for scores); never MNIST, Fashion-MNIST or text.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from metaunsup.eval.validate import SuiteRule, resolve_rule, score_rule
from metaunsup.models import MLPSpec
from metaunsup.outer import estimators as est
from metaunsup.tasks.distribution import TaskDistConfig, load_pools
from metaunsup.tasks.rule_task import RuleTask
from metaunsup.tasks.suite import SuiteConfig, build_suite, load_suite_pool

PAPER = (128, 128, 128, 128, 32)


def emit(**rec):
    print(json.dumps(rec), flush=True)


def _suite(args) -> SuiteConfig:
    if args.quick:
        return SuiteConfig(tasks=4, steps=30, short_steps=10, groups=("paper",))
    return SuiteConfig(tasks=args.tasks, steps=args.steps, short_steps=min(100, args.steps),
                       groups=("paper",))


def _rule_for(spec: str):
    """(SuiteRule, a rule built for the paper net at 14x14) of a spec or a config name."""
    from metaunsup.rules import make_rule

    if spec in ("compact", "small", "mix_only"):
        rule = make_rule("learned", MLPSpec(n_in=196, widths=PAPER), config=spec)
        meta = rule.init_meta_params(jax.random.PRNGKey(0))
        return SuiteRule(spec, lambda net: dataclasses.replace(rule, net=net), (meta,), spec), rule
    sr = resolve_rule(spec)
    return sr, sr.build(MLPSpec(n_in=196, widths=PAPER))


def cmd_spread(args):
    config = _suite(args)
    pool = load_suite_pool(config)
    groups = build_suite(config, pool)
    base, rule = _rule_for(args.rule)
    for k in range(args.keys):
        meta = rule.init_meta_params(jax.random.PRNGKey(k))
        for variant in ("as_initialised", "bias_readout_zero"):
            m = meta
            if variant == "bias_readout_zero":
                m = {**meta, "bias": jax.tree_util.tree_map(jnp.zeros_like, meta["bias"])}
            sr = SuiteRule(f"init key {k}", base.build, (m,), "")
            s = score_rule(sr, config, pool, groups)
            emit(diagnostic="spread", rule=f"init:{args.rule}", key=k, variant=variant,
                 accuracy=round(100 * float(s["accuracy"][-1].mean()), 2),
                 tasks=config.tasks, steps=config.steps)


def _paired_variants(args, what: str, variants) -> None:
    """Scores ``base`` and every (name, meta_params) of ``variants(trained, rule)`` on the
    suite and emits each one's accuracy and paired difference to ``base``."""
    from metaunsup.eval.stats import mean_ci95

    config = _suite(args)
    pool = load_suite_pool(config)
    groups = build_suite(config, pool)
    base, rule = _rule_for(args.rule)
    ref = 100 * score_rule(base, config, pool, groups)["accuracy"][-1]
    common = dict(diagnostic=what, rule=args.rule, tasks=config.tasks, steps=config.steps)
    emit(**common, variant="reference (the rule itself)", accuracy=round(float(ref.mean()), 2))
    for name, meta in variants(base.meta_params[0], rule).items():
        acc = 100 * score_rule(SuiteRule(name, base.build, (meta,), ""), config, pool,
                               groups)["accuracy"][-1]
        mean, ci = mean_ci95(acc - ref)
        emit(**common, variant=name, accuracy=round(float(acc.mean()), 2),
             diff=round(mean, 2), diff_ci95=round(ci, 2))


def cmd_reset(args):
    def variants(trained, rule):
        init = rule.init_meta_params(jax.random.PRNGKey(0))
        return {f"reset {group}": {**trained, group: init[group]} for group in sorted(trained)}

    _paired_variants(args, "reset", variants)


def cmd_ablate(args):
    from metaunsup.rules.planes import COMPETITIVE_PLANES, HAND_PLANES

    init = resolve_rule(args.init).meta_params[0]

    def variants(trained, rule):
        labels = [lab.split("[")[0] for lab in rule.config.plane_labels]

        def zero_planes(meta, names):
            keep = jnp.array([lab not in names for lab in labels], jnp.float32)
            mix = {**meta["mix"], "w": meta["mix"]["w"] * keep}
            if "kind" in mix:
                mix["kind"] = mix["kind"] * keep
            return {**meta, "mix": mix}

        learned_parts = [k for k in trained if k not in ("mix", "log_lr")]
        readout_planes = tuple(p for p in set(labels) if p not in HAND_PLANES + COMPETITIVE_PLANES)
        return {
            "untrained (step 0)": init,
            "mix only (trained mix and step size, untrained read-outs and nets)":
                {**init, "mix": trained["mix"], **({"log_lr": trained["log_lr"]}
                                                  if "log_lr" in trained else {})},
            "learned parts only (untrained mix and step size)":
                {**init, **{k: trained[k] for k in learned_parts}},
            "no competition planes": zero_planes(trained, COMPETITIVE_PLANES),
            "no read-out planes": zero_planes(trained, readout_planes),
            "hand-designed planes only": zero_planes(trained, COMPETITIVE_PLANES + readout_planes),
        }

    _paired_variants(args, "ablate", variants)


def _task(rule, args) -> RuleTask:
    dist = TaskDistConfig(datasets=("glyphs", "digits"), resolution=14,
                          length_range=(args.horizon, args.horizon), batch_size=64)
    pool, _ = load_pools(dist, seed=0)
    return RuleTask(rule, dist, pool)


def _flat(tree) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree_util.tree_leaves(tree)])


def _cos(a, b) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def cmd_snr(args):
    _, rule = _rule_for(args.rule)
    sr = _rule_for(args.rule)[0]
    mp = sr.meta_params[0]
    task = _task(rule, args)

    def grads(estimator, key, batch):
        keys = jax.random.split(key, batch)
        init = jax.jit(jax.vmap(lambda k: estimator.init(task, mp, k)))
        est_fn = jax.jit(jax.vmap(lambda s, k: estimator.estimate(task, mp, s, k)[0]))
        states = init(keys)
        g = est_fn(states, jax.random.split(jax.random.fold_in(key, 1), batch))
        return _flat(jax.tree_util.tree_map(lambda x: x.mean(0), g))

    estimators = {
        "tbptt_T5": est.TBPTT(5, remat=True), "tbptt_T20": est.TBPTT(20, remat=True),
        "pes_T20": est.PES(20, sigma=0.05),
        "es_pairs8": est.FullES(0.1, 8, (args.horizon, args.horizon), "none"),
    }
    for name, e in estimators.items():
        for batch in ((1, 4) if not args.quick else (1,)):
            t0 = time.perf_counter()
            cs = []
            for r in range(args.repeats):
                a = grads(e, jax.random.PRNGKey(100 + 2 * r), batch)
                b = grads(e, jax.random.PRNGKey(101 + 2 * r), batch)
                cs.append(_cos(a, b))
            emit(diagnostic="snr", estimator=name, meta_batch=batch, rule=args.rule,
                 cosine_between_independent_batches=round(float(np.mean(cs)), 4),
                 repeats=args.repeats, seconds=round(time.perf_counter() - t0, 1))
    # truncation bias: 20-step TBPTT from fresh tasks vs long-horizon ES on the same tasks
    long_es = est.FullES(0.05, args.long_pairs, (args.horizon, args.horizon), "none")
    for r in range(args.repeats):
        key = jax.random.PRNGKey(500 + r)
        g_tb = grads(est.TBPTT(20, remat=True), key, 4)
        g_es = grads(long_es, key, 4)
        emit(diagnostic="truncation_bias", rule=args.rule, horizon=args.horizon,
             es_pairs=args.long_pairs, cosine_tbptt20_vs_long_es=round(_cos(g_tb, g_es), 4))


def cmd_overfit(args):
    import optax

    _, rule = _rule_for(args.rule)
    sr = _rule_for(args.rule)[0]
    task = _task(rule, args)
    fixed = jax.random.PRNGKey(7)  # the one task: data, network, minibatches, episode
    loss_fn = jax.jit(lambda p: task.episode_loss(p, fixed, args.horizon)[0])
    for name in ("es", "tbptt_full"):
        mp = sr.meta_params[0]
        opt = optax.adam(args.lr)
        st = opt.init(mp)
        es = est.FullES(0.1, 8, (args.horizon, args.horizon), "sign")
        if name == "es":
            def grad_fn(p, k):
                # every member uses the fixed key: pairs see the same task each step
                return es.estimate(_Fixed(task, fixed), p, jnp.zeros((), jnp.int32), k)[0]
        else:
            def grad_fn(p, k):
                return jax.grad(lambda q: task.episode_loss(q, fixed, args.horizon)[0])(p)
        grad_fn = jax.jit(grad_fn)
        l0 = float(loss_fn(mp))
        t0 = time.perf_counter()
        for s in range(args.outer_steps):
            g = grad_fn(mp, jax.random.PRNGKey(s))
            upd, st = opt.update(g, st, mp)
            mp = optax.apply_updates(mp, upd)
            if (s + 1) % max(1, args.outer_steps // 5) == 0:
                emit(diagnostic="overfit", estimator=name, rule=args.rule, outer_step=s + 1,
                     loss=round(float(loss_fn(mp)), 4), untrained_loss=round(l0, 4),
                     horizon=args.horizon, seconds=round(time.perf_counter() - t0, 1))


@dataclasses.dataclass(frozen=True, eq=False)
class _Fixed:
    """A task whose episodes ignore the key they are given (one fixed task)."""

    task: RuleTask
    key: jax.Array

    def episode_loss(self, meta_params, key, num_steps):
        return self.task.episode_loss(meta_params, self.key, num_steps)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("spread", "reset", "snr", "overfit", "ablate"))
    p.add_argument("--init", default=None, help="ablate: the untrained rule file")
    p.add_argument("--rule", default="shipped")
    p.add_argument("--keys", type=int, default=6)
    p.add_argument("--tasks", type=int, default=16)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--horizon", type=int, default=300)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--long-pairs", type=int, default=64)
    p.add_argument("--outer-steps", type=int, default=60)
    p.add_argument("--lr", type=float, default=0.03)
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.horizon, args.repeats, args.long_pairs, args.outer_steps = 20, 1, 4, 5
    {"spread": cmd_spread, "reset": cmd_reset, "snr": cmd_snr, "overfit": cmd_overfit,
     "ablate": cmd_ablate}[args.what](args)


if __name__ == "__main__":
    main()
