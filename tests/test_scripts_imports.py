"""Every name the scripts under ``scripts/`` import from the project exists.

The scripts import most of the project inside their functions (so that ``--help`` is quick),
where no test runs them: a moved module broke ``bench_train.py`` and ``bench_synthesis.py``
unnoticed once (``models.zoo`` became ``models.catalogue``). This reads each script's imports,
module level and inside functions alike, and resolves them without running the script.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("models", "training", "visualize", "realtime", "stylelens", "scripts")
SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))


def _project_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) for each import of a project module anywhere in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in PROJECT_PACKAGES:
                found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names
                      if alias.name.split(".")[0] in PROJECT_PACKAGES]
    return found


def test_the_scripts_are_found():
    assert len(SCRIPTS) >= 5, SCRIPTS


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_project_import_of_a_script_resolves(script):
    missing = []
    for line, module, name in _project_imports(script):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] in PROJECT_PACKAGES:
                missing.append(f"{script.name}:{line}: no module {module}")
                continue
            pytest.skip(f"{module} needs {exc.name}, not installed here")
        if name is not None and name != "*" and not hasattr(mod, name):
            try:  # a submodule imported by name (from models import catalogue)
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"{script.name}:{line}: {module} has no {name}")
    assert not missing, "\n".join(missing)
