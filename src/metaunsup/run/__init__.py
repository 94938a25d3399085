"""Run directories, checkpoints and rule files (safetensors + JSON: data only, no code)."""
from metaunsup.run.checkpoint import (
    CheckpointManager,
    CorruptFileError,
    Restored,
    load_checkpoint,
    read_tree,
    save_checkpoint,
    write_tree,
)
from metaunsup.run.rulefile import (
    RULE_FORMAT,
    RULE_FORMAT_VERSION,
    load_rule_file,
    make_provenance,
    save_rule,
)
from metaunsup.run.workdir import Workdir, select_checkpoint, validation_history

__all__ = [
    "RULE_FORMAT", "RULE_FORMAT_VERSION", "CheckpointManager", "CorruptFileError", "Restored",
    "Workdir", "load_checkpoint", "load_rule_file", "make_provenance", "read_tree",
    "save_checkpoint", "save_rule", "select_checkpoint", "validation_history", "write_tree",
]
