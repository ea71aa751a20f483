"""A real spreadsheet engine for the workbook tests: LibreOffice headless recalculates a workbook's formulas and
writes a sheet as CSV (``make test`` installs Debian's ``libreoffice-calc-nogui`` when missing)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

#: LibreOffice's setting that recalculates the formulas of an .xlsx file on load (0: always), in a profile of its
#: own so that the user's is never touched.
_RECALCULATE = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse">
<value>0</value></prop></item>
</oor:items>
"""


def soffice() -> str:
    """The LibreOffice program; the test is skipped locally without it, and fails under CI."""
    found = shutil.which("soffice") or shutil.which("libreoffice")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("LibreOffice (soffice) is missing: scripts/system-packages.sh installs it")
        pytest.skip("LibreOffice (soffice) is not installed")
    return found


def recalculated_sheet(workbook: Path, sheet_number: int, folder: Path) -> pd.DataFrame:
    """Sheet ``sheet_number`` (1-based) of ``workbook`` after LibreOffice recalculated every formula, as text cells
    (no header row taken)."""
    profile = folder / "lo-profile"
    (profile / "user").mkdir(parents=True, exist_ok=True)
    (profile / "user" / "registrymodifications.xcu").write_text(_RECALCULATE, encoding="utf-8")
    out = folder / "csv"
    out.mkdir(exist_ok=True)
    # 44: comma, 34: quote, 76: UTF-8, 1: first line; the 12th token picks the sheet
    options = f"csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,{sheet_number}"
    done = subprocess.run([soffice(), f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to",
                           options, "--outdir", str(out), str(workbook)], capture_output=True, text=True,
                          timeout=180, check=False)
    files = sorted(out.glob(f"{workbook.stem}*.csv"))
    assert done.returncode == 0 and files, done.stdout + done.stderr
    return pd.read_csv(files[-1], header=None, dtype=str, keep_default_na=False)
