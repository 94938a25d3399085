"""Tests of the report figures and markdown table."""
import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.eval import report

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    """Returns (width, height) of a PNG after checking its signature."""
    data = path.read_bytes()
    assert data[:8] == _PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def _curves():
    return {
        "mnist": {
            "learned": {"steps": [0, 10, 100, 1000], "mean": [60.0, 65.0, 70.0, 72.0],
                        "ci95": [1.0, 1.2, None, float("nan")]},
            "oja": {"steps": [0, 10, 100, 1000], "mean": [60.0, 61.0, 62.0, 63.0],
                    "ci95": None},
        },
        "fashion": {
            "learned": {"steps": [0, 5, 10], "mean": [50.0, 55.0, 58.0],
                        "ci95": [2.0, 2.0, 2.0]},
        },
    }


def test_plot_curves_writes_png(tmp_path):
    flat = {"mnist": {"raw": (68.0, 1.5), "pca": (69.0, None)},
            "fashion": {"raw": (57.0, float("nan"))}}
    out = report.plot_curves(_curves(), tmp_path / "a" / "b" / "curves.png",
                             flat=flat, title="probe accuracy")
    assert out == tmp_path / "a" / "b" / "curves.png"
    # two panels side by side: (4.2 * 2 + 0.6) x 3.6 inches at 120 dpi
    assert _png_size(out) == (round((4.2 * 2 + 0.6) * 120), round(3.6 * 120))


def test_plot_curves_flat_only_dataset(tmp_path):
    out = report.plot_curves({}, tmp_path / "c.png", flat={"mnist": {"raw": (68.0, 1.0)}})
    _png_size(out)


@pytest.mark.parametrize("n_units,expect_cols", [(5, 3), (100, 8)])
def test_plot_filters_tiles(tmp_path, n_units, expect_cols):
    w = np.random.default_rng(0).normal(size=(14 * 14, n_units))
    w[:, 0] = 0.0  # an all-zero filter must not break normalisation
    out = report.plot_filters(w, tmp_path / "f" / "filters.png", image_shape=(14, 14),
                              max_filters=64, title="W")
    width, height = _png_size(out)
    assert out.stat().st_size > 100
    # Grid is near-square: 5 -> 3x2, 100 capped at 64 -> 8x8.
    assert width == pytest.approx(120 * (expect_cols + 0.2), abs=2)


def test_plot_filters_rejects_bad_shapes(tmp_path):
    with pytest.raises(UserError, match="2-D"):
        report.plot_filters(np.zeros(196), tmp_path / "x.png", image_shape=(14, 14))
    with pytest.raises(UserError, match="image_shape"):
        report.plot_filters(np.zeros((100, 4)), tmp_path / "x.png", image_shape=(14, 14))
    assert not (tmp_path / "x.png").exists()


def test_markdown_table(tmp_path):
    records = [
        {"method": "learned", "dataset": "mnist", "mean": 71.94, "ci95": 1.61, "seeds": [0, 1]},
        {"method": "learned", "dataset": "fashion", "mean": 60.0, "ci95": float("nan"),
         "seeds": [0], "steps": 1000},
        {"method": "raw", "dataset": "mnist", "mean": 68.0, "ci95": 1.0, "seeds": [0, 1]},
        {"method": "pca", "dataset": "fashion", "mean": 62.5, "ci95": 0.5, "seeds": [0, 1]},
    ]
    out = report.write_markdown_table(records, tmp_path / "r" / "table.md",
                                      title="Probe accuracy", notes=["note one", "note two"])
    text = out.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert lines[0] == "# Probe accuracy"
    rows = [ln for ln in lines if ln.startswith("|")]
    assert rows[0] == "| method | mnist | fashion |"
    assert rows[2] == "| learned | **71.9 ± 1.6** | 60.0 ± nan |"
    assert rows[3] == "| raw | 68.0 ± 1.0 | - |"
    assert rows[4] == "| pca | - | **62.5 ± 0.5** |"
    assert len(rows) == 5
    assert lines[-2:] == ["note one", "note two"]


def test_markdown_table_ties_and_missing_ci(tmp_path):
    records = [
        {"method": "a", "dataset": "d", "mean": 50.0, "ci95": None, "seeds": [0]},
        {"method": "b", "dataset": "d", "mean": 50.0, "ci95": 0.0, "seeds": [0]},
    ]
    text = report.write_markdown_table(records, tmp_path / "t.md", title="T").read_text()
    assert "| a | **50.0 ± n/a** |" in text
    assert "| b | **50.0 ± 0.0** |" in text
