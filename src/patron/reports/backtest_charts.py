"""Charts of a backtest: the figures the BTYD literature uses to judge a purchase model.

Each function takes the frame :class:`~patron.evaluation.BacktestResult` produces and a
path, draws one PNG (matplotlib, Agg backend: no screen needed) and returns the path.
:func:`write_backtest_charts` draws them all for a result.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from patron.config import PURCHASE_MODEL_LABELS
from patron.evaluation import BacktestResult
from patron.reports.figures import pyplot, save_figure

#: Line colours of the models, in the order of the frame's model columns.
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")
#: Colour of the actual (observed) series.
_ACTUAL = "black"


def model_label(name: str) -> str:
    """How a model name reads on a chart: ``bg_nbd`` -> ``BG/NBD``; other names as they are."""
    return PURCHASE_MODEL_LABELS.get(name, name)


def _model_columns(frame: pd.DataFrame, reserved: set[str]) -> list[str]:
    """The columns of ``frame`` that hold one model each: all but the ``reserved`` ones."""
    return [c for c in frame.columns if c not in reserved]


def holdout_by_frequency_chart(by_frequency: pd.DataFrame, out: Path) -> Path:
    """Mean holdout purchases by calibration frequency: actual vs each model (Fader-Hardie's check).

    ``by_frequency``: ``label``, ``n``, ``actual`` and one column per model, as
    :meth:`BacktestResult.by_frequency_frame` gives.
    """
    plt = pyplot()
    models = _model_columns(by_frequency, {"frequency", "label", "n", "actual"})
    x = range(len(by_frequency))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(x, by_frequency["actual"], color=_ACTUAL, marker="o", linewidth=2, label="actual")
    for colour, name in zip(_COLOURS, models, strict=False):
        ax.plot(x, by_frequency[name], color=colour, marker=".", linestyle="--", label=model_label(name))
    ax.set_xticks(list(x), [f"{lab}\n(n={int(n)})" for lab, n in zip(by_frequency["label"], by_frequency["n"],
                                                                   strict=True)])
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title("Conditional expectations: holdout purchases by calibration frequency")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return save_figure(fig, out)


def _tracking_panel(ax: Any, tracking: pd.DataFrame, *, ylabel: str, title: str) -> None:
    """One tracking panel on ``ax``: actual and each model over the period ends, the end of calibration marked."""
    models = _model_columns(tracking, {"period", "period_end", "in_holdout", "actual"})
    dates = pd.to_datetime(tracking["period_end"])
    ax.plot(dates, tracking["actual"], color=_ACTUAL, linewidth=1.5, label="actual")
    for colour, name in zip(_COLOURS, models, strict=False):
        ax.plot(dates, tracking[name], color=colour, linestyle="--", label=model_label(name))
    calibration = dates[~tracking["in_holdout"].astype(bool)]
    if len(calibration) and len(calibration) < len(dates):
        end = calibration.max()
        ax.axvline(end, color="grey", linestyle=":", linewidth=1.5)
        ax.annotate("end of calibration", (end, 0.03), xycoords=("data", "axes fraction"),
                    xytext=(4, 0), textcoords="offset points", color="grey")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)


def tracking_chart(tracking: pd.DataFrame, out: Path, *, per_period: pd.DataFrame | None = None) -> Path:
    """Repeat purchases, actual vs expected, with the end of calibration marked.

    ``tracking``: ``period_end``, ``in_holdout``, ``actual`` and one column per model,
    cumulative, as :meth:`BacktestResult.tracking_frame` gives. With ``per_period`` (the
    same columns per period, ``tracking_frame(cumulative=False)``) a top panel shows the
    purchases *in* each period: a model on the wrong clock misses the seasonal peaks
    there (and its errors cancel in the cumulative curve over a whole year).
    """
    plt = pyplot()
    if per_period is None:
        fig, ax = plt.subplots(figsize=(10, 4.5))
        axes = [ax]
    else:
        fig, axes = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
        _tracking_panel(axes[0], per_period, ylabel="repeat purchases per period",
                        title="Tracking: repeat purchases per period, actual vs expected")
    _tracking_panel(axes[-1], tracking, ylabel="cumulative repeat purchases",
                    title="Tracking: cumulative repeat purchases, actual vs expected")
    fig.autofmt_xdate()
    return save_figure(fig, out)


def decile_chart(deciles: pd.DataFrame, out: Path) -> Path:
    """Mean predicted vs actual holdout purchases per decile of prediction, one panel per model.

    ``deciles``: ``model``, ``decile``, ``mean_predicted``, ``mean_actual``, as
    :meth:`BacktestResult.deciles_frame` gives.
    """
    plt = pyplot()
    names = list(dict.fromkeys(deciles["model"]))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names) + 1, 4.2), sharey=True, squeeze=False)
    width = 0.4
    for ax, name in zip(axes[0], names, strict=True):
        table = deciles[deciles["model"] == name].sort_values("decile")
        x = table["decile"].to_numpy()
        ax.bar(x - width / 2, table["mean_predicted"], width, color="#4c72b0", label="predicted")
        ax.bar(x + width / 2, table["mean_actual"], width, color="#dd8452", label="actual")
        ax.set_xticks(x)
        ax.set_xlabel("decile of predicted purchases (1 = highest)")
        ax.set_title(model_label(name))
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("mean purchases in the holdout period")
    axes[0][0].legend(loc="upper right")
    fig.suptitle("Holdout purchases by decile of prediction")
    return save_figure(fig, out)


def gain_chart(gain: pd.DataFrame, out: Path) -> Path:
    """Share of holdout purchases captured by the top customers ranked by each model, vs perfect and random.

    ``gain``: ``share``, ``perfect``, ``random`` and one column per model, as
    :meth:`BacktestResult.gain_frame` gives.
    """
    plt = pyplot()
    models = _model_columns(gain, {"share", "perfect", "random"})
    share = gain["share"] * 100
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.plot(share, gain["perfect"] * 100, color=_ACTUAL, linestyle=":", linewidth=2, label="perfect (hindsight)")
    for colour, name in zip(_COLOURS, models, strict=False):
        ax.plot(share, gain[name] * 100, color=colour, label=model_label(name))
    ax.plot(share, gain["random"] * 100, color="grey", linestyle="--", label="random")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 101)
    ax.set_xlabel("top % of customers, ranked by predicted purchases")
    ax.set_ylabel("% of holdout purchases captured")
    ax.set_title("Gain curve")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return save_figure(fig, out)


def reliability_chart(calibration: pd.DataFrame, out: Path) -> Path:
    """Predicted chance of buying in the holdout against the share who did, per tenth of customers, per model.

    ``calibration``: ``model``, ``group``, ``mean_predicted``, ``observed``, as
    :meth:`BacktestResult.calibration_frame` gives. A calibrated model's points lie on the
    diagonal; points below it mean the model expected more customers to buy than did.
    """
    plt = pyplot()
    names = list(dict.fromkeys(calibration["model"]))
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    top = float(max(calibration["mean_predicted"].max(), calibration["observed"].max(), 0.01)) * 1.05
    ax.plot([0, top * 100], [0, top * 100], color="grey", linestyle="--", label="calibrated")
    for colour, name in zip(_COLOURS, names, strict=False):
        table = calibration[calibration["model"] == name].sort_values("group")
        ax.plot(table["mean_predicted"] * 100, table["observed"] * 100, color=colour, marker="o",
                label=model_label(name))
    ax.set_xlim(0, top * 100)
    ax.set_ylim(0, top * 100)
    ax.set_xlabel("predicted chance of buying in the holdout, % (mean of a tenth of customers)")
    ax.set_ylabel("% of them who bought")
    ax.set_title("Reliability: who buys again, predicted vs actual")
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return save_figure(fig, out)


def write_backtest_charts(result: BacktestResult, folder: Path) -> list[Path]:
    """Every backtest chart of ``result`` in ``folder`` (created if missing).

    Files: ``backtest_by_frequency.png``, ``backtest_tracking.png``,
    ``backtest_deciles.png``, ``backtest_gain.png`` and ``backtest_reliability.png``.
    """
    folder = Path(folder)
    return [
        holdout_by_frequency_chart(result.by_frequency_frame(), folder / "backtest_by_frequency.png"),
        tracking_chart(result.tracking_frame(), folder / "backtest_tracking.png",
                       per_period=result.tracking_frame(cumulative=False)),
        decile_chart(result.deciles_frame(), folder / "backtest_deciles.png"),
        gain_chart(result.gain_frame(), folder / "backtest_gain.png"),
        reliability_chart(result.calibration_frame(), folder / "backtest_reliability.png"),
    ]
