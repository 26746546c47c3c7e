"""The arrows of docs/design.md ("Arrows run one way"), read from the source with ``ast``, so a new import that
crosses them fails here rather than in a review:

- ``core`` imports no experiment and no tool; ``core/losses`` imports nothing of the project outside itself;
- an experiment imports no other experiment (what one needs of another travels as a file), and the tools only
  from its ``plan.py`` (the planner's plug-in);
- the tools import no experiment (the planner finds the experiments' ``plan.py`` through ``core.experiments``).
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

from workflow_scripts.core.experiments import experiment_names

PACKAGE = Path(__file__).resolve().parents[2] / "workflow_scripts"


def _area(parts: tuple[str, ...]) -> str:
    """``core.losses``, ``core``, ``tools`` or the experiment's name, from a module's path below the package."""
    return "core.losses" if parts[:2] == ("core", "losses") else parts[0]


def project_imports() -> list[tuple[str, str, str]]:
    """``(file, importing area, imported area)`` for every static import of ``workflow_scripts.<...>``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) == 1:
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                names = module.split(".")
                if names[0] == "workflow_scripts" and len(names) > 1:
                    found.append((str(path.relative_to(PACKAGE)), _area(parts), _area(tuple(names[1:]))))
    return found


def test_the_experiments_are_found():
    assert {"emotion", "armorm", "hh", "lm_eval", "radius_coverage"} <= set(experiment_names())


def test_imports_run_one_way():
    experiments = set(experiment_names())
    crossing = []
    for path, source, target in project_imports():
        if source == target:
            continue
        allowed = {
            "core.losses": set(),
            "core": {"core.losses"},
            "tools": {"core", "core.losses"},
        }.get(source, {"core", "core.losses"} | ({"tools"} if path.endswith("/plan.py") else set()))
        if target not in allowed:
            crossing.append(f"{path}: {source} imports {target}")
    assert not crossing, "imports against docs/design.md's arrows:\n" + "\n".join(crossing)
    assert experiments.isdisjoint({"core", "tools"})


def test_the_check_sees_a_crossing(tmp_path, monkeypatch):
    """The check is not vacuous: an experiment module importing another experiment is reported."""
    (tmp_path / "hh").mkdir()
    (tmp_path / "hh" / "leak.py").write_text("from workflow_scripts.armorm.report import objectives_table\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    assert ("hh/leak.py", "hh", "armorm") in project_imports()
