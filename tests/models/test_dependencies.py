"""The models are numpy, scipy and pandas only: no engine, no Ibis, nothing of the layers above them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import patron.models

#: As the ``models`` contract of import-linter (pyproject.toml), checked here without it.
FORBIDDEN = ("ibis", "duckdb", "pyspark", "fastapi", "patron.engine", "patron.transforms", "patron.scoring",
             "patron.service", "patron.pipeline", "patron.cli")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_model_module_imports_a_higher_layer() -> None:
    folder = Path(patron.models.__file__).parent
    for path in sorted(folder.glob("*.py")):
        bad = {n for n in _imported(path) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_importing_the_models_loads_no_engine() -> None:
    code = ("import sys, patron.models, patron.models.clv, patron.models.margin; "
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} or m.startswith({FORBIDDEN!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
