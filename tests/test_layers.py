"""The package's layers: the model (``declutr.model``) imports nothing of what is built on it (callbacks, run records
and reports, tasks), so it can be used, tested and moved without them."""

import ast

import pytest

from tests.helpers.paths import ROOT

MODEL = ROOT / "src" / "declutr" / "model"
ABOVE_THE_MODEL = ("declutr.callbacks", "declutr.report", "declutr.runs", "declutr.tasks")


def imported(path) -> set[str]:
    """Every module ``path`` imports, at run time or for type checking alone, absolute names."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path.name}: a relative import"
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(MODEL.glob("*.py")), ids=lambda p: p.name)
def test_the_model_imports_nothing_built_on_it(path):
    upward = sorted(name for name in imported(path) if name.startswith(ABOVE_THE_MODEL))
    assert not upward, f"src/declutr/model/{path.name} imports {upward}"
