"""matplotlib for files: the one place the charts get ``pyplot`` and save a figure.

matplotlib is imported on first use, with the Agg backend (files only, no screen), so
that importing patron never pulls in a plotting backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Resolution of every chart patron writes.
DPI = 110


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend: charts are written to files and never need a screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out: Path | str) -> Path:
    """Lay out ``fig``, write it to ``out`` as a PNG (creating the folder) and close it; returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=DPI)
    pyplot().close(fig)
    return out
