"""Every name the scripts under ``scripts/`` import from the project exists.

The scripts import most of the project inside their functions (so that ``--help`` is quick),
where no test runs them: a moved module broke ``bench_train.py`` and ``bench_synthesis.py``
unnoticed once (``models.zoo`` became ``models.catalogue``). This reads each script's imports,
module level and inside functions alike, and resolves them without running the script. A script
may import a sibling script by name (``from compare_styles import sheet_of``: ``scripts/`` is on
``sys.path`` when a script runs), and a folder without ``__init__.py`` (``models/zoo``, data) is
not a module.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("models", "training", "visualize", "realtime", "stylelens", "scripts")
SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))
SIBLINGS = tuple(p.stem for p in SCRIPTS)  # what a script may import from scripts/ by its bare name


def _project_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) for each import of a project module anywhere in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] in PROJECT_PACKAGES + SIBLINGS:
                found += [(node.lineno, node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, None) for alias in node.names
                      if alias.name.split(".")[0] in PROJECT_PACKAGES + SIBLINGS]
    return found


def test_the_scripts_are_found():
    assert len(SCRIPTS) >= 5, SCRIPTS


def _module(name: str):
    """The module, or None where only a namespace package (a folder without ``__init__.py``) answers."""
    mod = importlib.import_module(name)
    return mod if getattr(mod, "__file__", None) else None


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_project_import_of_a_script_resolves(script, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))
    missing, not_installed = [], []
    for line, module, name in _project_imports(script):
        try:
            mod = _module(module)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] in PROJECT_PACKAGES + SIBLINGS:
                missing.append(f"{script.name}:{line}: no module {module}")
            else:  # a third-party package of an extra: the script's other imports are still checked
                not_installed.append(f"{module} needs {exc.name}")
            continue
        if mod is None:
            missing.append(f"{script.name}:{line}: {module} is a folder, not a module")
            continue
        if name is not None and name != "*" and not hasattr(mod, name):
            try:  # a submodule imported by name (from models import catalogue)
                found = _module(f"{module}.{name}")
            except ModuleNotFoundError:
                found = None
            if found is None:
                missing.append(f"{script.name}:{line}: {module} has no {name}")
    assert not missing, "\n".join(missing)
    if not_installed:
        pytest.skip(f"checked the rest; not installed here: {'; '.join(sorted(set(not_installed)))}")
