"""``metaunsup validate``: rules compared pair by pair on the fixed validation suite.

Every rule runs on exactly the same tasks, initial networks, minibatches and
few-shot episodes (:mod:`metaunsup.tasks.suite`), so the difference between
two rules can be measured task by task: the reported interval of a paired
difference is the t-interval of the per-task differences, much narrower than
the two rules' own intervals suggest.

Rule specifications (``RULE`` on the command line):

==========================  ===================================================
``shipped``                 the rule shipped with metaunsup
``PATH.safetensors``        a rule file
``WORKDIR[@STEP]``          a meta-training run: its best checkpoint by
                            validation score, or the one at STEP
``init:RULE``               RULE's configuration at its *untrained* initial
                            meta-parameters; where that initialisation is
                            random, averaged on each task over ``init_keys``
                            initialisation keys (the number is reported).
                            Elsewhere (``load_rule``, ``evaluate``, studies)
                            ``init:RULE`` is the one starting point of the run
                            that made RULE (``rules.loading.initial_rule``);
                            ``validate`` asks how the configuration's starting
                            points score on average
``random-init``             as in ``--rule random-init`` elsewhere: the learned
                            rule's ``small`` configuration, untrained (several keys)
``NAME[:k=v,k=v]``          a hand-designed rule (``oja``, ``sanger``, ...) with
                            optional options
``none``                    no learning: the randomly initialised network
==========================  ===================================================
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Callable, ClassVar, Sequence

import jax
import numpy as np

from metaunsup.errors import UserError
from metaunsup.eval.probes import ProbeConfig, logreg_accuracy
from metaunsup.eval.stats import mean_ci95
from metaunsup.models import MLPSpec
from metaunsup.rules.base import UpdateRule
from metaunsup.tasks.suite import (SUITES, SuiteConfig, build_suite, episode_labels, group_sizes,
                                   load_suite_pool, run_group, suite_config)
from metaunsup.types import MetaParams

DEFAULT_INIT_KEYS = 4


@dataclasses.dataclass(frozen=True)
class NoLearning:
    """A rule that never changes the network (the ``none`` baseline)."""

    net: MLPSpec
    name: ClassVar[str] = "none"

    def init_meta_params(self, key):
        return {}

    def init_state(self, meta_params, params, *, key):
        return ()

    def step(self, meta_params, params, state, x, *, key):
        return params, state, {}


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


def _initial(base: SuiteRule, spec: str, init_keys: int) -> SuiteRule:
    """``init:RULE``: RULE's configuration at its initial meta-parameters."""
    probe = base.build(MLPSpec(n_in=1, widths=(1,)))
    metas = [probe.init_meta_params(jax.random.PRNGKey(k)) for k in range(init_keys)]
    if all(_trees_equal(metas[0], m) for m in metas[1:]):
        metas = metas[:1]  # a deterministic initialisation: one key says it all
    return SuiteRule(spec, base.build, tuple(metas),
                     f"untrained configuration of {base.spec} ({len(metas)} init key(s))")


def _loaded(spec: str, loaded, what: str) -> SuiteRule:
    return SuiteRule(spec, loaded.for_net, (loaded.meta_params,), what)


def resolve_rule(spec: str, *, init_keys: int = DEFAULT_INIT_KEYS) -> SuiteRule:
    """Turns a rule specification (module doc) into a :class:`SuiteRule`."""
    from metaunsup.rules import rule_names
    from metaunsup.rules.loading import hand_rule, load_rule, random_init_rule

    spec = str(spec)
    if not spec.strip():
        raise UserError("empty rule specification")
    if spec.startswith("init:"):
        return _initial(resolve_rule(spec[len("init:"):], init_keys=init_keys), spec, init_keys)
    if spec == "none":
        return SuiteRule(spec, NoLearning, ({},), "no learning (random network)")
    if spec == "shipped":
        return _loaded(spec, load_rule(None), "the shipped rule")
    if spec == "random-init":
        metas = tuple(random_init_rule(k).meta_params for k in range(init_keys))
        return SuiteRule(spec, random_init_rule(0).for_net, metas,
                         f"learned rule, small config, untrained ({init_keys} init keys)")
    path_part, at, step_text = spec.rpartition("@")
    if at and Path(path_part).is_dir():
        try:
            step = int(step_text)
        except ValueError:
            raise UserError(f"rule {spec!r}: expected WORKDIR@STEP with an integer step") from None
        return _from_workdir(spec, path_part, step)
    path = Path(spec)
    if path.is_dir():
        return _from_workdir(spec, spec, None)
    if path.is_file():
        return _loaded(spec, load_rule(path), f"rule file {spec}")
    loaded = hand_rule(spec)  # NAME[:k=v,...], options typed by the rule's config
    if loaded is not None:
        return _loaded(spec, loaded,
                       f"hand-designed rule {loaded.name} {loaded.config or ''}".strip())
    raise UserError(f"unknown rule {spec!r}: not a file, a workdir, 'shipped', 'random-init', "
                    f"'none', 'init:RULE', or a hand-designed rule "
                    f"({', '.join(n for n in rule_names() if n != 'learned')})")


def _from_workdir(spec: str, workdir: str, step: int | None) -> SuiteRule:
    from metaunsup.outer.export import checkpoint_rule

    from metaunsup.rules.loading import check_meta_params

    config, rule, meta, step, val = checkpoint_rule(workdir, step=step)
    cfg = getattr(rule, "config", None)
    check_meta_params(f"{workdir} (checkpoint of step {step})", config.rule,
                      dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else {}, meta)
    meta = jax.tree_util.tree_map(jax.numpy.asarray, meta)
    return SuiteRule(spec, lambda net: dataclasses.replace(rule, net=net), (meta,),
                     f"{workdir} step {step} (val {val})")


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
    from tqdm.auto import tqdm

    if not specs:
        raise UserError("validate: give at least one rule")
    reference = specs[0] if reference is None else reference
    order = list(dict.fromkeys([reference, *specs]))
    rules = {s: resolve_rule(s, init_keys=init_keys) for s in order}
    pool = load_suite_pool(config)
    groups = build_suite(config, pool)
    total = sum(len(r.meta_params) for r in rules.values()) * config.tasks
    bar = tqdm(total=total, disable=not progress, unit="task", desc="validate",
               dynamic_ncols=True)
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


__all__ = ["NoLearning", "SuiteRule", "format_record", "header", "resolve_rule",
           "score_rule", "summarize", "validate_rules"]


# ----------------------------------------------------------------------------- command line


def add_parser(sub) -> None:
    """Registers ``metaunsup validate`` on the CLI's subparsers."""
    import argparse

    from metaunsup.errors import check_positive_int

    def pos_int(name):
        def parse(text):
            try:
                return check_positive_int(text, name=name)
            except UserError as e:
                raise argparse.ArgumentTypeError(str(e))
        return parse

    def nonneg_int(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
        if value < 0:
            raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
        return value

    p = sub.add_parser(
        "validate", help="compare rules pair by pair on a fixed suite of validation tasks",
        description="Scores rules on a fixed, seeded suite of tasks from the validation split "
                    "of the meta-training data (glyphs, digits, natural-image patches, generated "
                    "non-image families; never MNIST, Fashion-MNIST or text), or with --suite "
                    "transfer on families kept out of meta-training, every rule on the same tasks, networks, minibatches and episodes. "
                    "RULE: shipped, a rule file, WORKDIR[@STEP], init:RULE, random-init, none, "
                    "or a hand-designed rule NAME[:key=value,...].")
    p.add_argument("rules", nargs="+", metavar="RULE")
    p.add_argument("--reference", metavar="RULE",
                   help="paired differences are taken to this rule (default: the first)")
    p.add_argument("--tasks", type=pos_int("--tasks"),
                   help=f"number of suite tasks N (default {SuiteConfig.tasks}; --quick: "
                        f"{QUICK['tasks']})")
    p.add_argument("--steps", type=pos_int("--steps"),
                   help=f"inner steps S, the long horizon (default {SuiteConfig.steps}; "
                        f"--quick: {QUICK['steps']})")
    p.add_argument("--short-steps", type=nonneg_int,
                   help=f"the short horizon, at most --steps (default: the smaller of "
                        f"{SuiteConfig.short_steps} (--quick: {QUICK['short_steps']}) and "
                        "--steps)")
    p.add_argument("--seed", type=nonneg_int, default=SuiteConfig.seed,
                   help=f"suite seed (default {SuiteConfig.seed})")
    p.add_argument("--groups", help="comma-separated architecture groups (default: all; "
                                    f"--quick: {','.join(QUICK['groups'])})")
    p.add_argument("--suite", choices=sorted(SUITES), default="validation",
                   help="validation: the validation split of the meta-training families; "
                        "transfer: families kept out of meta-training and validation")
    p.add_argument("--init-keys", type=pos_int("--init-keys"), default=DEFAULT_INIT_KEYS,
                   help=f"initialisation keys averaged for a random init:RULE (default "
                        f"{DEFAULT_INIT_KEYS})")
    p.add_argument("--quick", action="store_true",
                   help="tiny suite for smoke tests: its own defaults for --tasks, --steps, "
                        "--short-steps and --groups (options given explicitly still apply)")
    p.add_argument("--json", action="store_true", help="one JSON object per rule and line")
    p.add_argument("--no-progress", dest="progress", action="store_false")


# --quick's defaults; an option given explicitly overrides them.
QUICK = {"tasks": 4, "steps": 30, "short_steps": 10, "groups": ("paper",)}


def suite_config_from_args(args) -> SuiteConfig:
    """The suite that ``validate``'s options describe; contradicting values are errors.

    Defaults come from :class:`SuiteConfig` (or :data:`QUICK` with ``--quick``); an
    explicit ``--short-steps`` larger than the steps, or an empty ``--groups``, is a
    one-line :class:`UserError`, never clamped or read as "all".
    """
    from metaunsup.tasks.suite import ARCH_GROUPS

    base = dict(QUICK) if args.quick else {"tasks": SuiteConfig.tasks,
                                           "steps": SuiteConfig.steps,
                                           "short_steps": SuiteConfig.short_steps,
                                           "groups": SuiteConfig.groups}
    steps = base["steps"] if args.steps is None else args.steps
    if args.short_steps is None:
        short = min(base["short_steps"], steps)  # the documented default, not a clamp
    elif args.short_steps > steps:
        raise UserError(f"--short-steps {args.short_steps} is larger than --steps {steps}: "
                        "the short horizon must be at most the long one")
    else:
        short = args.short_steps
    groups = base["groups"]
    if args.groups is not None:
        groups = tuple(g.strip() for g in args.groups.split(","))
        known = [g[0] for g in ARCH_GROUPS]
        if not any(groups) or not all(groups):
            raise UserError(f"--groups {args.groups!r}: give one or more group names, "
                            f"comma-separated, from {', '.join(known)} (omit --groups for "
                            "all)")
    return suite_config(args.suite, tasks=base["tasks"] if args.tasks is None else args.tasks,
                        steps=steps, short_steps=short, seed=args.seed, groups=groups)


def cmd_validate(args) -> int:
    import json

    config = suite_config_from_args(args)
    reference = args.reference or args.rules[0]
    for spec in dict.fromkeys([reference, *args.rules]):  # every spec checked before any run
        resolve_rule(spec, init_keys=args.init_keys)
    if not args.json:
        sizes = ", ".join(f"{g} {n}" for g, n in group_sizes(config).items())
        print(f"suite: {config.tasks} tasks ({sizes}), seed {config.seed}, {args.suite} split of "
              f"{' + '.join(config.datasets)}, {config.n_way}-way {config.shots}-shot logistic "
              f"probe")
        print(header(config, reference), flush=True)

    def emit(rec):
        print(json.dumps(rec) if args.json else format_record(rec), flush=True)

    validate_rules(args.rules, reference=reference, config=config, init_keys=args.init_keys,
                   progress=args.progress and not args.json, emit=emit)
    return 0
