"""``metaunsup train``: train a base network with a rule on an unlabeled array and save it.

::

    metaunsup train --rule oja --data x.npy --out net.safetensors [--widths 128,32 --steps 1000]

``--data`` is a ``.npy`` array [N, D] or [N, H, W] (``uint8`` is scaled to [0, 1]),
or a ``.npz`` whose ``x_train`` (else its only array) is used; it needs at least one
batch (``--batch-size``, at least 2 for the batch-norm statistics). Every input and
the output path are checked before anything is written; an existing ``--out`` is
replaced only with ``--force``, and only if it is a metaunsup network file.
Library: :func:`metaunsup.train` and :func:`metaunsup.network.save_network`.
"""
from __future__ import annotations

import argparse
import json

from metaunsup.api import train
from metaunsup.cli import options as opt
from metaunsup.errors import UserError, check_positive_int
from metaunsup.eval.userdata import read_unlabeled
from metaunsup.models import get_activation, parse_widths
from metaunsup.network import NETWORK_FORMAT, save_network
from metaunsup.rules.loading import load_rule
from metaunsup.run.checkpoint import file_kind
from metaunsup.run.outputs import check_output_file

NAME = "train"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="train a base network with a rule on unlabeled data and save it",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    opt.add_rule(p)
    p.add_argument("--data", required=True, metavar="X.npy", help="unlabeled [N, D] array")
    p.add_argument("--out", required=True, metavar="NET", help="network file to write")
    opt.add_network(p)
    p.add_argument("--steps", type=int, default=1000, help="inner steps")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    opt.add_no_progress(p)
    opt.add_force(p, "replace an existing --out file (a metaunsup network file only)")


def run(args) -> int:
    widths = parse_widths(args.widths)
    get_activation(args.activation)
    steps = check_positive_int(args.steps, name="--steps")
    batch = check_positive_int(args.batch_size, name="--batch-size")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    check_output_file(args.out, force=args.force, inputs=[args.data, args.rule],
                      kind=file_kind(NETWORK_FORMAT, "a metaunsup network file"))
    rule = load_rule(args.rule)
    x = read_unlabeled(args.data)
    net, info = train(rule, x, widths=widths, activation=args.activation, steps=steps,
                      batch_size=batch, seed=args.seed, progress=args.progress,
                      return_info=True)
    save_network(args.out, net, rule=args.rule or "shipped", rule_name=rule.name,
                 data=str(args.data), steps=steps, batch_size=batch, seed=args.seed)
    print(json.dumps({"out": str(args.out), "rule": rule.name, "n_in": net.spec.n_in,
                      "widths": list(net.spec.widths), "steps": steps,
                      "metrics": info.metrics}), flush=True)
    return 0
