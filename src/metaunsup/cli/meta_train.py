"""``metaunsup meta-train``: meta-train an update rule in a workdir (re-running resumes it).

Library: :func:`metaunsup.outer.config.load_config` and
:func:`metaunsup.outer.trainer.meta_train`.
"""
from __future__ import annotations

import json

from metaunsup.cli import options as opt
from metaunsup.errors import UserError
from metaunsup.outer import distributed
from metaunsup.outer.config import load_config
from metaunsup.outer.trainer import meta_train
from metaunsup.run.interrupt import exit_on_sigint, interrupted_message

NAME = "meta-train"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="meta-train an update rule (resumes in WORKDIR)")
    p.add_argument("--config", required=True,
                   help="recipe name (metaunsup/configs/NAME.toml) or a path to a .toml file")
    p.add_argument("--workdir", required=True, help="run directory; re-running resumes it")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override a config field (dotted for sections), repeatable")
    opt.add_no_progress(p)
    p.add_argument("--allow-config-change", action="store_true",
                   help="resume WORKDIR although its config.json differs (the old one is "
                        "kept as config.previous-<n>.json)")
    p.add_argument("--distributed", action="store_true",
                   help="one of several processes on JAX's multi-host runtime "
                        "(metaunsup.outer.distributed); only process 0 writes WORKDIR")
    p.add_argument("--coordinator", metavar="HOST:PORT",
                   help="process 0's address (default $JAX_COORDINATOR_ADDRESS)")
    p.add_argument("--num-processes", metavar="N", help="default $JAX_NUM_PROCESSES")
    p.add_argument("--process-id", metavar="I", help="0..N-1 (default $JAX_PROCESS_ID)")


def run(args) -> int:
    config = load_config(args.config, args.overrides)
    given = [f for f in ("coordinator", "num_processes", "process_id") if getattr(args, f)]
    if given and not args.distributed:
        raise UserError(f"--{given[0].replace('_', '-')} needs --distributed")
    if args.distributed:  # before any JAX computation
        distributed.initialize(distributed.resolve_spec(
            args.coordinator, args.num_processes, args.process_id))
    # Ctrl-C: print what the workdir holds and exit 130 at once, never mid-write.
    with exit_on_sigint(lambda: interrupted_message(args.workdir, config.outer_steps)):
        record = meta_train(config, args.workdir, progress=args.progress,
                            allow_config_change=args.allow_config_change)
    print(json.dumps(record), flush=True)
    return 0
