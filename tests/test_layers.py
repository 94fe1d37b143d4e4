"""The import rules of the house (docs/design.md, "Layers"), read from the source, so a shortcut fails here.

Every import counts, also one inside a function: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast

import pytest

from tests.helpers import ROOT

SRC = ROOT / "src" / "noisefloor"
MODULES = {str(p.relative_to(SRC).with_suffix("")).replace("/", "."): p for p in SRC.rglob("*.py")}


def _imports(name: str) -> set[str]:
    """What module ``name`` imports: noisefloor modules as ``noisefloor.x.y``, others by their top-level name."""
    path = MODULES[name]
    package = ["noisefloor", *name.split(".")[:-1]]         # the package a relative import starts from
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
                found |= {stem} if node.module else {f"{stem}.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return {f if f.startswith("noisefloor") else f.split(".")[0] for f in found}


def _inside(imports: set[str], *packages: str) -> set[str]:
    return {i for i in imports if any(i == p or i.startswith(p + ".") for p in packages)}


def test_the_reader_of_the_source_sees_every_module():
    assert {"vocab", "summary", "plots", "report", "display", "stats.analyze", "cli"} <= set(MODULES)
    assert _imports("stats.sections") >= {"noisefloor.vocab", "noisefloor.stats.compare", "numpy"}
    assert _imports("stats.analyze") >= {"noisefloor.summary", "noisefloor.stats.sections"}


def test_the_vocabulary_and_the_summary_stand_on_nothing_else():
    assert _inside(_imports("vocab"), "noisefloor") == set()
    assert _inside(_imports("summary"), "noisefloor") == {"noisefloor.vocab"}


@pytest.mark.parametrize("renderer", ["plots", "report", "display", "tracking"])
def test_renderers_draw_the_summary_and_compute_no_statistic(renderer):
    imports = _imports(renderer)
    assert not _inside(imports, "noisefloor.stats"), f"{renderer} imports statistics"
    assert "scipy" not in imports and "statsmodels" not in imports


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("stats.")))
def test_statistics_read_tables_and_write_typed_results_only(module):
    allowed = ("noisefloor.stats", "noisefloor.summary", "noisefloor.vocab", "noisefloor.errors",
               "noisefloor.runs_table", "noisefloor.sweep")
    outside = _inside(_imports(module), "noisefloor") - _inside(_imports(module), *allowed)
    assert not outside, f"{module} imports {sorted(outside)}"
    assert not _imports(module) & {"matplotlib", "subprocess", "multiprocessing", "socket"}


#: What marks each concern in a module's own imports.
CONCERNS = {
    "statistics": {"scipy", "statsmodels"},
    "rendering": {"matplotlib"},
    "process launching": {"subprocess", "multiprocessing", "socket", "concurrent"},
}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_mixes_statistics_rendering_and_process_launching(module):
    imports = _imports(module)
    held = [concern for concern, marks in CONCERNS.items() if imports & marks]
    assert len(held) <= 1, f"{module} mixes {' and '.join(held)}"
