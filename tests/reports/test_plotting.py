"""The project summary charts are written from small frames, one PNG each, and are not blank."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib import image

from patron.reports import plotting


def _drawn(path: Path) -> bool:
    pixels = image.imread(path)
    return path.stat().st_size > 5_000 and (pixels[..., :3].mean(axis=2) < 0.95).mean() > 0.01


def test_each_summary_chart_returns_its_path_and_draws(tmp_path: Path) -> None:
    months = pd.date_range("2024-01-01", periods=6, freq="MS")
    monthly = pd.DataFrame({"month": list(months) * 2, "channel": ["online"] * 6 + ["store"] * 6,
                            "orders": [10, 12, 9, 14, 20, 30, 5, 6, 4, 7, 9, 15], "gp2": [100.0] * 12})
    frequency = pd.DataFrame({"frequency": [0, 1, 2, 3, 20, 30], "customers": [50, 20, 10, 5, 2, 1]})
    deciles = pd.DataFrame({"decile": range(1, 11), "total": [50.0, 20, 10, 6, 5, 4, 2, 1.5, 1, 0.5],
                            "mean": [500.0, 200, 100, 60, 50, 40, 20, 15, 10, 5]})
    outs = [
        plotting.monthly_activity_chart(monthly, tmp_path / "monthly.png", currency="EUR"),
        plotting.repeat_purchases_chart(frequency, tmp_path / "repeat.png", max_frequency=15),
        plotting.clv_decile_chart(deciles, tmp_path / "deciles.png", currency="EUR", horizon=12),
    ]
    assert outs == [tmp_path / "monthly.png", tmp_path / "repeat.png", tmp_path / "deciles.png"]
    assert all(_drawn(path) for path in outs)
