"""The demo: the shipped rule and every baseline on held-out data, as a table and a report.

:func:`plan_demo` checks every setting and loads the rule (one-line
:class:`~metaunsup.errors.UserError` for anything wrong, before any work);
:func:`run_demo` evaluates every method on every dataset
(:func:`metaunsup.eval.compare.compare`: trainable methods as curves over inner
steps, the others once) and writes the report folder
(:func:`metaunsup.eval.compare.write_report`). ``metaunsup demo`` is these two
calls and the printing of what they return.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

from metaunsup.baselines.registry import get_method
from metaunsup.data import load
from metaunsup.errors import UserError, check_positive_int
from metaunsup.eval.compare import compare, write_report
from metaunsup.eval.probes import ProbeConfig
from metaunsup.models import PAPER_WIDTHS, MLPSpec
from metaunsup.rules.loading import load_rule, shipped_rule_path
from metaunsup.run.outputs import OutputDir

DATASETS = ("fashion_mnist", "mnist")
METHODS = ("rule", "autoencoder", "vae", "supervised", "wta", "raw", "pca", "random",
           "random_wide")
MAX_TEST = 2000
TITLE = "metaunsup demo: few-shot probe accuracy (%)"


@dataclasses.dataclass(frozen=True)
class DemoPlan:
    """What a demo runs, checked (:func:`plan_demo`).

    Attributes:
      datasets: dataset names, in order.
      methods: method names (``rule`` dropped when no rule is shipped or given).
      resolution: image side in pixels.
      widths: the base network's widths.
      shots: labelled examples per class.
      seeds: probe seeds ``0 .. S-1``.
      steps: inner steps of every method that trains.
      every: curve points every this many steps.
      rule: the ``--rule`` spec, or None for the shipped rule.
      rule_note: one line on the rule (name, recipe, meta-steps, seed).
    """

    datasets: tuple[str, ...]
    methods: tuple[str, ...]
    resolution: int
    widths: tuple[int, ...]
    shots: int
    seeds: tuple[int, ...]
    steps: int
    every: int
    rule: str | None
    rule_note: str

    @property
    def options(self) -> dict:
        return {} if self.rule is None else {"rule": self.rule}

    def describe(self) -> str:
        """The one-line protocol printed above the table."""
        return (f"Methods: {', '.join(self.methods)}; {self.shots}-shot logistic-regression "
                f"probe, {self.resolution}x{self.resolution} inputs, {len(self.seeds)} seeds, "
                f"network {','.join(map(str, self.widths))}; methods that train take "
                f"{self.steps} steps on the unlabeled training split; accuracy = mean ± 95% "
                f"t-interval over seeds, on {MAX_TEST} test examples; {self.rule_note}")


def plan_demo(*, datasets: Sequence[str] = DATASETS, methods: Sequence[str] = METHODS,
              resolution: int = 14, widths: Sequence[int] = PAPER_WIDTHS, shots: int = 10,
              seeds: int = 5, steps: int = 1000, curve_every: int | None = None,
              rule: str | None = None) -> DemoPlan:
    """Checks the demo's settings and the rule (before any work).

    Args:
      datasets, methods: names (at least one each).
      resolution, shots, seeds, steps: positive integers.
      widths: the base network (default the paper's 4 x 128 + 32).
      curve_every: curve points every this many steps (default ``steps // 5``).
      rule: a rule spec for the ``rule`` method (default the shipped rule; without
        one, ``rule`` is dropped from ``methods``).
    """
    n_seeds = check_positive_int(seeds, name="--seeds")
    steps = check_positive_int(steps, name="--steps")
    shots = check_positive_int(shots, name="--shots")
    resolution = check_positive_int(resolution, name="--resolution")
    every = check_positive_int(curve_every or max(1, steps // 5), name="--curve-every")
    if every > steps:
        raise UserError(f"--curve-every {every} is larger than --steps {steps}: the curves "
                        "would have no point between the first and the last step")
    methods, datasets = list(methods), list(datasets)
    if not methods or not datasets:
        raise UserError("--methods and --datasets need at least one name each")
    for m in methods:
        get_method(m)
    if rule is not None and "rule" not in methods:
        raise UserError("--rule applies to the method 'rule', which --methods does not list")
    rule_note = "no rule"
    if "rule" in methods:
        if rule is None and not shipped_rule_path().is_file():
            methods.remove("rule")
        else:
            loaded = load_rule(rule)  # a bad rule fails here, before any work
            loaded.for_net(MLPSpec(n_in=resolution * resolution, widths=tuple(widths)))
            header = loaded.header
            prov = header.get("provenance", {})
            rule_note = (f"rule: {rule or 'shipped rule'} ({header.get('rule', '?')}, "
                         f"recipe {prov.get('recipe', '?')}, {prov.get('meta_steps', '?')} "
                         f"meta-steps, seed {prov.get('seed', '?')})")
    return DemoPlan(tuple(datasets), tuple(methods), resolution, tuple(widths), shots,
                    tuple(range(n_seeds)), steps, every, rule, rule_note)


def run_demo(plan: DemoPlan, report: OutputDir, *, argv: Sequence[str], progress: bool = True,
             on_record: Callable[[dict], None] | None = None,
             on_skip: Callable[[str, UserError], None] | None = None) -> str:
    """Runs the demo of ``plan`` and writes its report into ``report``.

    Args:
      plan: from :func:`plan_demo`.
      report: the report folder, opened (and checked) by the caller.
      argv: the command's options, recorded in the report (``metaunsup demo ARGV``).
      progress: progress bars of the methods that train.
      on_record: called with each table row (a dict) as soon as it is computed.
      on_skip: called with a dataset's name and the error when it cannot be loaded.

    Returns:
      The report folder's path.

    Raises:
      UserError: no dataset of the plan can be loaded.
    """
    options = {**plan.options, "progress": progress}
    config = ProbeConfig(max_test=MAX_TEST)
    start = time.perf_counter()
    results, image_shape = {}, None
    for name in plan.datasets:
        try:
            dataset = load(name, resolution=plan.resolution)
        except UserError as e:
            if on_skip is not None:
                on_skip(name, e)
            continue
        spec = MLPSpec(n_in=int(dataset.x_train.shape[1]), widths=plan.widths)

        def emit(rec, name=name):
            if on_record is not None:
                on_record({**rec, "dataset": name, "resolution": plan.resolution,
                           "shots": plan.shots, "widths": list(plan.widths),
                           "seconds": round(rec["seconds"], 3)})

        results[name] = compare(dataset, plan.methods, spec=spec, shots=plan.shots,
                                seeds=plan.seeds, steps=plan.steps, every=plan.every,
                                config=config, options=options, on_record=emit)
        image_shape = getattr(dataset, "image_shape", None)
    if not results:
        raise UserError("no demo dataset is available; see 'metaunsup datasets'")
    minutes = (time.perf_counter() - start) / 60
    seeds, widths = list(plan.seeds), ",".join(map(str, plan.widths))
    notes = [f"Command: `metaunsup demo {' '.join(argv)}`",
             f"{plan.shots}-shot logistic regression on the top-layer features, mean ± 95% "
             f"t-interval over seeds {seeds}, {MAX_TEST} test examples; methods that train "
             f"take {plan.steps} steps (batch 128) on the unlabeled training split; network "
             f"{widths} at {plan.resolution}x{plan.resolution}.",
             plan.rule_note + ".", f"Wall time: {minutes:.1f} minutes."]
    out = write_report(report, results, image_shape=tuple(image_shape) if image_shape else None,
                       title=TITLE, notes=[f"- {n}" for n in notes],
                       filter_methods=[m for m in ("rule", "autoencoder") if m in plan.methods],
                       meta={"argv": list(argv), "seeds": seeds, "steps": plan.steps,
                             "shots": plan.shots, "widths": list(plan.widths),
                             "rule": plan.rule_note, "minutes": minutes})
    return str(out)


__all__ = ["DATASETS", "DemoPlan", "METHODS", "plan_demo", "run_demo"]
