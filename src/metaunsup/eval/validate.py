"""``metaunsup validate``: rules compared pair by pair on the fixed validation suite.

Every rule runs on exactly the same tasks, initial networks, minibatches and
few-shot episodes (:mod:`metaunsup.tasks.suite`), so the difference between
two rules can be measured task by task: the reported interval of a paired
difference is the t-interval of the per-task differences, much narrower than
the two rules' own intervals suggest.

Rules are named by the one rule-spec grammar (:mod:`metaunsup.rules.loading`:
``shipped``, a file, ``WORKDIR[@STEP]``, ``init:RULE``, ``untrained:RULE``,
``random-init``, ``NAME[:k=v,...]``, ``none``). A *seeded* spec (``untrained:RULE``,
``random-init``: a fresh untrained draw per key) is scored with ``init_keys``
initialisation keys, averaged on each task (the number is reported); every other
spec is one theta.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Callable, Sequence

import jax
import numpy as np

from metaunsup.errors import UserError
from metaunsup.eval.probes import ProbeConfig, logreg_accuracy
from metaunsup.eval.stats import mean_ci95
from metaunsup.models import MLPSpec
from metaunsup.progress import progress_bar
from metaunsup.rules.base import UpdateRule
from metaunsup.rules.loading import is_seeded, load_rule
from metaunsup.tasks.suite import (
    ARCH_GROUPS,
    SuiteConfig,
    build_suite,
    episode_labels,
    load_suite_pool,
    run_group,
    suite_config,
)
from metaunsup.types import MetaParams

DEFAULT_INIT_KEYS = 4


@dataclasses.dataclass(frozen=True, eq=False)
class SuiteRule:
    """A rule to validate: how to build it for a network, and its meta-parameters.

    Attributes:
      spec: the specification exactly as given.
      build: ``net -> UpdateRule``.
      meta_params: one theta per initialisation key (usually one).
      description: one line on what was resolved.
    """

    spec: str
    build: Callable[[MLPSpec], UpdateRule]
    meta_params: tuple[MetaParams, ...]
    description: str


def _trees_equal(a: MetaParams, b: MetaParams) -> bool:
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    return len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb))


def resolve_rule(spec: str, *, init_keys: int = DEFAULT_INIT_KEYS) -> SuiteRule:
    """The :class:`SuiteRule` of a rule spec (:func:`metaunsup.rules.loading.load_rule`).

    A seeded spec gets one theta per key ``0 .. init_keys - 1`` (one, if they are all
    equal: a deterministic initialisation); any other spec its one theta.
    """
    spec = str(spec)
    loaded = load_rule(spec)
    metas = [loaded.meta_params]
    if is_seeded(spec):
        metas += [load_rule(spec, seed=k).meta_params for k in range(1, init_keys)]
        if all(_trees_equal(metas[0], m) for m in metas[1:]):
            metas = metas[:1]  # a deterministic initialisation: one key says it all
    prov = loaded.header.get("provenance", {})
    what = loaded.name if loaded.meta_params else f"{loaded.name} {loaded.config or ''}".strip()
    if "meta_steps" in prov:
        what += f", {prov['meta_steps']} meta-steps"
    return SuiteRule(spec, loaded.for_net, tuple(metas), f"{what} ({len(metas)} key(s))")


def score_rule(rule: SuiteRule, config: SuiteConfig, pool, groups,
               probe: ProbeConfig = ProbeConfig(), progress: Callable | None = None) -> dict:
    """Per-task scores of ``rule`` on the suite (averaged over its init keys).

    Returns:
      ``{"accuracy": [H, N], "ridge_loss": [H, N], "ridge_accuracy": [H, N],
      "diverged": [H, N]}`` (fractions; H = ``config.horizons``).
    """
    n, H = sum(len(g.index) for g in groups), len(config.horizons)
    acc, rloss, racc, bad = (np.zeros((H, n)) for _ in range(4))
    ys, yq = episode_labels(config)
    for g in groups:
        built = rule.build(g.spec)
        for meta in rule.meta_params:
            out = jax.device_get(run_group(config, built, meta, pool, g))
            for h in range(H):
                for j, i in enumerate(g.index):
                    fs, fq = out.support[j, h], out.query[j, h]
                    ok = bool(out.finite[j, h]) and np.all(np.isfinite(fs)) and np.all(np.isfinite(fq))
                    a = logreg_accuracy(fs, ys, fq, yq, config=probe) if ok else 1.0 / config.n_way
                    acc[h, i] += a
                    rloss[h, i] += out.ridge_loss[j, h] if ok else 1.0
                    racc[h, i] += out.ridge_accuracy[j, h] if ok else 1.0 / config.n_way
                    bad[h, i] += 0.0 if ok else 1.0
            if progress:
                progress(len(g.index))
    k = len(rule.meta_params)
    return {"accuracy": acc / k, "ridge_loss": rloss / k, "ridge_accuracy": racc / k,
            "diverged": bad / k}


def _mci(values) -> tuple[float, float]:
    m, h = mean_ci95(values)
    return m, (0.0 if math.isnan(h) else h)


def summarize(spec: str, scores: dict, config: SuiteConfig, groups, *, keys: int,
              reference: dict | None = None, reference_spec: str | None = None,
              seconds: float = 0.0) -> dict:
    """One JSON-able record per rule (percent for accuracies; ``diff`` paired)."""
    h_long = config.horizons.index(config.steps)
    h_short = config.horizons.index(config.short_steps)
    acc = 100 * scores["accuracy"]
    m, ci = _mci(acc[h_long])
    ms, cis = _mci(acc[h_short])
    rec = {"rule": spec, "accuracy": round(m, 3), "ci95": round(ci, 3),
           "accuracy_short": round(ms, 3), "ci95_short": round(cis, 3),
           "ridge_loss": round(float(scores["ridge_loss"][h_long].mean()), 5),
           "ridge_loss_short": round(float(scores["ridge_loss"][h_short].mean()), 5),
           "ridge_accuracy": round(float(100 * scores["ridge_accuracy"][h_long].mean()), 3),
           "tasks": int(acc.shape[1]), "steps": config.steps, "short_steps": config.short_steps,
           "init_keys": keys, "diverged": int(round(scores["diverged"][h_long].sum())),
           "groups": {g.name: round(float(acc[h_long, g.index].mean()), 2) for g in groups},
           "seed": config.seed, "seconds": round(seconds, 1)}
    if reference is not None:
        d = acc - 100 * reference["accuracy"]
        dm, dci = _mci(d[h_long])
        dms, dcis = _mci(d[h_short])
        rec.update({"reference": reference_spec, "diff": round(dm, 3), "diff_ci95": round(dci, 3),
                    "diff_short": round(dms, 3), "diff_ci95_short": round(dcis, 3)})
    return rec


QUICK = {"tasks": 4, "steps": 30, "short_steps": 10, "groups": ("paper",)}
"""The tiny suite of ``--quick`` (smoke tests); a value given explicitly overrides it."""


def suite_settings(suite: str = "validation", *, tasks: int | None = None,
                   steps: int | None = None, short_steps: int | None = None,
                   seed: int = SuiteConfig.seed, groups: Sequence[str] | None = None,
                   quick: bool = False) -> SuiteConfig:
    """The named suite with the settings given; None takes the default (or :data:`QUICK`'s).

    The short horizon defaults to the smaller of its default and ``steps``; an
    explicit ``short_steps`` larger than the steps, or empty group names, is a
    one-line :class:`UserError`, never clamped or read as "all".
    """
    base = dict(QUICK) if quick else {"tasks": SuiteConfig.tasks, "steps": SuiteConfig.steps,
                                      "short_steps": SuiteConfig.short_steps,
                                      "groups": SuiteConfig.groups}
    steps = base["steps"] if steps is None else steps
    if short_steps is None:
        short = min(base["short_steps"], steps)  # the documented default, not a clamp
    elif short_steps > steps:
        raise UserError(f"--short-steps {short_steps} is larger than --steps {steps}: "
                        "the short horizon must be at most the long one")
    else:
        short = short_steps
    if groups is not None:
        groups = tuple(g.strip() for g in groups)
        if not any(groups) or not all(groups):
            raise UserError(f"--groups {','.join(groups)!r}: give one or more group names, "
                            f"comma-separated, from {', '.join(g[0] for g in ARCH_GROUPS)} "
                            "(omit --groups for all)")
    return suite_config(suite, tasks=base["tasks"] if tasks is None else tasks, steps=steps,
                        short_steps=short, seed=seed,
                        groups=base["groups"] if groups is None else groups)


def validate_rules(specs: Sequence[str], *, reference: str | None = None,
                   config: SuiteConfig = SuiteConfig(), init_keys: int = DEFAULT_INIT_KEYS,
                   progress: bool = False, emit: Callable[[dict], None] | None = None,
                   return_scores: bool = False):
    """Scores every rule in ``specs`` on the suite; paired differences to ``reference``.

    The reference defaults to the first rule. Rules are resolved (and bad
    specifications rejected) before anything runs.

    Returns:
      A list of records (:func:`summarize`), in the order of ``specs``; with
      ``return_scores`` also ``{spec: per-task scores}``.
    """
    if not specs:
        raise UserError("validate: give at least one rule")
    reference = specs[0] if reference is None else reference
    order = list(dict.fromkeys([reference, *specs]))
    rules = {s: resolve_rule(s, init_keys=init_keys) for s in order}
    pool = load_suite_pool(config)
    groups = build_suite(config, pool)
    total = sum(len(r.meta_params) for r in rules.values()) * config.tasks
    bar = progress_bar(progress, total=total, unit="task", desc="validate")
    scores, seconds = {}, {}
    for s in order:
        t0 = time.perf_counter()
        scores[s] = score_rule(rules[s], config, pool, groups, progress=bar.update)
        seconds[s] = time.perf_counter() - t0
    bar.close()
    records = []
    for s in specs:
        rec = summarize(s, scores[s], config, groups, keys=len(rules[s].meta_params),
                        reference=scores[reference], reference_spec=reference,
                        seconds=seconds[s])
        records.append(rec)
        if emit:
            emit(rec)
    return (records, scores) if return_scores else records


def format_record(rec: dict) -> str:
    """One table row of a :func:`summarize` record."""
    diff = (f"{rec['diff']:+6.2f} +- {rec['diff_ci95']:4.2f}   {rec['diff_short']:+6.2f} +- "
            f"{rec['diff_ci95_short']:4.2f}") if "diff" in rec else ""
    return (f"{rec['rule'][:34]:<34} {rec['init_keys']:>4} {rec['accuracy']:6.2f} +- "
            f"{rec['ci95']:4.2f} {rec['accuracy_short']:6.2f} {rec['ridge_loss']:8.4f} "
            f"{rec['seconds']:7.1f}  {diff}")


def header(config: SuiteConfig, reference: str) -> str:
    return (f"{'rule':<34} {'keys':>4} {'acc@' + str(config.steps) + ' %':>14} "
            f"{'@' + str(config.short_steps):>6} {'ridge':>8} {'time s':>7}  "
            f"diff vs {reference} @{config.steps} / @{config.short_steps} (paired, 95%)")


__all__ = ["DEFAULT_INIT_KEYS", "QUICK", "SuiteRule", "format_record", "header", "resolve_rule",
           "score_rule", "suite_settings", "summarize", "validate_rules"]
