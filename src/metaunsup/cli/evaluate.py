"""``metaunsup evaluate``: few-shot probe accuracy of representation methods.

Examples::

    metaunsup evaluate --method raw,pca,random --dataset fashion_mnist --resolution 14 \\
        --shots 10 --seeds 10
    metaunsup evaluate --method random --data mine.npz --shots 5 --seeds 3 --json
    metaunsup evaluate --method rule --rule oja --dataset digits --curve-every 100

Library: :func:`metaunsup.eval.evaluate.evaluate_methods` and
:func:`metaunsup.eval.compare.method_curve`.
"""
from __future__ import annotations

import argparse
import json

from metaunsup.baselines.registry import check_options, get_method
from metaunsup.cli import options as opt
from metaunsup.cli.table import HEADER, row
from metaunsup.data import load
from metaunsup.data.episodes import check_shots
from metaunsup.errors import UserError, check_positive_int
from metaunsup.eval.compare import curve_records, method_curve
from metaunsup.eval.evaluate import evaluate_methods
from metaunsup.eval.probes import ProbeConfig
from metaunsup.eval.userdata import load_npz
from metaunsup.models import MLPSpec, get_activation, parse_widths
from metaunsup.rules.loading import load_rule

NAME = "evaluate"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="few-shot probe accuracy of representation methods",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--methods", "--method", dest="method", required=True,
                   help="method name or comma-separated list, e.g. raw,pca,random")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="registered dataset name (see 'metaunsup datasets')")
    src.add_argument("--data", metavar="PATH.npz",
                     help="your own data: x_train, y_train, x_test, y_test arrays")
    p.add_argument("--resolution", type=int, help="image side in pixels (datasets only)")
    opt.add_protocol(p)
    p.add_argument("--first-seed", type=int, default=0, help="seeds are first..first+S-1")
    opt.add_network(p)
    p.add_argument("--probe", choices=("logreg", "ridge"), default="logreg")
    p.add_argument("--no-standardize", dest="standardize", action="store_false",
                   help="probe the features as given (default: standardise with support stats)")
    p.add_argument("--max-test", type=opt.max_test, default=2000,
                   help="score on a seeded subset of N test examples ('all' for the whole split)")
    p.add_argument("--steps", type=int, help="inner steps, for methods that train")
    opt.add_rule(p, help=f"for the method 'rule': {opt.RULE_SPECS} (default: the shipped rule)")
    p.add_argument("--option", type=opt.key_value("--option"), action="append", default=[],
                   metavar="KEY=VALUE",
                   help="extra method option, repeatable (e.g. whiten=true for pca)")
    p.add_argument("--curve-every", "--curve", dest="curve", type=int, metavar="M",
                   help="methods that train: probe accuracy every M inner steps")
    opt.add_json(p, "one JSON object per method and line")


def _resolution_of(dataset, requested):
    if requested is not None:
        return requested
    shape = getattr(dataset, "image_shape", None)
    return int(shape[0]) if shape else None


def _check(args, methods: list[str]) -> dict:
    """The method options, typed; every argument checked before any data is loaded."""
    if not methods:
        raise UserError("--method: give at least one method name")
    for m in methods:
        get_method(m)
    get_activation(args.activation)
    check_positive_int(args.shots, name="--shots")
    check_positive_int(args.seeds, name="--seeds")
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
    if args.data is not None and args.resolution is not None:
        raise UserError("--resolution applies to --dataset only; --data arrays are used as given")
    return options


def _curves(methods, dataset, args, *, widths, seeds, options) -> None:
    spec = MLPSpec(n_in=int(dataset.x_train.shape[1]), widths=widths, activation=args.activation)
    check_shots(dataset.y_train, args.shots)
    config = ProbeConfig(max_test=args.max_test, standardize=args.standardize)
    for method in methods:
        curve = method_curve(method, dataset, spec=spec, shots=args.shots, seeds=seeds,
                             every=args.curve, config=config, options=options)
        if not args.json:
            print(f"{'step':>7} {'accuracy %':>15}   ({method}, {dataset.name}, "
                  f"{args.shots}-shot, {len(seeds)} seeds)", flush=True)
        for rec in curve_records(curve, dataset=dataset.name, shots=args.shots, options=options,
                                 resolution=_resolution_of(dataset, args.resolution)):
            ci = "  n/a" if rec["ci95"] is None else f"{rec['ci95']:5.2f}"  # one seed
            print(json.dumps(rec) if args.json else f"{rec['step']:>7} {rec['mean']:>8.2f} ± {ci}",
                  flush=True)


def run(args) -> int:
    methods = opt.names(args.method)
    options = _check(args, methods)
    widths = parse_widths(args.widths)
    dataset = (load_npz(args.data) if args.data is not None
               else load(args.dataset, resolution=args.resolution))
    if "rule" in methods:  # a bad rule fails here, before the table's header
        load_rule(args.rule).for_net(MLPSpec(n_in=int(dataset.x_train.shape[1]),
                                             widths=widths, activation=args.activation))
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    if args.curve is not None:
        _curves(methods, dataset, args, widths=widths, seeds=seeds, options=options)
        return 0
    check_shots(dataset.y_train, args.shots)  # before the table's header
    if not args.json:
        print(HEADER, flush=True)
    evaluate_methods(methods, dataset, dataset_name=dataset.name,
                     resolution=_resolution_of(dataset, args.resolution), widths=widths,
                     activation=args.activation, shots=args.shots, seeds=seeds,
                     probe=args.probe, max_test=args.max_test, options=options,
                     standardize=args.standardize,
                     on_record=lambda rec: print(json.dumps(rec) if args.json else row(rec),
                                                 flush=True))
    return 0
