"""``metaunsup train`` and ``metaunsup features``: the Python API on unlabeled files.

::

    metaunsup train --rule oja --data x.npy --out net.safetensors [--widths 128,32 --steps 1000]
    metaunsup features --network net.safetensors --data x.npy --out feats.npy

``--data`` is a ``.npy`` array [N, D] or [N, H, W] (``uint8`` is scaled to
[0, 1]), or a ``.npz`` whose ``x_train`` (else its only array) is used; ``train``
needs at least one batch of it (``--batch-size``, at least 2 for the batch-norm
statistics). ``--rule`` also takes a hand-designed rule with options
(``oja:lr=0.01``). Every input and the output path are checked before anything
is written; an existing ``--out`` is replaced only with ``--force``, and only if
it is a file of the kind the command writes (:mod:`metaunsup.run.outputs`).
"""
from __future__ import annotations

import argparse
import io
import json

import numpy as np

from metaunsup.errors import UserError, check_positive_int


def read_inputs(path: str) -> np.ndarray:
    """The unlabeled array in ``path`` (module doc), as float32 [N, D]."""
    from metaunsup.eval.userdata import as_inputs, read_array_file

    loaded = read_array_file(path)
    if isinstance(loaded, dict):  # an .npz
        names = list(loaded)
        name = "x_train" if "x_train" in names else (names[0] if len(names) == 1 else None)
        if name is None:
            raise UserError(f"{path}: an .npz needs an x_train array or exactly one "
                            f"array (has {', '.join(names) or 'none'})")
        loaded = loaded[name]
    return as_inputs(loaded, name=str(path))


def add_parsers(sub) -> None:
    tr = sub.add_parser("train", help="train a base network with a rule on unlabeled data "
                                      "and save it", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    tr.add_argument("--rule", default=None, help="rule file, hand-designed rule name (oja, "
                    "sanger, softhebb, ...) or random-init (default: the shipped rule)")
    tr.add_argument("--data", required=True, metavar="X.npy", help="unlabeled [N, D] array")
    tr.add_argument("--out", required=True, metavar="NET", help="network file to write")
    tr.add_argument("--widths", default="128,128,128,128,32", help="layer widths, bottom to top")
    tr.add_argument("--activation", default="relu")
    tr.add_argument("--steps", type=int, default=1000, help="inner steps")
    tr.add_argument("--batch-size", type=int, default=128)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--no-progress", dest="progress", action="store_false")
    tr.add_argument("--force", action="store_true",
                    help="replace an existing --out file (a metaunsup network file only)")

    fe = sub.add_parser("features", help="top-layer features of data under a saved network")
    fe.add_argument("--network", required=True, metavar="NET", help="from 'metaunsup train'")
    fe.add_argument("--data", required=True, metavar="X.npy", help="[N, D] array")
    fe.add_argument("--out", required=True, metavar="F.npy", help="features [N, F] to write")
    fe.add_argument("--force", action="store_true",
                    help="replace an existing --out file (a .npy array only, never an input)")


def cmd_train(args) -> int:
    from metaunsup.api import train
    from metaunsup.models import get_activation, parse_widths
    from metaunsup.network import NETWORK_FORMAT, save_network
    from metaunsup.rules.loading import load_rule
    from metaunsup.run.checkpoint import file_kind
    from metaunsup.run.outputs import check_output_file

    widths = parse_widths(args.widths)
    get_activation(args.activation)
    steps = check_positive_int(args.steps, name="--steps")
    batch = check_positive_int(args.batch_size, name="--batch-size")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    check_output_file(args.out, force=args.force, inputs=[args.data, args.rule],
                      kind=file_kind(NETWORK_FORMAT, "a metaunsup network file"))
    rule = load_rule(args.rule)
    x = read_inputs(args.data)
    net, info = train(rule, x, widths=widths, activation=args.activation, steps=steps,
                      batch_size=batch, seed=args.seed, progress=args.progress,
                      return_info=True)
    save_network(args.out, net, rule=args.rule or "shipped", rule_name=rule.name,
                 data=str(args.data), steps=steps, batch_size=batch, seed=args.seed)
    print(json.dumps({"out": str(args.out), "rule": rule.name, "n_in": net.spec.n_in,
                      "widths": list(net.spec.widths), "steps": steps,
                      "metrics": info.metrics}), flush=True)
    return 0


def cmd_features(args) -> int:
    from metaunsup.api import features
    from metaunsup.network import load_network
    from metaunsup.run.outputs import NPY, atomic_write_bytes, check_output_file

    check_output_file(args.out, force=args.force, kind=NPY, inputs=[args.data, args.network])
    net = load_network(args.network)
    feats = features(net, read_inputs(args.data))
    buf = io.BytesIO()
    np.save(buf, feats, allow_pickle=False)
    atomic_write_bytes(args.out, buf.getvalue())
    print(json.dumps({"out": str(args.out), "shape": list(feats.shape)}), flush=True)
    return 0


__all__ = ["add_parsers", "cmd_features", "cmd_train", "read_inputs"]
