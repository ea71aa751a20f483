"""Summary charts of a project's data (``patron demo``): people would rather look at these than tables.

Each function takes a small frame the warehouse computed and a path, draws one PNG and returns the path.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from patron.reports.figures import pyplot, save_figure


def monthly_activity_chart(monthly: pd.DataFrame, out: Path, *, currency: str) -> Path:
    """Orders per month by channel (bars) and GP2 per month (line): seasonality at a glance."""
    plt = pyplot()
    orders = monthly.pivot_table(index="month", columns="channel", values="orders", aggfunc="sum").fillna(0)
    gp2 = monthly.groupby("month")["gp2"].sum()
    fig, ax = plt.subplots(figsize=(11, 4.5))
    bottom = None
    for channel in orders.columns:
        ax.bar(orders.index, orders[channel], width=25, bottom=bottom, label=f"{channel} orders")
        bottom = orders[channel] if bottom is None else bottom + orders[channel]
    ax.set_ylabel("orders per month")
    ax.set_title("Orders and gross profit 2 per month")
    twin = ax.twinx()
    twin.plot(gp2.index, gp2.values, color="black", linewidth=1.5, label=f"GP2 ({currency})")
    twin.set_ylabel(f"GP2 per month ({currency})")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + twin.get_legend_handles_labels()[1]
    ax.legend(handles, labels, loc="upper left")
    return save_figure(fig, out)


def repeat_purchases_chart(frequency: pd.DataFrame, out: Path, *, max_frequency: int = 15) -> Path:
    """Customers by number of repeat purchases (a histogram of ``frequency``), the tail folded into the last bar.

    ``frequency``: ``frequency`` and ``customers`` (how many customers made that many repeat purchases).
    """
    plt = pyplot()
    counts = frequency.set_index("frequency")["customers"]
    head = counts[counts.index < max_frequency]
    tail = counts[counts.index >= max_frequency].sum()
    labels = [str(int(i)) for i in head.index] + ([f"{max_frequency}+"] if tail else [])
    values = list(head.values) + ([tail] if tail else [])
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(labels, values, color="#7a5195")
    ax.set_xlabel("repeat purchases (frequency)")
    ax.set_ylabel("customers")
    ax.set_title("Customers by number of repeat purchases")
    return save_figure(fig, out)


def clv_decile_chart(deciles: pd.DataFrame, out: Path, *, currency: str, horizon: int) -> Path:
    """Share of total CLV held by each customer decile, with the mean CLV per customer."""
    plt = pyplot()
    total = deciles["total"].sum()
    share = deciles["total"] / total if total else deciles["total"] * 0
    fig, ax = plt.subplots(figsize=(9, 4.2))
    bars = ax.bar(deciles["decile"].astype(str), share * 100, color="#ef5675")
    for bar, mean in zip(bars, deciles["mean"], strict=True):
        ax.annotate(f"{mean:,.0f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("customer decile by CLV (1 = most valuable); labels: mean CLV per customer")
    ax.set_ylabel("share of total CLV (%)")
    ax.set_title(f"Where the value is: {horizon}-month profit CLV ({currency}) by decile")
    return save_figure(fig, out)
