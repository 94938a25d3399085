"""``metaunsup features``: top-layer features of an unlabeled array under a saved network.

::

    metaunsup features --network net.safetensors --data x.npy --out feats.npy

Library: :func:`metaunsup.features` and :func:`metaunsup.network.load_network`.
"""
from __future__ import annotations

import io
import json

import numpy as np

from metaunsup.api import features
from metaunsup.cli import options as opt
from metaunsup.eval.userdata import read_unlabeled
from metaunsup.network import load_network
from metaunsup.run.outputs import NPY, atomic_write_bytes, check_output_file

NAME = "features"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="top-layer features of data under a saved network")
    p.add_argument("--network", required=True, metavar="NET", help="from 'metaunsup train'")
    p.add_argument("--data", required=True, metavar="X.npy", help="[N, D] array")
    p.add_argument("--out", required=True, metavar="F.npy", help="features [N, F] to write")
    opt.add_force(p, "replace an existing --out file (a .npy array only, never an input)")


def run(args) -> int:
    check_output_file(args.out, force=args.force, kind=NPY, inputs=[args.data, args.network])
    net = load_network(args.network)
    feats = features(net, read_unlabeled(args.data))
    buf = io.BytesIO()
    np.save(buf, feats, allow_pickle=False)
    atomic_write_bytes(args.out, buf.getvalue())
    print(json.dumps({"out": str(args.out), "shape": list(feats.shape)}), flush=True)
    return 0
