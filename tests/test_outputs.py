"""The pieces under the reliability table: output folders and their record, output files,
the self-checking JSONL store and the typed key=value parser."""
import json
from pathlib import Path

import pytest

from metaunsup.errors import UserError
from metaunsup.run import outputs
from metaunsup.run.jsonl import JsonlStore
from metaunsup.run.outputs import (MANIFEST, NPY, check_output_file, open_output_dir,
                                   remove_stale_tmp)
from metaunsup.values import cast_fields, cast_value, parse_pairs


def _record(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())["files"]


def test_an_output_folder_replaces_its_own_files_and_removes_the_ones_it_no_longer_writes(
        tmp_path):
    out = tmp_path / "out"
    first = open_output_dir(out)
    first.write_text("index.html", "one")
    first.write_bytes("images/a.png", b"a")
    first.finish()
    assert set(_record(out)) == {"index.html", "images/a.png"}
    second = open_output_dir(out)  # all files are ours: no --force needed
    second.write_text("index.html", "two")
    second.finish()
    assert (out / "index.html").read_text() == "two"
    assert not (out / "images").exists()  # our stale image and then its empty folder
    assert list(_record(out)) == ["index.html"]


def test_a_kill_between_record_and_file_leaves_a_folder_that_is_still_ours(tmp_path,
                                                                           monkeypatch):
    out = tmp_path / "out"
    run = open_output_dir(out)
    run.write_text("README.md", "old")
    run.finish()
    real = outputs.atomic_write_bytes

    def killed(path, data):
        if Path(path).name == "README.md":
            raise KeyboardInterrupt  # the record says old-or-new; the file is still old
        real(path, data)

    monkeypatch.setattr(outputs, "atomic_write_bytes", killed)
    with pytest.raises(KeyboardInterrupt):
        open_output_dir(out).write_text("README.md", "new")
    monkeypatch.setattr(outputs, "atomic_write_bytes", real)
    assert len(_record(out)["README.md"]) == 2
    again = open_output_dir(out)  # no file counts as foreign
    again.write_text("README.md", "new")
    again.finish()
    assert len(_record(out)["README.md"]) == 1


def test_force_writes_beside_foreign_files_and_never_over_them(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match=r"1 file\(s\) that metaunsup did not write \(notes.txt\)"):
        open_output_dir(out)
    run = open_output_dir(out, force=True)
    with pytest.raises(UserError, match="not written by metaunsup; not replaced"):
        run.write_text("notes.txt", "ours")
    run.write_text("index.html", "ours")
    run.finish()
    assert (out / "notes.txt").read_text() == "mine" and "notes.txt" not in _record(out)
    with pytest.raises(UserError, match="even with --force"):
        open_output_dir(out, force=True, planned=["notes.txt"])


def test_output_file_rules(tmp_path):
    data = tmp_path / "x.npy"
    data.write_bytes(b"\x93NUMPY" + bytes(10))
    text = tmp_path / "t.npy"
    text.write_text("mine")
    assert check_output_file(tmp_path / "new.npy") == tmp_path / "new.npy"
    for path, kw, needle in (
            (text, {}, "exists; pass --force"),
            (text, dict(force=True, kind=NPY), "is not a .npy array file"),
            (data, dict(force=True, kind=NPY, inputs=[data]), "is also an input"),
            (tmp_path / "no" / "f.npy", {}, "does not exist; create it first"),
            (text / "f.npy", {}, "because"),
            (tmp_path, {}, "is a directory")):
        with pytest.raises(UserError, match=needle):
            check_output_file(path, **kw)
    assert check_output_file(data, force=True, kind=NPY) == data


def test_stale_temporary_files_of_one_name_are_removed(tmp_path):
    for name in (".r.bin.abcd1234.tmp", ".r.bin.zz_9yy00.tmp", ".q.bin.abcd1234.tmp",
                 ".r.bin.toolongname.tmp"):
        (tmp_path / name).write_text("x")
    remove_stale_tmp(tmp_path / "r.bin")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".q.bin.abcd1234.tmp",
                                                          ".r.bin.toolongname.tmp"]


def test_jsonl_store_tolerates_only_an_unfinished_last_line(tmp_path):
    path = tmp_path / "m.jsonl"
    store = JsonlStore(path, identity=lambda r: r.get("step"), unit="step")
    store.append({"step": 1})
    store.append({"step": 2})
    with pytest.raises(UserError, match="already holds step 2"):
        store.append({"step": 2})
    with open(path, "a") as f:
        f.write('{"step": 3, "lo')
    assert [r["step"] for r in JsonlStore(path).read()] == [1, 2]
    fresh = JsonlStore(path, identity=lambda r: r.get("step"))
    fresh.append({"step": 3})  # drops the unfinished line first
    assert path.read_text().splitlines() == ['{"step": 1}', '{"step": 2}', '{"step": 3}']
    path.write_text('{"step": 1}\n{"step": 2, \n{"step": 3}\n')
    with pytest.raises(UserError, match=r"m.jsonl:2: not a JSON object.*sed -i '2d'"):
        fresh.read()
    path.write_text('{"step": 1}\n{"step": 2}\n{"step": 1}\n')
    with pytest.raises(UserError, match=r"m.jsonl:3: repeats the step of line 1"):
        JsonlStore(path, identity=lambda r: r.get("step"), unit="step").read()


@pytest.mark.parametrize("value,hint,expected", [
    ("0.5", float, 0.5), (2, float, 2.0), ("3", int, 3), ("yes", bool, True),
    ("off", bool, False), ("a,b", tuple[str, ...], ("a", "b")), ([1, 2], tuple[int, int], (1, 2)),
    ("dots", bool | str, "dots"), ("none", type(None) | str, None), ("", list[int], []),
])
def test_cast_value_types_text_and_values(value, hint, expected):
    assert cast_value(value, hint, name="k") == expected


@pytest.mark.parametrize("value,hint,strict,needle", [
    ("abc", float, False, "k='abc': expected a number (float)"),
    ("nan", float, False, "expected a number"),
    ("2.5", int, False, "expected an integer"),
    (True, int, False, "expected an integer"),
    ("maybe", bool, False, "expected true or false"),
    ("1.5", float, True, "expected a number"),  # strict: TOML already typed it
    (3, tuple[str, ...], True, "expected a comma-separated list of str"),
    ([1, 2, 3], tuple[int, int], True, "expected a list of 2 ints"),
])
def test_cast_value_refuses_with_key_value_and_type(value, hint, strict, needle):
    with pytest.raises(UserError) as e:
        cast_value(value, hint, name="k", strict=strict)
    assert needle in str(e.value)


def test_fields_and_pairs():
    from metaunsup.rules.hand import HebbianConfig

    assert cast_fields(HebbianConfig, parse_pairs("lr=0.1,center=false"), what="rule 'oja'") \
        == {"lr": 0.1, "center": False}
    with pytest.raises(UserError, match="rule 'oja' has no option 'rate'"):
        cast_fields(HebbianConfig, {"rate": "1"}, what="rule 'oja'")
    for text, needle in (("lr=1,lr=2", "given twice"), ("lr", "expected KEY=VALUE"),
                         ("lr=", "has no value")):
        with pytest.raises(UserError, match=needle):
            parse_pairs(text)
