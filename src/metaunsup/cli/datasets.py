"""``metaunsup datasets``: the registered datasets, their shapes, availability and source.

Each dataset takes two lines: the figures, then (indented) what it is and where it
comes from, with the licence for the sample images of ``natural`` and ``textures``.

Library: :func:`metaunsup.data.list_datasets` and :func:`metaunsup.data.load`.
"""
from __future__ import annotations

from metaunsup.data import list_datasets, load

NAME = "datasets"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="list datasets, their shapes and availability")
    p.add_argument("--prepare", action="append", default=[], metavar="NAME",
                   help="load NAME once, fetching it first where allowed "
                        "(METAUNSUP_DOWNLOAD=1); repeatable")


def run(args) -> int:
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
        print(f"{'':<14} {info.description}")  # what it is, where it comes from, licence
    return 0
