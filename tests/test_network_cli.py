"""`metaunsup train` and `metaunsup features` on unlabeled .npy files, and the one
spelling of shared options (--methods, --curve-every) with the old names as aliases."""
import json

import numpy as np

import metaunsup
from metaunsup.cli import main


def test_train_then_features_match_the_python_api(tmp_path, capsys):
    x = np.random.default_rng(0).integers(0, 256, (64, 4, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", x)
    net_path, out = tmp_path / "net.safetensors", tmp_path / "f.npy"
    assert main(["train", "--rule", "oja", "--data", str(tmp_path / "x.npy"), "--out",
                 str(net_path), "--widths", "8,4", "--steps", "5", "--batch-size", "16",
                 "--no-progress"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["n_in"] == 12 and rec["widths"] == [8, 4] and rec["rule"] == "oja"
    assert main(["features", "--network", str(net_path), "--data", str(tmp_path / "x.npy"),
                 "--out", str(out)]) == 0
    feats = np.load(out, allow_pickle=False)
    # The same as the API: uint8 scaled to [0, 1], the same seed and key schedule.
    net = metaunsup.train("oja", x.reshape(64, 12).astype(np.float32) / 255, widths=(8, 4),
                          steps=5, batch_size=16, progress=False)
    np.testing.assert_allclose(feats, metaunsup.features(net, x), rtol=1e-5, atol=1e-6)
    assert np.array_equal(feats, metaunsup.features(metaunsup.load_network(net_path), x))


def test_train_and_features_refuse_bad_input_before_writing(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((0, 5), np.float32))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    cases = [
        (["train", "--data", str(tmp_path / "x.npy"), "--out", str(tmp_path / "n")], "empty"),
        (["train", "--data", str(tmp_path / "obj.npy"), "--out", str(tmp_path / "n")],
         "holds Python objects (pickled data)"),
        (["train", "--data", str(tmp_path / "none.npy"), "--out", str(tmp_path / "n")],
         "no such file"),
        (["train", "--rule", "nope", "--data", str(tmp_path / "x.npy"), "--out",
          str(tmp_path / "n")], "no such rule file"),
        (["features", "--network", str(tmp_path / "x.npy"), "--data", str(tmp_path / "x.npy"),
          "--out", str(tmp_path / "f.npy")], "not a readable safetensors"),
    ]
    for argv, needle in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "n").exists() and not (tmp_path / "f.npy").exists()


def test_one_spelling_of_shared_options_with_old_aliases():
    from metaunsup.cli import build_parser

    parser = build_parser()
    new = parser.parse_args(["evaluate", "--methods", "rule", "--dataset", "digits",
                             "--curve-every", "5"])
    old = parser.parse_args(["evaluate", "--method", "rule", "--dataset", "digits",
                             "--curve", "5"])
    assert (new.method, new.curve) == (old.method, old.curve) == ("rule", 5)
    demo = parser.parse_args(["demo", "--methods", "raw", "--curve-every", "5"])
    assert (demo.methods, demo.curve_every) == ("raw", 5)
