"""Summary charts of a project's data (``patron demo``, ``score``, ``segments``): people would rather look at
these than tables.

Each ``*_chart`` function takes a small frame the warehouse computed and a path, draws one PNG and
returns the path; its ``*_figure`` twin builds the matplotlib figure (what a test inspects). Money
axes start at zero and read with thousands separators; profit means gross profit 2 (GP2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from patron.reports.figures import pyplot, save_figure


def thousands(axis: Any) -> None:
    """Tick labels of ``axis`` (an ``ax.yaxis``) as whole numbers with thousands separators: ``12,500``."""
    from matplotlib.ticker import StrMethodFormatter

    axis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))


def monthly_activity_figure(monthly: pd.DataFrame, *, currency: str) -> Any:
    """The figure of :func:`monthly_activity_chart`: orders (bars, left axis) and GP2 (line, right axis),
    both axes from zero (or the lowest negative month) with thousands separators."""
    plt = pyplot()
    orders = monthly.pivot_table(index="month", columns="channel", values="orders", aggfunc="sum").fillna(0)
    gp2 = monthly.groupby("month")["gp2"].sum()
    fig, ax = plt.subplots(figsize=(11, 4.5))
    bottom = None
    for channel in orders.columns:
        ax.bar(orders.index, orders[channel], width=25, bottom=bottom, label=f"{channel} orders")
        bottom = orders[channel] if bottom is None else bottom + orders[channel]
    ax.set_ylabel("orders per month")
    ax.set_title(f"Orders and gross profit 2 (GP2, {currency}) per month")
    thousands(ax.yaxis)
    twin = ax.twinx()
    twin.plot(gp2.index, gp2.values, color="black", linewidth=1.5, label=f"GP2 ({currency})")
    twin.set_ylabel(f"GP2 per month ({currency})")
    twin.set_ylim(bottom=min(0.0, float(gp2.min())) if len(gp2) else 0.0)
    thousands(twin.yaxis)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + twin.get_legend_handles_labels()[1]
    ax.legend(handles, labels, loc="upper left")
    return fig


def monthly_activity_chart(monthly: pd.DataFrame, out: Path, *, currency: str) -> Path:
    """Orders per month by channel (bars) and GP2 per month (line): seasonality at a glance.

    ``monthly``: ``month``, ``channel``, ``orders`` and ``gp2``.
    """
    return save_figure(monthly_activity_figure(monthly, currency=currency), out)


def repeat_purchases_figure(frequency: pd.DataFrame, *, currency: str, max_frequency: int = 15) -> Any:
    """The figure of :func:`repeat_purchases_chart`: customers per number of repeat purchases (bars), and
    with a ``gp2`` column their mean historic GP2 (line, right axis from zero)."""
    plt = pyplot()
    table = frequency.set_index("frequency")
    head = table[table.index < max_frequency]
    tail = table[table.index >= max_frequency]
    labels = [str(int(i)) for i in head.index] + ([f"{max_frequency}+"] if len(tail) else [])
    customers = list(head["customers"]) + ([tail["customers"].sum()] if len(tail) else [])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(labels, customers, color="#7a5195", label="customers")
    ax.set_xlabel("repeat purchases (frequency)")
    ax.set_ylabel("customers")
    thousands(ax.yaxis)
    if "gp2" in table.columns:
        gp2 = list(head["gp2"]) + ([tail["gp2"].sum()] if len(tail) else [])
        mean = [g / c if c else 0.0 for g, c in zip(gp2, customers, strict=True)]
        twin = ax.twinx()
        twin.plot(labels, mean, color="black", marker="o", linewidth=1.5, label=f"mean GP2 per customer ({currency})")
        twin.set_ylabel(f"mean historic GP2 per customer ({currency})")
        twin.set_ylim(bottom=min(0.0, *mean))
        thousands(twin.yaxis)
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        names = ax.get_legend_handles_labels()[1] + twin.get_legend_handles_labels()[1]
        ax.legend(handles, names, loc="upper center")
        ax.set_title("Customers and their profit by number of repeat purchases")
    else:
        ax.set_title("Customers by number of repeat purchases")
    return fig


def repeat_purchases_chart(frequency: pd.DataFrame, out: Path, *, currency: str = "", max_frequency: int = 15) -> Path:
    """Customers by number of repeat purchases (a histogram of ``frequency``), the tail folded into the last bar.

    ``frequency``: ``frequency`` and ``customers`` (how many customers made that many repeat
    purchases), optionally ``gp2`` (their historic GP2 summed): then their mean GP2 is drawn too.
    """
    return save_figure(repeat_purchases_figure(frequency, currency=currency, max_frequency=max_frequency), out)


def clv_decile_figure(deciles: pd.DataFrame, *, currency: str, horizon: int) -> Any:
    """The figure of :func:`clv_decile_chart`: the axis is a share (%), the bar labels are money."""
    plt = pyplot()
    total = deciles["total"].sum()
    share = deciles["total"] / total if total else deciles["total"] * 0
    fig, ax = plt.subplots(figsize=(9, 4.2))
    bars = ax.bar(deciles["decile"].astype(str), share * 100, color="#ef5675")
    for bar, mean in zip(bars, deciles["mean"], strict=True):
        ax.annotate(f"{mean:,.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xlabel(f"customer decile by CLV (1 = most valuable); bar labels: mean CLV per customer ({currency})")
    ax.set_ylabel("share of total CLV (%)")
    ax.set_title(f"Where the value is: share of {horizon}-month profit CLV held by each decile")
    return fig


def clv_decile_chart(deciles: pd.DataFrame, out: Path, *, currency: str, horizon: int) -> Path:
    """Share of total CLV held by each customer decile, with the mean CLV per customer.

    ``deciles``: ``decile``, ``total`` and ``mean`` (of the CLV), as :func:`patron.pipeline.clv_deciles` gives.
    """
    return save_figure(clv_decile_figure(deciles, currency=currency, horizon=horizon), out)
