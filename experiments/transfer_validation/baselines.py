"""Per-family baselines of the patch families (issue 22): is a class given away by the mean
grey level alone? 10-way, 10-shot logistic regression on the test split, 5 seeded draws
of classes, support and query (mean and 95% t-interval over draws), on three feature
sets: the mean grey level only, raw pixels, and the magnitude of the 2-D Fourier
transform (translation-invariant, so it reads texture and orientation statistics).
Writes ``baselines.md``.

Command::

    python experiments/transfer_validation/baselines.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from metaunsup.data import load
from metaunsup.eval.stats import mean_ci95

HERE = Path(__file__).resolve().parent


def ten_shot(features, y, seed):
    rng = np.random.default_rng(seed)
    classes = rng.choice(np.unique(y), 10, replace=False)
    sup = np.concatenate([rng.choice(np.flatnonzero(y == c), 10, replace=False) for c in classes])
    qry = np.setdiff1d(np.flatnonzero(np.isin(y, classes)), sup)
    scale = StandardScaler().fit(features[sup])
    clf = LogisticRegression(max_iter=2000).fit(scale.transform(features[sup]), y[sup])
    return 100 * clf.score(scale.transform(features[qry]), y[qry])


def main() -> None:
    lines = ["| family | classes | mean grey only | raw pixels | \\|FFT\\| |", "|---|---|---|---|---|"]
    for name in ("natural", "textures"):
        ds = load(name, resolution=14)
        x, y = ds.x_test, ds.y_test
        side = int(round(np.sqrt(x.shape[1])))
        feats = {"mean": x.mean(1, keepdims=True), "raw": x,
                 "fft": np.abs(np.fft.fft2(x.reshape(-1, side, side))).reshape(len(x), -1)}
        cells = []
        for f in feats.values():
            m, h = mean_ci95([ten_shot(f, y, s) for s in range(5)])
            cells.append(f"{m:.1f} ± {h:.1f}")
        lines.append(f"| {name} | {ds.num_classes} | " + " | ".join(cells) + " |")
    text = ("10-way 10-shot logistic regression on the test split, 14 x 14, 5 draws "
            "(`python experiments/transfer_validation/baselines.py`); chance 10 %.\n\n"
            + "\n".join(lines) + "\n")
    (HERE / "baselines.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
