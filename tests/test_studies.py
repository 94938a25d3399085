"""Each study's --quick variant on tiny settings: its rows, numbers and resume behaviour.

All studies run once per module (fixtures) on the same tiny network (196-8-4 on
512 MNIST images, 10 inner steps), so the rule compiles for few shapes.
"""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from metaunsup.errors import UserError
from metaunsup.studies import read_rows, read_study, run_study

REPO = Path(__file__).resolve().parents[1]
RUN = REPO / "experiments" / "runs" / "recipe_small_v2"
RULE_STEP0 = REPO / "experiments" / "ablations" / "rule_small_untrained.safetensors"
RULE_STEP250 = REPO / "experiments" / "ablations" / "rule_small_step250.safetensors"


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    """name -> (workdir, rows) of every quick study."""
    root = tmp_path_factory.mktemp("studies")
    extra = {"meta_overfit": {"run": str(RUN), "rules": f"{RULE_STEP0},{RULE_STEP250}"}}
    out = {}
    for name in ("widths", "depths", "nonlinearities", "text", "moons", "filters",
                 "surrogate", "meta_overfit"):
        rows = run_study(name, root / name, quick=True, overrides=extra.get(name),
                         progress=False, command=["metaunsup", "study", name, "--quick"])
        out[name] = (root / name, rows)
    return out


def _check_row(r, n_seeds=2):
    assert len(r["accuracies"]) == len(r["seeds"]) == n_seeds
    assert r["mean"] == pytest.approx(np.mean(r["accuracies"]))
    if n_seeds > 1:
        sd = np.std(r["accuracies"], ddof=1)
        assert r["ci95"] == pytest.approx(12.7062 * sd / math.sqrt(2), rel=1e-3)  # t_{.975,1}
    assert r["seconds"] >= 0 and r["settings"]["seeds"] == r["seeds"]


def _png(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.slow  # end to end: eight studies
def test_widths_rows_cover_every_width(studies):
    wd, rows = studies["widths"]
    got = {(r["method"], r["width"]) for r in rows}
    assert got == {("rule", 8), ("rule", 16), ("random", 8), ("random", 16), ("raw", None)}
    for r in rows:
        _check_row(r)
        if r["width"] is not None:
            assert r["settings"]["widths"] == [r["width"], 4]
    by = {(r["method"], r["width"]): r for r in rows}
    for w in (8, 16):  # the rule's trained network is not the random one
        assert by["rule", w]["accuracies"] != by["random", w]["accuracies"]
    info = read_study(wd)
    assert info["figures"] == ["width.png"] and _png(wd / "width.png")[0] > 100
    assert info["rows"] == 5 and info["machine"]["cores"] >= 1
    assert info["rule_provenance"]["spec"] == "shipped"


@pytest.mark.slow  # end to end: eight studies
def test_widths_resume_skips_done_rows_and_redoes_a_lost_one(studies):
    wd, rows = studies["widths"]
    lines = (wd / "rows.jsonl").read_text().splitlines()
    # Drop the last complete row and leave a torn line, as a crash would.
    (wd / "rows.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    again = run_study("widths", wd, quick=True, progress=False)
    assert len(again) == len(rows)
    old, new = json.loads(lines[-1]), again[-1]
    assert new["key"] == old["key"] and new["accuracies"] == old["accuracies"]
    assert [r["key"] for r in again[:-1]] == [r["key"] for r in rows[:-1]]
    assert [r["finished"] for r in again[:-1]] == [r["finished"] for r in rows[:-1]]
    (wd / "width.png").unlink()
    assert run_study("widths", wd, quick=True, progress=False, compute=False) == again
    info = read_study(wd)
    assert (wd / "width.png").is_file() and info["complete"] and info["jobs"] == 5


@pytest.mark.slow  # end to end: eight studies
def test_workdir_with_other_settings_is_refused_before_writing(studies, tmp_path):
    wd, _ = studies["widths"]
    before = (wd / "rows.jsonl").read_text()
    with pytest.raises(UserError, match="other settings"):
        run_study("widths", wd, quick=True, overrides={"seeds": 3}, progress=False)
    with pytest.raises(UserError, match="no setting"):
        run_study("widths", tmp_path / "new", quick=True, overrides={"nope": 1})
    with pytest.raises(UserError, match="unknown method"):
        run_study("widths", tmp_path / "new", quick=True, overrides={"methods": "rule,magic"})
    assert (wd / "rows.jsonl").read_text() == before and not (tmp_path / "new").exists()


@pytest.mark.slow  # end to end: eight studies
def test_depths_and_nonlinearities(studies):
    _, rows = studies["depths"]
    nets = {r["depth"]: r["settings"]["widths"] for r in rows if r["method"] == "rule"}
    assert nets == {2: [8, 4], 3: [8, 8, 4]}
    _, rows = studies["nonlinearities"]
    by = {(r["method"], r["activation"]): r for r in rows}
    assert set(by) == {("rule", "relu"), ("rule", "step"), ("random", "relu"),
                       ("random", "step"), ("raw", None)}
    for r in rows:
        _check_row(r)
    # Same network widths, another activation: the rule adapts a step network too.
    assert by["rule", "step"]["accuracies"] != by["random", "step"]["accuracies"]
    assert by["rule", "step"]["settings"]["activation"] == "step"


@pytest.mark.slow  # end to end: eight studies
def test_text_rows_and_the_shared_features_match_evaluate(studies):
    from metaunsup.data import load
    from metaunsup.eval import ProbeConfig, evaluate
    from metaunsup.models import MLPSpec

    _, rows = studies["text"]
    assert {(r["method"], r["shots"]) for r in rows} == {
        (m, k) for m in ("rule", "random", "raw", "pca") for k in (2, 8)}
    for r in rows:
        _check_row(r)
        assert r["settings"]["dataset_options"] == {"vocab_size": 196}
    by = {(r["method"], r["shots"]): r for r in rows}
    # The 8-shot row reuses the 2-shot row's trained networks; it must equal a fresh run.
    ds = load("movie_reviews", vocab_size=196, max_train=512)
    fresh = evaluate("rule", ds, spec=MLPSpec(n_in=196, widths=(8, 4)), shots=8, seeds=[0, 1],
                     config=ProbeConfig(max_test=200), options={"steps": 10, "batch_size": 32})
    assert list(fresh.accuracies) == by["rule", 8]["accuracies"]
    assert by["rule", 2]["accuracies"] != by["random", 2]["accuracies"]
    assert by["raw", 2]["settings"]["method"] == "raw"


def test_method_labels_resolve_to_evaluation_methods():
    from metaunsup.studies.grid import expand_methods
    from metaunsup.studies.methods import HAND_RULES, resolve

    assert resolve("rule", rule=None, init_rule="random-init") == ("rule", {})
    assert resolve("rule_init", rule="r.safetensors", init_rule="init:r.safetensors") == (
        "rule", {"rule": "init:r.safetensors"})
    assert resolve("pca", rule=None, init_rule="random-init") == ("pca", {})
    methods = expand_methods(["default"])
    assert methods[:6] == ["rule", "rule_init", "random", "raw", "pca", "autoencoder"]
    assert set(methods[6:]) <= set(HAND_RULES)


@pytest.mark.slow  # end to end: eight studies
def test_moons_curves_and_snapshots(studies):
    wd, rows = studies["moons"]
    by = {r["method"]: r for r in rows}
    curve = by["rule"]["curve"]
    assert curve["steps"] == [0, 5, 10]
    assert by["rule"]["accuracies"] == [a[-1] for a in curve["accuracies"]]
    snaps = by["rule"]["snapshots"]
    assert [s["step"] for s in snaps] == [0, 10]
    pts = np.asarray(snaps[0]["points"])
    assert pts.shape == (50, 2) and np.allclose(pts.mean(axis=0), 0.0, atol=1e-3)
    assert "curve" not in by["raw"] and "curve" not in by["random"]
    assert set(read_study(wd)["figures"]) == {"moons_curve.png", "moons_features_rule.png"}


def test_pca_2d_matches_numpy():
    from metaunsup.studies.moons import pca_2d

    f = np.random.default_rng(0).normal(size=(40, 5)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1])
    p = pca_2d(f)
    cov = np.cov(f, rowvar=False)
    top = np.sort(np.linalg.eigvalsh(cov))[::-1][:2]
    assert np.allclose(np.var(p, axis=0, ddof=1), top, rtol=1e-6)


@pytest.mark.slow  # end to end: eight studies
def test_filters_images_and_norms(studies):
    wd, rows = studies["filters"]
    by = {r["method"]: r for r in rows}
    assert set(by) == {"rule", "random"}
    for r in rows:
        assert r["accuracies"] == [r["mean"]] and r["ci95"] is None  # one seed
        # 8 filters tiled 3 x 3, an inch each plus margins and title, at 120 dpi
        assert _png(wd / r["image"]) == (round(3.2 * 120), round(3.4 * 120))
    # Untrained W ~ N(0, 1/196): each of the 8 columns has norm close to 1.
    assert by["random"]["filter_norm_mean"] == pytest.approx(1.0, abs=0.15)
    assert by["random"]["settings"]["steps"] == 0


@pytest.mark.slow  # end to end: eight studies
def test_surrogate_losses_and_a_shared_start(studies):
    _, rows = studies["surrogate"]
    by = {r["method"]: r for r in rows}
    ae, rule = by["autoencoder"]["curve"], by["rule"]["curve"]
    assert ae["steps"] == rule["steps"] == [0, 10, 20]
    assert ae["loss"][0] is None and all(v > 0 for v in ae["loss"][1:])
    assert all(v is None for v in rule["loss"])
    # Both start from the same seeded network and probe it identically.
    assert [a[0] for a in ae["accuracies"]] == [a[0] for a in rule["accuracies"]]
    assert by["autoencoder"]["settings"]["loss"] == "recon_mse"


@pytest.mark.slow  # end to end: eight studies
def test_meta_overfit_places_rules_in_meta_training_time(studies):
    from metaunsup.studies.overfit import step_seconds

    _, rows = studies["meta_overfit"]
    assert {(r["dataset"], r["method"], r["meta_step"]) for r in rows} == {
        (d, m, s) for d in ("mnist", "movie_reviews")
        for m, s in (("random", None), ("rule", 0), ("rule", 250))}
    secs = step_seconds(RUN)
    minutes = {r["meta_step"]: r["meta_minutes"] for r in rows if r["method"] == "rule"}
    assert minutes[0] == 0.0
    assert minutes[250] == pytest.approx(sum(secs[s] for s in range(1, 251)) / 60, abs=0.01)
    by = {(r["dataset"], r["meta_step"]): r for r in rows}
    assert by["movie_reviews", 0]["settings"]["shots"] == 8
    assert by["mnist", 0]["accuracies"] != by["mnist", 250]["accuracies"]
    assert read_rows(studies["meta_overfit"][0]) == rows


def test_paired_cell_is_the_t_interval_of_per_seed_differences():
    from metaunsup.studies.grid import paired_cell

    a = {"seeds": [0, 1, 2, 3], "accuracies": [51.0, 62.0, 73.0, 99.0]}
    b = {"seeds": [0, 1, 2], "accuracies": [50.0, 60.0, 70.0]}  # seed 3 unmatched: ignored
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.303 -> 4.303 / sqrt(3) = 2.48
    assert paired_cell(a, b) == "+2.0 ± 2.5"
    assert paired_cell(a, None) == "-" and paired_cell(a, {"seeds": [0], "accuracies": [1.0]}) == "-"
