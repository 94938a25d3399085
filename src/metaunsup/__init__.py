"""metaunsup: meta-learned neuron-local unsupervised learning rules in JAX.

Curated API (everything else lives in the subpackages named in README.md)::

    rule = metaunsup.load_rule()                  # shipped rule, or load_rule(path)
    params = metaunsup.train(rule, x, widths=(128, 128, 128, 128, 32), steps=1000)
    feats = metaunsup.features(params, x)         # [N, top width]
"""
from __future__ import annotations

from typing import Sequence

__version__ = "0.1.0"


def load_rule(path=None, *, seed: int = 0):
    """Loads a rule file (default: the shipped rule); see :mod:`metaunsup.rules.loading`."""
    from metaunsup.rules.loading import load_rule as _load

    return _load(path, seed=seed)


class TrainedNetwork:
    """A base network trained by a rule: its spec, params and BN reference batch."""

    def __init__(self, spec, params, reference):
        self.spec, self.params, self.reference = spec, params, reference


def train(rule, x, *, widths: Sequence[int] = (128, 128, 128, 128, 32), activation: str = "relu",
          steps: int = 1000, batch_size: int = 128, seed: int = 0,
          progress: bool = True) -> TrainedNetwork:
    """Trains a fresh base network on the unlabeled array ``x`` [N, D] with ``rule``.

    Args:
      rule: a :class:`~metaunsup.rules.loading.LoadedRule` (from :func:`load_rule`).
      x: unlabeled data, [N, D], values roughly in [0, 1]; NaN/Inf are rejected.
      widths: base network widths, bottom to top.
      activation: its nonlinearity.
      steps: inner steps.
      batch_size: examples per step.
      seed: seeds the network's initialisation and the minibatch order.
      progress: show a progress bar.
    """
    import jax
    import numpy as np

    from metaunsup.errors import check_array
    from metaunsup.eval.features import reference_batch
    from metaunsup.inner.train import train as _train
    from metaunsup.models import MLPSpec

    x = check_array(x, name="x", ndim=2).astype(np.float32)
    spec = MLPSpec(n_in=int(x.shape[1]), widths=tuple(widths), activation=activation)
    result = _train(rule.for_net(spec), rule.meta_params, x, steps=steps,
                    batch_size=min(batch_size, len(x)), key=jax.random.PRNGKey(seed),
                    progress=progress)
    return TrainedNetwork(spec, result.params, reference_batch(x, seed=seed))


def features(network: TrainedNetwork, x):
    """Top-layer features [N, widths[-1]] of ``x`` (BN statistics of the training data)."""
    import numpy as np

    from metaunsup.errors import check_array
    from metaunsup.eval.features import map_features
    from metaunsup.models import bn_stats

    x = check_array(x, name="x", ndim=2).astype(np.float32)
    stats = bn_stats(network.params, network.reference, network.spec)
    return map_features(network.params, x, network.spec, stats)


__all__ = ["TrainedNetwork", "features", "load_rule", "train"]
