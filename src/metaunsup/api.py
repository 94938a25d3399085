"""The curated Python API: train a base network with any rule, then map data to features.

::

    import numpy as np, jax, metaunsup
    x = np.random.default_rng(0).random((5000, 196), dtype=np.float32)  # [N, D]; uint8 is scaled
    net = metaunsup.train("oja", x, widths=(128, 32), steps=500)         # or load_rule(), a file
    feats = metaunsup.features(net, x)                                   # [5000, 32]
    metaunsup.save_network("net.safetensors", net)

Every input is checked here, at the boundary, with a one-line
:class:`~metaunsup.errors.UserError`; inside, the functions are the library's
(``metaunsup.inner.train``, ``metaunsup.models.featurize``).
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import numpy as np

from metaunsup.errors import UserError, check_positive_int
from metaunsup.eval.userdata import as_inputs
from metaunsup.inner.train import train as _train
from metaunsup.models import PAPER_WIDTHS, MLPSpec
from metaunsup.models.featurize import map_features, reference_batch
from metaunsup.network import Network, check_network, with_bn_stats
from metaunsup.rules.loading import LoadedRule, load_rule


class TrainInfo(NamedTuple):
    """What ``train(..., return_info=True)`` returns beside the network.

    Attributes:
      metrics: the rule's metrics averaged over the last chunk of steps.
      curve_steps: steps at which ``probe`` was called (0, every ``curve_every``, the end).
      curve: ``probe(network)`` at those steps.
    """

    metrics: dict[str, float]
    curve_steps: list[int]
    curve: list[Any]


def _widths(widths) -> tuple[int, ...]:
    if isinstance(widths, (int, str)) or not isinstance(widths, Sequence):
        raise UserError(f"widths must be a sequence of positive integers, got {widths!r}")
    return tuple(widths)


MIN_BATCH = 2  # batch norm needs a variance: two examples per batch at least


def check_batch(batch_size, n_examples: int) -> int:
    """``batch_size`` checked against the data: ``MIN_BATCH <= batch_size <= n_examples``."""
    batch_size = check_positive_int(batch_size, name="batch_size")
    if batch_size < MIN_BATCH:
        raise UserError(f"batch_size (--batch-size) must be at least {MIN_BATCH}: batch norm "
                        f"normalises each batch by its own statistics, got {batch_size}")
    if n_examples < batch_size:
        raise UserError(f"x has {n_examples} example(s), fewer than one batch of {batch_size}; "
                        f"lower batch_size (--batch-size) to at most {n_examples}, from "
                        f"{MIN_BATCH}, or give more data" if n_examples >= MIN_BATCH else
                        f"x has {n_examples} example(s); training needs batches of at least "
                        f"{MIN_BATCH} (batch norm normalises each batch by its own statistics)")
    return batch_size


def train(rule: Any, x, *, widths: Sequence[int] = PAPER_WIDTHS, activation: str = "relu",
          steps: int = 1000, batch_size: int = 128, seed: int = 0, key=None,
          network: Network | None = None, curve_every: int | None = None,
          probe: Callable[[Network], Any] | None = None, progress: bool = True,
          return_info: bool = False):
    """Trains a base network on the unlabeled array ``x`` with ``rule``; no labels, no backprop.

    Args:
      rule: a :class:`~metaunsup.rules.loading.LoadedRule`, a rule file path,
        a hand-designed rule's name ("oja", "sanger", "softhebb", ...),
        ``"random-init"``, or None for the shipped rule.
      x: [N, D] or [N, H, W] unlabeled inputs; ``uint8`` is scaled to [0, 1].
      widths: layer widths of a fresh network, bottom to top.
      activation: its nonlinearity.
      steps: inner steps.
      batch_size: examples per step, from 2 (batch norm normalises each batch by its
        own statistics, which one example does not have) to N: data smaller than one
        batch is an error, not a run on a partial batch.
      seed: seeds everything when ``key`` is None; also picks the reference
        batch of the batch-norm statistics.
      key: PRNG key of the initial network, the rule's randomness and the
        minibatch order (default ``PRNGKey(seed)``).
      network: start from this :class:`Network` instead of a fresh one
        (``widths`` and ``activation`` are then its own).
      curve_every: call ``probe`` every this many steps (and at 0 and the end).
      probe: function of a :class:`Network` (with BN statistics), e.g. your
        few-shot accuracy; required with ``curve_every``.
      progress: show a progress bar.
      return_info: also return a :class:`TrainInfo`.

    Returns:
      The trained :class:`Network` (a pytree holding the batch-norm statistics
      of a seeded reference batch of ``x``), or ``(network, TrainInfo)``.
    """
    loaded = load_rule(rule)
    x = as_inputs(x, "x")
    seed = int(seed) if isinstance(seed, (int, np.integer)) else seed
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {seed!r}")
    if network is not None:
        spec = check_network(network).spec
        if spec.n_in != x.shape[1]:
            raise UserError(f"x has {x.shape[1]} features but the network takes {spec.n_in}")
    else:
        spec = MLPSpec(n_in=int(x.shape[1]), widths=_widths(widths), activation=activation)
    batch_size = check_batch(batch_size, len(x))
    if (curve_every is None) != (probe is None):
        raise UserError("curve_every and probe go together")
    key = jax.random.PRNGKey(seed) if key is None else key
    ref = reference_batch(x, seed=seed)

    def probe_fn(params):
        return probe(with_bn_stats(Network(params, None, spec), ref))

    result = _train(loaded.for_net(spec), loaded.meta_params, x, steps=steps,
                    batch_size=batch_size, key=key, curve_every=curve_every,
                    probe_fn=probe_fn if probe is not None else None, progress=progress,
                    params=None if network is None else network.params)
    net = with_bn_stats(Network(result.params, None, spec), ref)
    if return_info:
        return net, TrainInfo(result.metrics, result.curve_steps, result.curve)
    return net


def features(network: Network, x, *, chunk_size: int = 4096) -> np.ndarray:
    """Top-layer features of ``x`` [N, D] (or [N, H, W]): float32 [N, widths[-1]].

    Uses the network's batch-norm statistics (those of its training data, for
    a network from :func:`train`), so an example's features do not depend on
    the rest of ``x``; a network without them (:func:`init_network`) uses the
    statistics of a seeded reference batch of ``x``.
    """
    network = check_network(network)
    x = as_inputs(x, "x")
    if x.shape[1] != network.spec.n_in:
        raise UserError(f"x has {x.shape[1]} features per example but the network takes "
                        f"{network.spec.n_in}")
    if network.bn is None:
        if len(x) < MIN_BATCH:
            raise UserError(f"x has {len(x)} example(s) and the network has no batch-norm "
                            f"statistics; they are taken from x, which needs {MIN_BATCH} or "
                            "more (or use a network from metaunsup.train)")
        network = with_bn_stats(network, reference_batch(x, seed=0))
    return map_features(network.params, x, network.spec, network.bn,
                        chunk_size=check_positive_int(chunk_size, name="chunk_size"))


__all__ = ["LoadedRule", "TrainInfo", "features", "train"]
