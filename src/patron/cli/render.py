"""Rich tables and lines for the pipeline's results: formatting for display only, no computing.

Every figure shown comes from the result itself or from :mod:`patron.insights.kpis`; here it is
only laid out and formatted (thousands separators, percentages, colours).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from rich.table import Table
from rich.text import Text  # reasons and warnings hold brackets that are not markup

from patron import pipeline
from patron.insights.kpis import clv_by_horizon, top_decile_share

if TYPE_CHECKING:
    from patron.governance.privacy import ErasureResult
    from patron.scoring.model_store import FittedValueModels
    from patron.transforms.ingest import IngestResult
    from patron.transforms.quality import QualityReport

__all__ = [
    "backtest_table", "erasure_table", "features_line", "frame_table", "identity_table", "ingest_table",
    "keys_table", "models_table", "quality_table", "scores_table", "shown", "strategy_grid_table", "summary_table",
    "tables_line",
]


def shown(path: Path | str) -> Path:
    """``path`` relative to the working folder when it lies inside it (shorter, and the same form for every file)."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return Path(path)


def ingest_table(results: Sequence[IngestResult]) -> Table:
    """One row per ingested file; the excluded, erased and fixed-rejects columns only when any file has some."""
    table = Table(title="Ingest")
    erased = any(r.erased for r in results)  # rows of persons in erasure_log (see patron.governance.privacy)
    excluded = any(r.excluded for r in results)  # rows an exclude rule of a source matched
    resolved = any(r.resolved for r in results)  # earlier rejects of the file that load now
    columns = ("table", "file", "read", "loaded", "unchanged", "rejected") + (("excluded",) if excluded else ()) \
        + (("erased",) if erased else ()) + (("rejects fixed",) if resolved else ())
    for column in columns:
        table.add_column(column, justify="right" if column not in ("table", "file") else "left")
    for r in results:
        note = " (already ingested)" if r.skipped_file else ""
        rejected = f"[red]{r.rejected:,}[/]" if r.rejected else "0"
        table.add_row(r.table, Path(r.file).name + note, f"{r.rows_read:,}", f"{r.loaded:,}",
                      f"{r.unchanged:,}", rejected, *((f"{r.excluded:,}",) if excluded else ()),
                      *((f"{r.erased:,}",) if erased else ()), *((f"{r.resolved:,}",) if resolved else ()))
    return table


def quality_table(report: QualityReport) -> Table:
    """One row per data-quality check with its verdict: pass, FAIL (blocking) or warn."""
    table = Table(title="Data quality")
    for column in ("check", "table", "severity", "metric", "threshold", "result"):
        table.add_column(column)
    for r in report.results:
        verdict = "[green]pass[/]" if r.passed else ("[red]FAIL[/]" if r.severity == "blocking"
                                                     else "[yellow]warn[/]")
        table.add_row(r.name, r.table, r.severity, f"{r.metric:.4g}", f"{r.threshold:.4g}", verdict)
    return table


def identity_table(result: pipeline.ResolveResult) -> Table:
    """Customer records and orders linked by each identity-resolution method."""
    table = Table(title=f"Identity resolution: {result.customers:,} customers")
    table.add_column("linked by")
    table.add_column("customer records", justify="right")
    table.add_column("orders", justify="right")
    methods = sorted(set(result.records_by_method) | set(result.orders_by_method))
    for method in methods:
        table.add_row(method, f"{result.records_by_method.get(method, 0):,}",
                      f"{result.orders_by_method.get(method, 0):,}")
    return table


def summary_table(result: pipeline.SummaryResult, currency: str) -> Table:
    """The customer summary (RFM) measures, money in ``currency``."""
    unit = "week" if result.unit_days == 7 else "day"
    table = Table(title=f"Customer summary to {result.observation_end} (time unit: {unit})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    stats = result.stats
    rows = [
        ("orders", f"{result.orders:,}"),
        ("customers", f"{result.customers:,}"),
        ("repeat buyers", f"{stats.get('repeat_share', 0):.1%}"),
        ("mean repeat purchases", f"{stats.get('mean_frequency', 0):.2f}"),
        (f"mean age T ({unit}s)", f"{stats.get('mean_T', 0):.1f}"),
        (f"revenue ({currency})", f"{stats.get('total_revenue', 0):,.0f}"),
        (f"gross profit 2 ({currency})", f"{stats.get('total_gp2', 0):,.0f}"),
        ("distinct (frequency, recency, T) rows", f"{result.histogram_rows:,}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def features_line(result: pipeline.FeaturesResult) -> str:
    """One line on the customer analytic record just built."""
    return (f"Customer analytic record at {result.as_of}: {result.customers:,} customers × {result.features} "
            f"features (table car, {result.as_of_dates} as-of date(s); see docs/data-dictionary.md).")


def backtest_table(run: pipeline.BacktestRun, currency: str = "") -> Table:
    """One row per model; a model that did not fit is a row with its reason, fit warnings (*) go below.

    Predicted and actual are holdout purchases; the caption adds the profit (GP2) those customers
    actually brought in the holdout, which the backtest does not predict (it judges purchase models).
    """
    result = run.result
    title = (f"Backtest {run.run_id}: calibration to {result.calibration_end}, holdout to {result.holdout_end}, "
             f"{result.n_customers:,} customers")
    table = Table(title=title, caption_justify="left")
    noted = bool(result.failures or result.warnings)
    columns = ("model", "predicted", "actual", "error", "MAE", "RMSE", "Gini", "Spearman", "Brier", "P(alive)")
    for column in (*columns, "note")[:len(columns) + noted]:
        table.add_column(column, justify="left" if column in ("model", "note") else "right",
                         no_wrap=column == "model")
    champion = result.champion
    for name, frame in result.summary_frame().iterrows():
        label = f"{name} (champion)" if name == champion else str(name)
        label = label + " *" if name in result.warnings else label
        note = ["fit warning, see *"] if name in result.warnings else [""]
        table.add_row(f"[bold]{label}[/]" if name == champion else label, f"{frame.predicted_total:,.0f}",
                      f"{frame.actual_total:,.0f}", f"{frame.total_error_relative:+.1%}", f"{frame.mae:.3f}",
                      f"{frame.rmse:.3f}", f"{frame.gini:.3f}", f"{frame.spearman:.3f}", f"{frame.brier:.4f}",
                      f"{frame.mean_p_alive:.1%}", *note[:noted])
    for name, reason in result.failures.items():
        table.add_row(name, *["-"] * (len(columns) - 1), Text(f"did not fit: {reason}"))
    table.caption = Text("predicted, actual: purchases in the holdout; champion: calibrated on who buys again (Brier), "
                         "then lowest RMSE, then BIC, then total error (docs/model-choice.md); P(alive): mean over "
                         "customers at the calibration end")
    if run.holdout_value is not None:
        label = "GP2" if run.value == "gp2" else run.value
        unit = f" {currency}" if currency else ""
        table.caption.append(f"\nactual {label} of these customers in the holdout: {run.holdout_value:,.0f}{unit} "
                             f"({label} per holdout purchase: "
                             f"{run.holdout_value / result.actual_total if result.actual_total else 0:,.2f}{unit}); "
                             f"the backtest predicts purchases, not {label}")
    if result.warnings:
        table.caption.append("\n" + "\n".join(f"* {name}: {line}" for name, lines in result.warnings.items()
                                               for line in lines))
    return table


def models_table(models: FittedValueModels) -> Table:
    """The fitted parameters (at bound / not identified ones marked), fit warnings (*) below, the margin in words."""
    from patron.scoring.model_store import purchase_model_key

    purchase = purchase_model_key(models.purchase)
    reason = models.settings.get("purchase_model_reason")
    title = f"Models {models.model_id}: purchase model {purchase}" + (f" ({reason})" if reason else "")
    table = Table(title=title, caption_justify="left")
    for column in ("model", "parameters", "log-likelihood"):
        table.add_column(column)
    warned: list[str] = []
    for component in (models.purchase, models.spend):
        notes = getattr(component, "parameter_notes_", {})
        params = ", ".join(f"{k}={v:.4g}" + (f" ({notes[k]})" if notes.get(k) else "")
                           for k, v in component.params_.items())
        lines = list(getattr(component, "fit_warnings_", []))
        warned += lines
        table.add_row(type(component).__name__ + (" *" if lines else ""), params, f"{component.log_likelihood_:,.1f}")
    table.add_row("KeptMargin", models.margin.describe(), "")
    if warned:
        table.caption = Text("\n".join(f"* {line}" for line in warned))
    return table


def scores_table(run: pipeline.ScoreRun, currency: str) -> Table:
    """The scoring run's headline figures: P(alive), historic GP2, CLV per horizon, the top decile's share."""
    result = run.result
    table = Table(title=f"Scores: {result.customers:,} customers to {result.observation_end} "
                        f"({result.distinct_rows:,} distinct histories)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("mean probability alive", f"{run.totals['mean_p_alive']:.1%}")
    table.add_row(f"historic GP2 ({currency})", f"{run.totals['historic_gp2']:,.0f}")
    for horizon, value in clv_by_horizon(run.totals).items():
        table.add_row(f"CLV {horizon} ({currency})", f"{value:,.0f}")
    share = top_decile_share(run.deciles)
    if share is not None:
        table.add_row("share of long-horizon CLV in the top 10%", f"{share:.1%}")
    return table


def frame_table(frame: pd.DataFrame, *, title: str) -> Table:
    """Any small data frame as a table: numbers right-aligned with thousands separators."""
    table = Table(title=title)
    for column in frame.columns:
        table.add_column(str(column), justify="right" if frame[column].dtype.kind in "iuf" else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*[f"{v:,}" if isinstance(v, int) else f"{v:,.2f}" if isinstance(v, float) else str(v)
                        for v in row])
    return table


def strategy_grid_table(grid: pd.DataFrame) -> Table:
    """The strategy grid: a row per current × potential value, a column per engagement level, customers in each.

    ``grid`` is :func:`patron.pipeline.activation.strategy_grid`'s frame, its rows already in
    order (high before low); the cells read ``current_potential_engagement`` as ``strategy_cell`` does.
    """
    levels = list(dict.fromkeys(grid["engagement"]))
    table = Table(title="Strategy grid: customers by current value × potential value × engagement",
                  caption="current value: historic profit; potential value: CLV; engagement: days since the "
                          "last interaction", caption_justify="left")
    table.add_column("current value")
    table.add_column("potential value")
    for level in levels:
        table.add_column(f"engagement {level}", justify="right")
    table.add_column("total", justify="right")
    for (current, potential), rows in grid.groupby(["current_value", "potential_value"], sort=False):
        counts = rows.set_index("engagement")["customers"]
        table.add_row(str(current), str(potential), *[f"{int(counts.get(level, 0)):,}" for level in levels],
                      f"{int(counts.sum()):,}")
    return table


def tables_line(written: Sequence[tuple[str, int | None]]) -> str:
    """One line naming the warehouse tables a command wrote, each with its rows when known."""
    names = [f"{name} ({rows:,} rows)" if rows is not None else name for name, rows in written]
    return f"Wrote warehouse table{'s' if len(names) > 1 else ''} {', '.join(names)}."


def keys_table(keys: Sequence[Mapping[str, object]]) -> Table:
    """Every API key's id, role, creation time and whether it is revoked (never the key)."""
    table = Table(title=f"{len(keys):,} API key(s)")
    for column in ("key id", "role", "created", "revoked"):
        table.add_column(column)
    for k in keys:
        table.add_row(str(k["key_id"]), str(k["role"]), f"{k['created_at']:%Y-%m-%d %H:%M} UTC",
                      "[red]yes[/]" if k["revoked"] else "no")
    return table


def erasure_table(result: ErasureResult) -> Table:
    """Rows deleted and anonymised (or the table rebuilt) per warehouse table by an erasure."""
    table = Table(title=f"Erased {len(result.customer_keys):,} customer key(s), {result.records:,} record(s)")
    for column in ("table", "rows deleted", "rows anonymised"):
        table.add_column(column, justify="left" if column == "table" else "right")
    for name, counts in result.tables.items():
        table.add_row(name, f"{counts.deleted:,}", "rebuilt" if counts.rebuilt else f"{counts.anonymised:,}")
    return table


def run_table(result: pipeline.RunResult) -> Table:
    """The steps of a ``patron run``: done or skipped, seconds, and what each did."""
    table = Table(title=f"patron run: {len(result.steps)} step(s) in {result.seconds:,.0f} s")
    for column, justify in (("step", "left"), ("status", "left"), ("seconds", "right"), ("what", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for step in result.steps:
        table.add_row(step.step, step.status, f"{step.seconds:,.1f}", Text(step.detail))
    return table
