"""Meta-training over several processes and hosts on JAX's own runtime.

``metaunsup meta-train ... --distributed`` starts one process per host (or per
accelerator group); each calls :func:`initialize` (``jax.distributed.initialize``)
before any JAX computation, after which ``jax.devices()`` lists the devices of
every process. The trainer is unchanged SPMD code: its mesh spans all those
devices along the ``"tasks"`` axis (:func:`task_mesh`), so the meta-batch is
split across processes and devices, and every process runs the same outer loop
on the same replicated ``meta_params``.

Files: only process 0 (:func:`is_writer`) reads or writes the run directory,
so the hosts need no shared file system. On resume, process 0 restores the
checkpoint and :func:`broadcast` sends it, bit for bit, to the others; before
a checkpoint is saved, :func:`to_host` gathers the task states that live on
other processes (a collective: every process calls it). A problem found while
process 0 opens the run directory (:func:`on_writer`) stops every process with
the same one-line error instead of leaving the others waiting.

Where the three settings come from, first match wins:

- coordinator ``HOST:PORT`` (process 0's host): ``--coordinator``, then
  ``$JAX_COORDINATOR_ADDRESS``;
- number of processes: ``--num-processes``, then ``$JAX_NUM_PROCESSES``;
- this process's index: ``--process-id``, then ``$JAX_PROCESS_ID``;

and whatever is still unset JAX detects on clusters it knows (Slurm, Open MPI,
Kubernetes, Cloud TPU). On CPU the processes talk through Gloo over TCP.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Mapping, TypeVar

import jax
import numpy as np
from jax.experimental import multihost_utils

from metaunsup.errors import UserError
from metaunsup.types import PyTree

COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"
TASK_AXIS = "tasks"
_LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class DistributedSpec:
    """How this process joins the run (``None``: left to JAX's cluster detection).

    Attributes:
      coordinator: ``HOST:PORT`` of process 0's coordination service.
      num_processes: processes in the run, >= 1.
      process_id: this process's index, ``0 <= process_id < num_processes``.
      timeout_s: seconds to wait for every process to join.
    """

    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    timeout_s: int = 300


def _int_setting(value: Any, name: str, minimum: int) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise UserError(f"{name}: expected an integer, got {value!r}") from None
    if number < minimum:
        raise UserError(f"{name}: must be >= {minimum}, got {number}")
    return number


def resolve_spec(coordinator: str | None = None, num_processes: int | str | None = None,
                 process_id: int | str | None = None, *, timeout_s: int = 300,
                 environ: Mapping[str, str] | None = None) -> DistributedSpec:
    """Flags first, then the environment (module doc); validated, one-line errors.

    Args:
      coordinator: ``HOST:PORT``.
      num_processes: number of processes.
      process_id: this process's index.
      timeout_s: seconds to wait for the other processes.
      environ: the environment to read (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    coordinator = coordinator or env.get(COORDINATOR_ENV, "").strip() or None
    n = _int_setting(num_processes if num_processes is not None else env.get(NUM_PROCESSES_ENV),
                     "number of processes (--num-processes / $JAX_NUM_PROCESSES)", 1)
    i = _int_setting(process_id if process_id is not None else env.get(PROCESS_ID_ENV),
                     "process id (--process-id / $JAX_PROCESS_ID)", 0)
    if coordinator is not None:
        host, sep, port = coordinator.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise UserError(f"coordinator address: expected HOST:PORT, got {coordinator!r}")
    if n is not None and i is not None and i >= n:
        raise UserError(f"process id {i} is out of range for {n} processes (0..{n - 1})")
    if (n is None) != (i is None) or (n is not None and n > 1 and coordinator is None):
        missing = [name for name, v in (("--coordinator", coordinator), ("--num-processes", n),
                                        ("--process-id", i)) if v is None]
        raise UserError(f"--distributed: give {', '.join(missing)} (or $JAX_COORDINATOR_ADDRESS, "
                        "$JAX_NUM_PROCESSES, $JAX_PROCESS_ID), or run where JAX detects the "
                        "cluster (Slurm, Open MPI, Kubernetes) and give none of them")
    return DistributedSpec(coordinator, n, i, _int_setting(timeout_s, "timeout", 1))


def initialize(spec: DistributedSpec) -> None:
    """``jax.distributed.initialize`` with ``spec``; call before any JAX computation.

    A coordinator on a loopback address binds only to loopback; otherwise JAX's
    default (every interface of process 0's host). Failure to join is a
    :class:`UserError`.
    """
    if spec.num_processes == 1 and spec.coordinator is None:
        return  # a run of one process needs no coordination
    kwargs: dict[str, Any] = {"initialization_timeout": spec.timeout_s}
    if spec.coordinator is not None:
        kwargs["coordinator_address"] = spec.coordinator
        if spec.coordinator.rpartition(":")[0] in _LOOPBACK:
            kwargs["coordinator_bind_address"] = spec.coordinator
    if spec.num_processes is not None:
        kwargs.update(num_processes=spec.num_processes, process_id=spec.process_id)
    try:
        jax.distributed.initialize(**kwargs)
    except (RuntimeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"--distributed: could not join the run ({first})") from None


def is_writer() -> bool:
    """Whether this process owns the run directory (process 0; always, in one process)."""
    return jax.process_index() == 0


def task_mesh():
    """A 1-D mesh over every device of every process, axis ``"tasks"``."""
    return jax.sharding.Mesh(np.array(jax.devices()), (TASK_AXIS,))


def check_meta_batch(meta_batch: int) -> None:
    """In a multi-process run the meta-batch must split evenly over all devices."""
    n = jax.device_count()
    if jax.process_count() > 1 and meta_batch % n:
        raise UserError(f"meta_batch = {meta_batch} does not split over the {n} devices of "
                        f"{jax.process_count()} processes; use a multiple of {n}")


def _as_uint(x: np.ndarray) -> np.ndarray:
    """Floats as unsigned integers of the same width (a sum with zeros is then exact)."""
    return x.view(f"u{x.dtype.itemsize}") if x.dtype.kind == "f" else x


def broadcast(tree: T) -> T:
    """Process 0's value of ``tree`` on every process, bit for bit (a collective).

    Every process passes a tree of the same structure, shapes and dtypes (the
    others' values are ignored). In a single process: ``tree`` as NumPy.
    """
    host = jax.tree_util.tree_map(np.asarray, tree)
    if jax.process_count() == 1:
        return host
    raw = multihost_utils.broadcast_one_to_all(jax.tree_util.tree_map(_as_uint, host))
    return jax.tree_util.tree_map(lambda r, h: np.asarray(r).view(h.dtype), raw, host)


def to_host(tree: T) -> T:
    """``tree`` as NumPy arrays, gathering shards held by other processes (a collective)."""
    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(jax.device_get(x))

    return jax.tree_util.tree_map(one, tree)


def local_copy(tree: T) -> T:
    """``tree`` of replicated arrays as NumPy arrays, with no communication.

    Every process holds a whole replica, so each reads its own; unlike
    :func:`to_host` this is safe where processes may not all call it.
    """
    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            if not x.sharding.is_fully_replicated:
                raise ValueError(f"local_copy needs replicated arrays, got {x.sharding}")
            return np.asarray(x.addressable_data(0))
        return np.asarray(jax.device_get(x))

    return jax.tree_util.tree_map(one, tree)


def on_writer(fn: Callable[[], T]) -> T | None:
    """Runs ``fn`` on process 0 only; the others get ``None``.

    A :class:`UserError` raised by ``fn`` on process 0 is raised there and,
    with a line saying so, on every other process as well (instead of leaving
    them waiting for process 0). In a single process this is just ``fn()``.
    """
    if jax.process_count() == 1:
        return fn()
    result, error = None, None
    if is_writer():
        try:
            result = fn()
        except UserError as e:
            error = e
    failed = bool(broadcast(np.asarray(error is not None, np.int32)))
    if error is not None:
        raise error
    if failed:
        raise UserError("process 0 stopped with an error while opening the run directory "
                        "(see its output)")
    return result


def restore_everywhere(restored: PyTree | None, step: int | None,
                       template: Callable[[int], PyTree]) -> PyTree | None:
    """Process 0's restored trainer state (or ``None``) on every process.

    Args:
      restored: on process 0, the restored state or ``None`` for a fresh run;
        ignored elsewhere.
      step: on process 0, the restored state's outer step (ignored elsewhere).
      template: ``template(step)`` is a tree of the state's structure, shapes and
        dtypes at that step (``jax.ShapeDtypeStruct`` leaves will do).
    """
    if jax.process_count() == 1:
        return restored
    mine = -1 if restored is None or step is None else int(step)
    step = int(broadcast(np.asarray(mine, np.int32)))
    if step < 0:
        return None
    tree = restored if is_writer() else jax.tree_util.tree_map(
        lambda s: np.zeros(s.shape, s.dtype), template(step))
    return jax.tree_util.tree_map(jax.numpy.asarray, broadcast(tree))
