"""``metaunsup report``: the page's content, its Markdown twin, and the page in a real browser."""
import re
from pathlib import Path

import pytest

from metaunsup.cli import main
from metaunsup.studies import read_study, run_study
from metaunsup.studies.browser import find_chromium, open_page
from metaunsup.studies.report import render

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "experiments" / "demo_report"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """A report of a cheap real study (no rule: raw, PCA, random) and the committed demo report."""
    root = tmp_path_factory.mktemp("report")
    study = root / "text"
    run_study("text", study, quick=True, overrides={"methods": "random,raw,pca"},
              progress=False, command=["metaunsup", "study", "text", "--quick"])
    html, md = render([study, DEMO], root / "out", title="test report")
    return study, html, md


def _figures(folder: Path, study: bool) -> list[str]:
    return read_study(folder)["figures"] if study else sorted(p.name for p in folder.glob("*.png"))


def test_page_holds_every_table_figure_and_fact(page):
    study, html, md = page
    text = html.read_text()
    n_figures = len(_figures(study, True)) + len(_figures(DEMO, False))
    assert n_figures >= 2
    assert text.count('src="data:image/png;base64,') == n_figures
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert "metaunsup study text --quick" in text and "metaunsup demo" in text
    assert "machine" in text and "recipe_small_v2" in text  # provenance of the shipped rule
    # One cell per (method, shots) of the study: "mean ± ci" with the rows' numbers.
    assert len(re.findall(r"<td>\d+\.\d ± \d+\.\d</td>", text)) >= 6
    m = md.read_text()
    images = re.findall(r"!\[[^\]]*\]\((images/[^)]+)\)", m)
    assert len(images) == n_figures
    assert all((md.parent / p).stat().st_size > 100 for p in images)
    assert m.count("| method |") >= 2


def test_report_cli_and_bad_folder(page, tmp_path, capsys):
    study, _, _ = page
    assert main(["report", str(study), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "index.html").is_file()
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "r2")]) == 2
    assert "neither a study workdir" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()
    assert main(["study", "widths", "--quick", "--set", "nope=1",
                 "--workdir", str(tmp_path / "w")]) == 2
    assert not (tmp_path / "w").exists()


@pytest.mark.skipif(find_chromium() is None, reason="chromium not installed (make install as "
                                                    "root installs it)")
@pytest.mark.slow  # a browser
def test_page_renders_in_headless_chromium(page, tmp_path):
    study, html, _ = page
    res = open_page(html, screenshot=tmp_path / "shot.png", timeout=30)
    assert res["errors"] == [] and res["title"] == "test report"
    n_figures = len(_figures(study, True)) + len(_figures(DEMO, False))
    assert len(res["images"]) == n_figures
    assert all(i["complete"] and i["width"] > 0 and i["height"] > 0 for i in res["images"])
    assert (tmp_path / "shot.png").read_bytes()[:4] == b"\x89PNG"
    # The same check fails on a page with a broken image and a console error.
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><title>bad</title><img alt="x" src="data:image/png;base64,'
                   'AAAA"><script>console.error("boom")</script>')
    res = open_page(bad, timeout=30)
    assert any("boom" in e for e in res["errors"])
    assert res["images"][0]["width"] == 0
