"""The import contracts in pyproject.toml hold for patron, and fail when a layer is crossed.

`make test` runs `lint-imports` on the real tree; this test shows the same contracts catch
real violations: a copy of the package with a model importing the engine, a transform
importing the pipeline and two service modules importing each other must fail, each naming
its contract.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed")


def lint_imports(project: Path, source: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(source)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300)


def test_patron_keeps_its_import_contracts() -> None:
    result = lint_imports(ROOT, ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_crossing_a_layer_breaks_the_contracts(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "patron", source / "patron",
                    ignore=shutil.ignore_patterns("__pycache__", "data", "*.csv", "*.parquet"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")

    def add_import(module: str, statement: str) -> None:
        path = source / "patron" / module
        path.write_text(path.read_text() + f"\n{statement}  # a violation planted by the test\n")

    add_import("models/gamma_gamma.py", "import patron.engine")
    add_import("transforms/rfm.py", "import patron.pipeline")
    add_import("service/schemas.py", "import patron.service.app")

    result = lint_imports(tmp_path, source)
    report = result.stdout + result.stderr
    assert result.returncode == 1, report
    assert "Contracts: 0 kept, 3 broken." in report
    assert "patron.transforms.rfm -> patron.pipeline" in report
    assert "patron.models.gamma_gamma -> patron.engine" in report
    assert "No cycles are allowed in patron.service" in report
