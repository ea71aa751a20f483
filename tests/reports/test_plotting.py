"""The project summary charts are written from small frames, one PNG each, and are not blank."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from matplotlib import image

from patron.reports import plotting
from patron.reports.figures import pyplot


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


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    yield
    pyplot().close("all")


def _monthly(gp2: list[float]) -> pd.DataFrame:
    months = pd.date_range("2024-01-01", periods=len(gp2), freq="MS")
    return pd.DataFrame({"month": months, "channel": "online", "orders": 1_500, "gp2": gp2})


def test_monthly_gp2_axis_starts_at_zero_with_thousands_separators() -> None:
    fig = plotting.monthly_activity_figure(_monthly([40_000.0, 52_000.0, 61_500.0]), currency="EUR")
    orders_axis, gp2_axis = fig.axes
    assert gp2_axis.get_ylim()[0] == 0  # not 40,000: a month's profit reads against zero
    assert gp2_axis.yaxis.get_major_formatter()(12_500, 0) == "12,500"
    assert orders_axis.yaxis.get_major_formatter()(1_500, 0) == "1,500"
    assert "GP2" in gp2_axis.get_ylabel() and "EUR" in gp2_axis.get_ylabel()


def test_monthly_gp2_axis_reaches_below_zero_for_a_loss_month() -> None:
    fig = plotting.monthly_activity_figure(_monthly([-2_000.0, 10_000.0]), currency="EUR")
    assert fig.axes[1].get_ylim()[0] <= -2_000


def test_clv_decile_title_names_no_currency_on_a_percentage_axis() -> None:
    deciles = pd.DataFrame({"decile": range(1, 11), "total": [10.0] * 10, "mean": [1_234.0] * 10})
    (ax,) = plotting.clv_decile_figure(deciles, currency="EUR", horizon=12).axes
    assert "%" in ax.get_ylabel()
    assert "EUR" not in ax.get_title() and "12-month" in ax.get_title()
    assert "EUR" in ax.get_xlabel()  # the currency belongs to the bar labels (mean CLV), said there
    assert [t.get_text() for t in ax.texts][:1] == ["1,234"]


def test_repeat_purchases_chart_shows_profit_per_customer_when_given() -> None:
    frequency = pd.DataFrame({"frequency": [0, 1, 2, 20], "customers": [100, 40, 10, 2],
                              "gp2": [5_000.0, 6_000.0, 3_000.0, 4_000.0]})
    _, twin = plotting.repeat_purchases_figure(frequency, currency="EUR", max_frequency=15).axes
    (line,) = twin.get_lines()
    assert list(line.get_ydata()) == [50.0, 150.0, 300.0, 2_000.0]  # GP2 per customer, the tail folded in
    assert "GP2" in twin.get_ylabel() and twin.get_ylim()[0] == 0
    without = plotting.repeat_purchases_figure(frequency.drop(columns="gp2"), currency="EUR")
    assert len(without.axes) == 1
