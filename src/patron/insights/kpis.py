"""Headline figures computed from the pipeline's results, for every interface to show as they are.

The CLI (and any other interface) renders these numbers; it does not compute them. Each
function takes a result the pipeline already returned and does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from patron.transforms.ingest import IngestResult

__all__ = ["clv_by_horizon", "fully_rejected", "top_decile_share"]


def top_decile_share(deciles: pd.DataFrame) -> float | None:
    """The share of total CLV held by the most valuable tenth of customers (decile 1).

    ``deciles`` is one row per decile with the columns ``decile`` (1 = most valuable) and
    ``total`` (the summed CLV of its customers), as ``patron.pipeline.score`` returns in
    ``ScoreRun.deciles`` for the longest horizon. ``None`` when there is no value to share
    (no rows, or a total of zero).
    """
    total = deciles["total"].sum()
    if not total:
        return None
    top = deciles.loc[deciles["decile"] == 1, "total"].sum()
    return float(top / total)


def clv_by_horizon(totals: Mapping[str, float]) -> dict[str, float]:
    """The total CLV per horizon label (``{"12m": ...}``) from the ``clv_<horizon>`` entries of ``totals``.

    ``totals`` is ``ScoreRun.totals``; its order (shortest horizon first) is kept, and entries that
    are not CLV totals (``historic_gp2``, ``mean_p_alive``) are left out.
    """
    return {key.removeprefix("clv_"): value for key, value in totals.items() if key.startswith("clv_")}


def fully_rejected(results: Iterable[IngestResult]) -> list[IngestResult]:
    """The ingested files of which every row was rejected (so nothing of them loaded), in order."""
    return [result for result in results if result.all_rejected]
