"""Command line: ``metaunsup {evaluate,datasets,demo}``.

Thin by design: parse arguments, call library functions, print. Every problem the
user can cause surfaces as a :class:`~metaunsup.errors.UserError`, printed as one
line on stderr with exit status 2 (argument-syntax errors included).

Examples::

    metaunsup evaluate --method raw,pca,random --dataset fashion_mnist --resolution 14 \\
        --shots 10 --seeds 10
    metaunsup evaluate --method random --data mine.npz --shots 5 --seeds 3 --json
    metaunsup datasets
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from metaunsup.errors import UserError, check_positive_int

DEMO_DATASETS = ("fashion_mnist", "mnist")
DEMO_METHODS = ("rule", "autoencoder", "vae", "supervised", "wta", "raw", "pca", "random",
                "random_wide")


class _Parser(argparse.ArgumentParser):
    """argparse that raises UserError (one line, exit 2 in main) instead of exiting."""

    def error(self, message):
        sub = " ".join(self.prog.split()[1:])  # "evaluate" for a subcommand, "" at the top
        raise UserError(f"{sub}: {message}" if sub else message)


def _max_test(text: str) -> int | None:
    if text.strip().lower() == "all":
        return None
    try:
        return check_positive_int(text, name="--max-test")
    except UserError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'all', got {text!r}")


def _option(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of ``--option``; the value is typed by the methods that read it."""
    from metaunsup.values import parse_pair

    try:
        return parse_pair(text, what="--option")
    except UserError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="metaunsup",
                     description="Meta-learned unsupervised learning rules: evaluation tools.")
    parser.add_argument("--no-compile-cache", action="store_true",
                        help="do not use JAX's persistent compilation cache (default folder "
                             "~/.cache/metaunsup/jax; see metaunsup.run.compile_cache)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    ev = sub.add_parser("evaluate", help="few-shot probe accuracy of representation methods",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ev.add_argument("--methods", "--method", dest="method", required=True,
                    help="method name or comma-separated list, e.g. raw,pca,random")
    src = ev.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="registered dataset name (see 'metaunsup datasets')")
    src.add_argument("--data", metavar="PATH.npz",
                     help="your own data: x_train, y_train, x_test, y_test arrays")
    ev.add_argument("--resolution", type=int, help="image side in pixels (datasets only)")
    ev.add_argument("--shots", type=int, default=10, help="labelled examples per class")
    ev.add_argument("--seeds", type=int, default=5, help="number of seeds")
    ev.add_argument("--first-seed", type=int, default=0, help="seeds are first..first+S-1")
    ev.add_argument("--widths", default="128,128,128,128,32",
                    help="base network layer widths, bottom to top")
    ev.add_argument("--activation", default="relu", help="base network nonlinearity")
    ev.add_argument("--probe", choices=("logreg", "ridge"), default="logreg")
    ev.add_argument("--no-standardize", dest="standardize", action="store_false",
                    help="probe the features as given (default: standardise with support stats)")
    ev.add_argument("--max-test", type=_max_test, default=2000,
                    help="score on a seeded subset of N test examples ('all' for the whole split)")
    ev.add_argument("--steps", type=int, help="inner steps, for methods that train")
    ev.add_argument("--rule", metavar="PATH",
                    help="rule file, 'random-init', 'init:shipped' / 'init:PATH' (where that "
                         "rule's meta-training started) or a hand-designed rule name, for the "
                         "'rule' method")
    ev.add_argument("--option", type=_option, action="append", default=[], metavar="KEY=VALUE",
                    help="extra method option, repeatable (e.g. whiten=true for pca)")
    ev.add_argument("--curve-every", "--curve", dest="curve", type=int, metavar="M",
                    help="method 'rule' only: probe accuracy every M inner steps")
    ev.add_argument("--json", action="store_true", help="one JSON object per method and line")

    mt = sub.add_parser("meta-train", help="meta-train an update rule (resumes in WORKDIR)")
    mt.add_argument("--config", required=True,
                    help="recipe name (metaunsup/configs/NAME.toml) or a path to a .toml file")
    mt.add_argument("--workdir", required=True, help="run directory; re-running resumes it")
    mt.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                    help="override a config field (dotted for sections), repeatable")
    mt.add_argument("--no-progress", dest="progress", action="store_false")
    mt.add_argument("--allow-config-change", action="store_true",
                    help="resume WORKDIR although its config.json differs (the old one is "
                         "kept as config.previous-<n>.json)")
    mt.add_argument("--distributed", action="store_true",
                    help="one of several processes on JAX's multi-host runtime "
                         "(metaunsup.outer.distributed); only process 0 writes WORKDIR")
    mt.add_argument("--coordinator", metavar="HOST:PORT",
                    help="process 0's address (default $JAX_COORDINATOR_ADDRESS)")
    mt.add_argument("--num-processes", metavar="N", help="default $JAX_NUM_PROCESSES")
    mt.add_argument("--process-id", metavar="I", help="0..N-1 (default $JAX_PROCESS_ID)")

    ex = sub.add_parser("export-rule", help="write one checkpoint of a meta-training run as a "
                                            "rule file (default: best validation accuracy)")
    ex.add_argument("--workdir", required=True, help="a meta-training run directory")
    ex.add_argument("--out", required=True, metavar="PATH", help="rule file to write")
    ex.add_argument("--step", type=int, help="checkpoint step (default: best val_accuracy)")
    ex.add_argument("--force", action="store_true",
                    help="replace an existing --out file (a metaunsup rule file only)")

    from metaunsup.eval import validate as _validate

    _validate.add_parser(sub)

    ds = sub.add_parser("datasets", help="list datasets, their shapes and availability")
    ds.add_argument("--prepare", action="append", default=[], metavar="NAME",
                    help="load NAME once, fetching it first where allowed "
                         "(METAUNSUP_DOWNLOAD=1); repeatable")

    demo = sub.add_parser("demo", help="the shipped rule and every baseline on held-out "
                                       "Fashion-MNIST and MNIST at 14x14, with a report/",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    demo.add_argument("--datasets", default=",".join(DEMO_DATASETS),
                      help="comma-separated dataset names")
    demo.add_argument("--methods", default=",".join(DEMO_METHODS),
                      help="comma-separated methods ('rule' is skipped if no rule is shipped "
                           "and --rule is not given)")
    demo.add_argument("--resolution", type=int, default=14, help="image side in pixels")
    demo.add_argument("--widths", default="128,128,128,128,32",
                      help="base network layer widths (the paper's 4 x 128 + 32)")
    demo.add_argument("--shots", type=int, default=10, help="labelled examples per class")
    demo.add_argument("--seeds", type=int, default=5, help="number of seeds")
    demo.add_argument("--steps", type=int, default=1000,
                      help="inner steps of every method that trains")
    demo.add_argument("--curve-every", type=int,
                      help="probe every this many steps for the curves (default: steps / 5)")
    demo.add_argument("--rule", metavar="PATH", help="rule file (default: the shipped rule)")
    demo.add_argument("--report", default="report", metavar="DIR",
                      help="folder for README.md, results.json and the figures (refused if "
                           "it holds files metaunsup did not write there)")
    demo.add_argument("--force", action="store_true",
                      help="write into --report although it holds other files (they are "
                           "never replaced)")
    demo.add_argument("--json", action="store_true")

    from metaunsup.studies.commands import add_parsers as add_study_parsers

    add_study_parsers(sub)  # study, report
    from metaunsup.network_cli import add_parsers as add_network_parsers

    add_network_parsers(sub)  # train, features
    return parser


# ----------------------------------------------------------------------------- output

_HEADER = f"{'method':<12} {'dataset':<15} {'res':>4} {'shots':>5} {'seeds':>5} " \
          f"{'accuracy %':>15} {'time s':>7}"


def _row(rec: dict) -> str:
    acc = (f"{rec['mean']:.2f} (1 seed)" if rec["ci95"] is None  # no interval from one seed
           else f"{rec['mean']:.2f} ± {rec['ci95']:.2f}")
    res = "-" if rec["resolution"] is None else str(rec["resolution"])
    return (f"{rec['method']:<12} {rec['dataset']:<15} {res:>4} {rec['shots']:>5} "
            f"{len(rec['seeds']):>5} {acc:>15} {rec['seconds']:>7.1f}")


def _emit(rec: dict, as_json: bool) -> None:
    print(json.dumps(rec) if as_json else _row(rec), flush=True)


# ----------------------------------------------------------------------------- commands

def _load_dataset(name: str, resolution: int | None):
    from metaunsup.data import load

    return load(name, resolution=resolution)


def run_evaluate(methods: Sequence[str], dataset, *, dataset_name: str, resolution,
                 widths: Sequence[int], activation: str, shots: int, seeds: Sequence[int],
                 probe: str, max_test: int | None, options: dict, as_json: bool,
                 standardize: bool = True, header: bool = True) -> list[dict]:
    """Evaluates each method on ``dataset`` and prints one line (or JSON object) per method."""
    from metaunsup.eval import ProbeConfig, check_shots, evaluate, get_method
    from metaunsup.models import MLPSpec

    for m in methods:
        get_method(m)  # unknown names fail before any work
    spec = MLPSpec(n_in=int(dataset.x_train.shape[1]), widths=tuple(widths),
                   activation=activation)
    check_shots(dataset.y_train, shots)
    config = ProbeConfig(max_test=max_test, standardize=standardize)
    if header and not as_json:
        print(_HEADER, flush=True)
    records = []
    for m in methods:
        res = evaluate(m, dataset, spec=spec, shots=shots, seeds=seeds, probe=probe,
                       config=config, options=options)
        rec = {"method": m, "dataset": dataset_name, "resolution": resolution,
               "shots": shots, **res.to_dict(), "widths": list(widths),
               "activation": activation, "probe": probe, "standardize": standardize,
               "max_test": max_test,
               "test_examples": len(dataset.y_test) if max_test is None
               else min(max_test, len(dataset.y_test)), "options": options}
        rec["seconds"] = round(rec["seconds"], 3)
        _emit(rec, as_json)
        records.append(rec)
    return records


def _resolution_of(dataset, requested):
    if requested is not None:
        return requested
    shape = getattr(dataset, "image_shape", None)
    return int(shape[0]) if shape else None


def cmd_evaluate(args) -> int:
    from metaunsup.eval import get_method
    from metaunsup.models import get_activation, parse_widths

    methods = [m.strip() for m in args.method.split(",") if m.strip()]
    if not methods:
        raise UserError("--method: give at least one method name")
    for m in methods:
        get_method(m)  # fail on unknown names before loading anything
    get_activation(args.activation)
    shots = check_positive_int(args.shots, name="--shots")
    n_seeds = check_positive_int(args.seeds, name="--seeds")
    widths = parse_widths(args.widths)
    from metaunsup.eval.options import check_options

    if args.first_seed < 0:
        raise UserError(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.rule is not None and "rule" not in methods:
        raise UserError("--rule applies to the method 'rule', which --method does not list")
    options = check_options(methods, dict(args.option))
    for key in ("steps", "rule"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    if "steps" in options:
        check_positive_int(options["steps"], name="--steps")
    if args.curve is not None:
        check_positive_int(args.curve, name="--curve-every")
        flat = [m for m in methods if get_method(m).train is None]
        if flat:
            raise UserError(f"--curve-every applies to methods that train; {', '.join(flat)} "
                            "do not")
        if "steps" in options and args.curve > options["steps"]:
            raise UserError(f"--curve-every {args.curve} is larger than --steps "
                            f"{options['steps']}: the curve would have no point between the "
                            "first and the last step")
    if args.data is not None:
        from metaunsup.eval.userdata import load_npz

        if args.resolution is not None:
            raise UserError("--resolution applies to --dataset only; --data arrays are used as given")
        dataset = load_npz(args.data)
    else:
        dataset = _load_dataset(args.dataset, args.resolution)
    if "rule" in methods:  # a bad rule file fails here, before the table's header
        from metaunsup.models import MLPSpec
        from metaunsup.rules.loading import load_rule

        load_rule(args.rule).for_net(MLPSpec(n_in=int(dataset.x_train.shape[1]),
                                             widths=widths, activation=args.activation))
    seeds = list(range(args.first_seed, args.first_seed + n_seeds))
    if args.curve is not None:
        return run_curve(methods, dataset, resolution=_resolution_of(dataset, args.resolution),
                         widths=widths, activation=args.activation, shots=shots, seeds=seeds,
                         every=args.curve, max_test=args.max_test, options=options,
                         as_json=args.json, standardize=args.standardize)
    run_evaluate(methods, dataset, dataset_name=dataset.name,
                 resolution=_resolution_of(dataset, args.resolution), widths=widths,
                 activation=args.activation, shots=shots, seeds=seeds, probe=args.probe,
                 max_test=args.max_test, options=options, as_json=args.json,
                 standardize=args.standardize)
    return 0


def run_curve(methods, dataset, *, resolution, widths, activation, shots, seeds, every,
              max_test, options, as_json, standardize=True) -> int:
    """Probe accuracy of each method's network every ``every`` inner steps, over seeds."""
    from metaunsup.eval import ProbeConfig, check_shots
    from metaunsup.eval.compare import method_curve
    from metaunsup.models import MLPSpec

    spec = MLPSpec(n_in=int(dataset.x_train.shape[1]), widths=tuple(widths),
                   activation=activation)
    check_shots(dataset.y_train, shots)
    config = ProbeConfig(max_test=max_test, standardize=standardize)
    for method in methods:
        curve = method_curve(method, dataset, spec=spec, shots=shots, seeds=seeds, every=every,
                             config=config, options=options)
        summary = curve.summary()
        if not as_json:
            print(f"{'step':>7} {'accuracy %':>15}   ({method}, {dataset.name}, {shots}-shot, "
                  f"{len(seeds)} seeds)", flush=True)
        for i, step in enumerate(summary["steps"]):
            mean, ci = summary["mean"][i], summary["ci95"][i]
            rec = {"method": method, "dataset": dataset.name, "resolution": resolution,
                   "shots": shots, "seeds": list(seeds), "step": int(step), "mean": mean,
                   "ci95": ci, "accuracies": [a[i] for a in curve.accuracies],
                   "options": options}
            ci_text = "  n/a" if ci is None else f"{ci:5.2f}"  # one seed: no interval
            print(json.dumps(rec) if as_json else f"{step:>7} {mean:>8.2f} ± {ci_text}",
                  flush=True)
    return 0


def cmd_meta_train(args) -> int:
    from metaunsup.outer.config import load_config
    from metaunsup.outer.trainer import meta_train

    from metaunsup.run.interrupt import exit_on_sigint, interrupted_message

    config = load_config(args.config, args.overrides)
    given = [f for f in ("coordinator", "num_processes", "process_id") if getattr(args, f)]
    if given and not args.distributed:
        raise UserError(f"--{given[0].replace('_', '-')} needs --distributed")
    if args.distributed:  # before any JAX computation
        from metaunsup.outer import distributed

        distributed.initialize(distributed.resolve_spec(
            args.coordinator, args.num_processes, args.process_id))
    # Ctrl-C: print what the workdir holds and exit 130 at once, never mid-write.
    with exit_on_sigint(lambda: interrupted_message(args.workdir, config.outer_steps)):
        record = meta_train(config, args.workdir, progress=args.progress,
                            allow_config_change=args.allow_config_change)
    print(json.dumps(record), flush=True)
    return 0


def cmd_export_rule(args) -> int:
    from metaunsup.outer.export import export_rule
    from metaunsup.outer.validation import validation_history
    from metaunsup.run.checkpoint import file_kind
    from metaunsup.run.outputs import check_output_file
    from metaunsup.run.rulefile import RULE_FORMAT

    check_output_file(args.out, force=args.force,
                      kind=file_kind(RULE_FORMAT, "a metaunsup rule file"))
    history = validation_history(args.workdir)
    result = export_rule(args.workdir, args.out, step=args.step)  # errors before any output
    for rec in history:
        print(json.dumps(rec), flush=True)
    print(json.dumps(result), flush=True)
    return 0


def cmd_datasets(args) -> int:
    from metaunsup.data import list_datasets, load

    for name in args.prepare:
        d = load(name)
        print(f"{d.name}: ready ({len(d.y_train)} train, {len(d.y_test)} test, "
              f"{d.x_train.shape[1]} inputs, {d.num_classes} classes)", flush=True)
    if args.prepare:
        return 0

    print(f"{'name':<14} {'modality':<8} {'shape':<7} {'classes':>7} {'train/test':>12}  "
          f"{'available':<9}  how to get it")
    for info in list_datasets():
        shape = "x".join(str(s) for s in info.native_shape)
        sizes = f"{info.sizes[0]}/{info.sizes[1]}"
        ok = info.available()
        print(f"{info.name:<14} {info.modality:<8} {shape:<7} {info.num_classes:>7} "
              f"{sizes:>12}  {'yes' if ok else 'no':<9}  {'' if ok else info.how_to_get}")
    return 0


def cmd_demo(args) -> int:
    """Every method on each dataset: a printed table, and report/ with curves and filters."""
    import time

    from metaunsup.eval import ProbeConfig, get_method
    from metaunsup.eval.compare import compare, write_report
    from metaunsup.models import MLPSpec, parse_widths
    from metaunsup.rules.loading import load_rule, shipped_rule_path

    n_seeds = check_positive_int(args.seeds, name="--seeds")
    steps = check_positive_int(args.steps, name="--steps")
    shots = check_positive_int(args.shots, name="--shots")
    resolution = check_positive_int(args.resolution, name="--resolution")
    every = check_positive_int(args.curve_every or max(1, steps // 5), name="--curve-every")
    if every > steps:
        raise UserError(f"--curve-every {every} is larger than --steps {steps}: the curves "
                        "would have no point between the first and the last step")
    widths = parse_widths(args.widths)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    if not methods or not names:
        raise UserError("--methods and --datasets need at least one name each")
    for m in methods:
        get_method(m)
    options: dict[str, Any] = {"progress": not args.json}
    rule_note = "no rule"
    if args.rule is not None and "rule" not in methods:
        raise UserError("--rule applies to the method 'rule', which --methods does not list")
    from metaunsup.eval.compare import REPORT_FILES
    from metaunsup.run.outputs import open_output_dir

    report_dir = open_output_dir(args.report, force=args.force, planned=REPORT_FILES,
                                 option="--report")
    if "rule" in methods:
        if args.rule is None and not shipped_rule_path().is_file():
            methods.remove("rule")
        else:
            loaded = load_rule(args.rule)  # a bad rule file fails here, before any work
            loaded.for_net(MLPSpec(n_in=resolution * resolution, widths=widths))
            header = loaded.header
            if args.rule is not None:
                options["rule"] = args.rule
            prov = header.get("provenance", {})
            rule_note = (f"rule: {args.rule or 'shipped rule'} ({header.get('rule', '?')}, "
                         f"recipe {prov.get('recipe', '?')}, {prov.get('meta_steps', '?')} "
                         f"meta-steps, seed {prov.get('seed', '?')})")
    seeds = list(range(n_seeds))
    config = ProbeConfig(max_test=2000)
    if not args.json:
        print(f"Methods: {', '.join(methods)}; {shots}-shot logistic-regression probe, "
              f"{resolution}x{resolution} inputs, {n_seeds} seeds, network "
              f"{','.join(map(str, widths))}; methods that train take {steps} steps on the "
              f"unlabeled training split; accuracy = mean ± 95% t-interval over seeds, on "
              f"2000 test examples; {rule_note}", flush=True)
    start = time.perf_counter()
    results = {}
    for name in names:
        try:
            dataset = _load_dataset(name, resolution)
        except UserError as e:
            print(f"skipping {name}: {e}", file=sys.stderr, flush=True)
            continue
        spec = MLPSpec(n_in=int(dataset.x_train.shape[1]), widths=widths)
        if not args.json and not results:
            print(_HEADER, flush=True)

        def emit(rec, name=name):
            rec = {**rec, "dataset": name, "resolution": resolution, "shots": shots,
                   "widths": list(widths), "seconds": round(rec["seconds"], 3)}
            _emit(rec, args.json)

        results[name] = compare(dataset, methods, spec=spec, shots=shots, seeds=seeds,
                                steps=steps, every=every, config=config, options=options,
                                on_record=emit)
        image_shape = getattr(dataset, "image_shape", None)
    if not results:
        raise UserError("no demo dataset is available; see 'metaunsup datasets'")
    minutes = (time.perf_counter() - start) / 60
    notes = [f"Command: `metaunsup demo {' '.join(_demo_argv(args))}`",
             f"{shots}-shot logistic regression on the top-layer features, mean ± 95% "
             f"t-interval over seeds {seeds}, 2000 test examples; methods that train take "
             f"{steps} steps (batch 128) on the unlabeled training split; network "
             f"{','.join(map(str, widths))} at {resolution}x{resolution}.",
             rule_note + ".", f"Wall time: {minutes:.1f} minutes."]
    notes = [f"- {n}" for n in notes]
    out = write_report(report_dir, results,
                       image_shape=tuple(image_shape) if image_shape else None,
                       title="metaunsup demo: few-shot probe accuracy (%)", notes=notes,
                       filter_methods=[m for m in ("rule", "autoencoder") if m in methods],
                       meta={"argv": _demo_argv(args), "seeds": seeds, "steps": steps,
                             "shots": shots, "widths": list(widths), "rule": rule_note,
                             "minutes": minutes})
    if not args.json:
        print(f"report written to {out}/ (README.md, results.json, curves.png, filters)",
              flush=True)
    return 0


def _demo_argv(args) -> list[str]:
    """The demo's options as command-line words (recorded in the report)."""
    words = []
    for key in ("datasets", "methods", "resolution", "widths", "shots", "seeds", "steps",
                "curve_every", "rule", "report"):
        value = getattr(args, key)
        if value is not None:
            words += [f"--{key.replace('_', '-')}", str(value)]
    return words


_COMMANDS = {"evaluate": cmd_evaluate, "datasets": cmd_datasets, "demo": cmd_demo,
             "meta-train": cmd_meta_train, "export-rule": cmd_export_rule,
             "validate": lambda a: _validate_cmd(a),
             "study": lambda a: _studies().cmd_study(a),
             "report": lambda a: _studies().cmd_report(a),
             "train": lambda a: _network_cli().cmd_train(a),
             "features": lambda a: _network_cli().cmd_features(a)}


def _network_cli():
    from metaunsup import network_cli

    return network_cli


def _validate_cmd(args) -> int:
    from metaunsup.eval.validate import cmd_validate

    return cmd_validate(args)


def _studies():
    from metaunsup.studies import commands

    return commands


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Returns the exit status (0 ok, 2 bad input)."""
    try:
        args = build_parser().parse_args(argv)
        from metaunsup.run.compile_cache import enable

        enable(disabled=args.no_compile_cache)  # before any JAX computation
        return _COMMANDS[args.command](args)
    except UserError as e:
        msg = " ".join(str(e).split())  # one line, whatever the message held
        print(f"metaunsup: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("metaunsup: interrupted", file=sys.stderr)
        return 130
