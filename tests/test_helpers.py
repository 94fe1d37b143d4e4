"""The test files share what they share through tests/helpers.py and conftest.py, never through each other.

Importing a test file from another runs its module code a second time (under a
second name) and ties the two files together.
"""

import ast
import re

from tests.helpers import ROOT

TEST_MODULE = re.compile(r"^(tests\.)?test_\w+$")


def imported_test_modules(source: str) -> set[str]:
    """The test modules ``source`` imports, at any depth (``from tests import test_x`` counts too)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module] if node.module else []
            names += [f"{node.module}.{alias.name}" if node.module else alias.name for alias in node.names]
        else:
            continue
        found |= {name for name in names if TEST_MODULE.match(name)}
    return found


def test_no_test_file_imports_another():
    sample = ("import tests.test_a\nfrom test_b import x\nfrom tests import test_c\nfrom . import test_d\n"
              "def f():\n    from tests.test_e import y\n"
              "from tests.helpers import snakemake\nfrom noisefloor import params\n")
    assert imported_test_modules(sample) == {"tests.test_a", "test_b", "tests.test_c", "test_d", "tests.test_e"}
    files = sorted((ROOT / "tests").glob("*.py"))
    assert len(files) > 10
    offenders = {f.name: sorted(imported_test_modules(f.read_text())) for f in files}
    assert {name: mods for name, mods in offenders.items() if mods} == {}
