"""Charts people would rather look at than tables; data in, PNG file out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a screen
    import matplotlib.pyplot as plt

    return plt


def monthly_activity_chart(monthly: pd.DataFrame, out: Path, *, currency: str) -> Path:
    """Orders per month by channel (bars) and GP2 per month (line): seasonality at a glance."""
    plt = _pyplot()
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
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def frequency_chart(frequency: pd.DataFrame, out: Path, *, max_frequency: int = 15) -> Path:
    """Customers by number of repeat purchases, the tail folded into the last bar."""
    plt = _pyplot()
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
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
