"""The CLI's persistent compilation cache: location, switch, and a hit in a second process."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from metaunsup.run import compile_cache as cc

# A jitted program compiled by a fresh process with the cache turned on the way
# the CLI turns it on; prints whether JAX found it in the persistent cache.
_CHILD = r"""
import logging, sys
from metaunsup.run.compile_cache import enable
print("dir", enable())
import jax, jax.numpy as jnp
hits = []
class H(logging.Handler):
    def emit(self, r):
        if "cache hit" in r.getMessage():
            hits.append(r.getMessage())
logging.getLogger("jax._src.compiler").addHandler(H())
logging.getLogger("jax._src.compiler").setLevel(logging.DEBUG)
f = jax.jit(lambda x: jnp.cumsum(jnp.sin(x) @ x.T, axis=0).sum())
print("value", float(f(jnp.arange(12.0).reshape(3, 4))))
print("hits", len(hits))
"""


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in (cc.JAX_DIR_ENV, cc.DIR_ENV, cc.OFF_ENV)}
    env.update(extra)
    return env


def test_location_precedence(monkeypatch, tmp_path):
    for k in (cc.JAX_DIR_ENV, cc.DIR_ENV):
        monkeypatch.delenv(k, raising=False)
    assert cc.cache_dir() == Path.home() / ".cache" / "metaunsup" / "jax"
    monkeypatch.setenv(cc.DIR_ENV, str(tmp_path / "mine"))
    assert cc.cache_dir() == tmp_path / "mine"
    monkeypatch.setenv(cc.JAX_DIR_ENV, str(tmp_path / "jax"))
    assert cc.cache_dir() == tmp_path / "jax"


def test_switched_off_by_flag_or_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(cc.DIR_ENV, str(tmp_path / "c"))
    monkeypatch.delenv(cc.JAX_DIR_ENV, raising=False)
    assert cc.enable(disabled=True) is None
    monkeypatch.setenv(cc.OFF_ENV, "1")
    assert cc.enable() is None
    assert not (tmp_path / "c").exists()


@pytest.mark.slow  # two subprocesses
def test_second_process_hits_the_cache(tmp_path):
    env = _env(**{cc.DIR_ENV: str(tmp_path / "cache"),
                  "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"})
    runs = [subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True,
                           text=True, timeout=120, check=True).stdout.split("\n")
            for _ in range(2)]
    first, second = ({line.split()[0]: line.split(" ", 1)[1] for line in r if line} for r in runs)
    assert first["dir"] == str(tmp_path / "cache")
    assert first["value"] == second["value"]
    assert int(first["hits"]) == 0 and int(second["hits"]) >= 1
    assert any((tmp_path / "cache").iterdir())
