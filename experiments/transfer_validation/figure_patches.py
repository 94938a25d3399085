"""Sample patches of the two natural-image families (issue 22): 6 per class, 14 x 14 as the
suite sees them, with the per-family baselines of README.md.

Command::

    python experiments/transfer_validation/figure_patches.py
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from metaunsup.data import load, patches  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    fams = [("natural", list(patches.NATURAL_IMAGES)),
            ("textures", [f"{t}x{z}" for t in patches.TEXTURE_IMAGES for z in patches.TEXTURE_ZOOMS])]
    fig, axes = plt.subplots(1, 2, figsize=(12, 8.5))
    for ax, (name, labels) in zip(axes, fams):
        ds = load(name, resolution=14)
        rows = []
        for c in range(ds.num_classes):
            idx = np.flatnonzero(ds.y_train == c)[:6]
            rows.append(np.concatenate([np.pad(ds.x_train[i].reshape(14, 14), 1, constant_values=1)
                                        for i in idx], axis=1))
        ax.imshow(np.concatenate(rows, axis=0), cmap="gray", vmin=0, vmax=1)
        ax.set_yticks(16 * np.arange(len(labels)) + 8, labels, fontsize=8)
        ax.set_xticks([])
        ax.set_title(f"{name}: {ds.num_classes} classes (train split, histogram-equalised)")
    fig.tight_layout()
    fig.savefig(HERE / "patches.png", dpi=80)


if __name__ == "__main__":
    main()
