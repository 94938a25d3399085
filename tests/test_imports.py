"""Imports point one way: the package's layers, checked over its import graph (grimp).

A module may import modules of its own subpackage and of *lower* layers only;
packages of one layer do not import each other. Imports inside functions are
allowed only for the optional or heavy third-party libraries listed below, each
with its reason; the package's own modules are always imported at module level
(a function-level import hides a cycle instead of removing it).
"""
from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest

import metaunsup

LAYERS = (
    ("types", "errors"),
    ("values", "streams", "progress", "optim"),
    ("data", "models", "objectives", "run"),
    ("network", "rules"),
    ("inner",),
    ("tasks",),
    ("baselines",),  # the methods and their registry; eval's harness runs them
    ("eval",),
    ("outer",),
    ("api", "studies"),
    ("cli",),
    ("__main__",),  # python -m metaunsup
)
"""Bottom to top. ``metaunsup`` itself (``__init__``) imports none of them statically."""

LAZY_THIRD_PARTY = {
    "PIL": "optional (the 'data' extra): glyph rendering",
    "zarr": "optional (the 'data' extra): offline MNIST copies",
    "skimage": "optional (the 'data' extra): natural-image patches",
    "sklearn": "start-up time: 0.5-1 s to import; only probes, PCA and two data sets use it",
    "scipy": "start-up time: only the patch equaliser uses scipy.stats at import of a data set",
    "matplotlib": "start-up time: only commands that draw a figure import it",
    "evosax": "start-up time: only evolution-strategy recipes use it",
}
"""Third-party libraries a function may import, with the reason."""

LAZY_BY_NAME = {
    ("metaunsup", "importlib.import_module"): "PEP 562 lazy exports: `import metaunsup` "
                                              "imports no JAX; each public name loads its "
                                              "module on first use",
}
"""The only imports by name (string) in the package, with the reason."""

SRC = Path(metaunsup.__file__).parent


def _graph():
    return grimp.build_graph("metaunsup", include_external_packages=False, cache_dir=None)


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) == 1:
        return None
    for i, names in enumerate(LAYERS):
        if parts[1] in names:
            return i
    raise AssertionError(f"{module}: its package {parts[1]!r} is in no layer of LAYERS")


def test_every_import_points_down():
    graph = _graph()
    bad = []
    for importer in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(importer):
            a, b = importer.split(".")[:2], imported.split(".")[:2]
            if a == b or _layer(imported) is None:
                continue
            la, lb = _layer(importer), _layer(imported)
            if la is None or lb >= la:
                bad.append(f"{importer} -> {imported} (layer {la} -> {lb})")
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_the_graph_has_no_cycle_between_packages():
    graph = _graph()
    packages = sorted({".".join(m.split(".")[:2]) for m in graph.modules if "." in m})
    for a in packages:
        for b in packages:
            if a < b and graph.chain_exists(a, b, as_packages=True) \
                    and graph.chain_exists(b, a, as_packages=True):
                pytest.fail(f"{a} and {b} import each other (a cycle)")


def _function_imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for sub in ast.walk(node):
            if isinstance(sub, ast.Import):
                yield sub.lineno, [a.name for a in sub.names]
            elif isinstance(sub, ast.ImportFrom):
                yield sub.lineno, ["." * sub.level + (sub.module or "")]


def test_functions_import_only_optional_or_heavy_libraries():
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        for line, names in _function_imports(path):
            for name in names:
                if name.split(".")[0] not in LAZY_THIRD_PARTY:
                    bad.append(f"{path.relative_to(SRC.parent)}:{line}: import {name}")
    assert not bad, ("imports inside functions (move them to the module's top, or move "
                     "the shared piece down a layer):\n" + "\n".join(bad))


def test_no_import_by_name_but_the_documented_one():
    found = set()
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        for call in ("importlib.import_module", "__import__("):
            if call in text:
                found.add((module, call.rstrip("(")))
    assert found == set(LAZY_BY_NAME), found
