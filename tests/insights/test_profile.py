"""The profiler on a small scored project: sizes, shares, means and tests agree with pandas and scipy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from patron.engine import Warehouse, parquet_snapshot
from patron.insights.cohorts import CohortError
from patron.insights.profile import COLUMNS, Profile, profile
from patron.serving.publish import published_tables


@pytest.fixture(scope="module")
def tiers(rows: pd.DataFrame) -> tuple[str, str]:
    """The two most common value tiers: cohorts large enough to test."""
    common = rows["value_tier"].value_counts()
    return str(common.index[0]), str(common.index[1])


@pytest.fixture(scope="module")
def result(wh: Warehouse, tiers: tuple[str, str]) -> Profile:
    return profile(wh, [f"value_tier:{tiers[0]}", f"value_tier:{tiers[1]}", "lifecycle_stage:lapsed"],
                   period="2025-01..2025-06", compare="2024")


def _row(result: Profile, feature: str, cohort: str, *, period: str | None = None,
         level: str | None = None) -> pd.Series:
    table = result.table
    chosen = table[(table["feature"] == feature) & (table["cohort"] == cohort)]
    chosen = chosen[chosen["level"].isna()] if level is None else chosen[chosen["level"] == level]
    if period is not None:
        chosen = chosen[chosen["period"] == period]
    assert len(chosen) == 1, chosen
    return chosen.iloc[0]


def test_sizes_are_the_customers_of_each_cohort(result: Profile, rows: pd.DataFrame, tiers: tuple[str, str]) -> None:
    sizes = result.sizes.set_index("cohort")["customers"]
    assert sizes[f"value_tier:{tiers[0]}"] == (rows["value_tier"] == tiers[0]).sum()
    assert sizes[f"value_tier:{tiers[1]}"] == (rows["value_tier"] == tiers[1]).sum()
    assert sizes["lifecycle_stage:lapsed"] == (rows["lifecycle_stage"] == "lapsed").sum() > 0
    assert list(result.table.columns) == list(COLUMNS)
    assert result.reference == f"value_tier:{tiers[0]}"


def test_a_mean_and_its_welch_t_are_scipys(result: Profile, rows: pd.DataFrame, tiers: tuple[str, str]) -> None:
    ref = rows.loc[rows["value_tier"] == tiers[0], "gp2_all"]
    other = rows.loc[rows["value_tier"] == tiers[1], "gp2_all"]
    row = _row(result, "gp2_all", f"value_tier:{tiers[1]}")
    expected = stats.ttest_ind(other, ref, equal_var=False)
    assert row["kind"] == "mean" and row["test"] == "welch_t" and row["group"] == "financial"
    assert row["value"] == pytest.approx(other.mean()) and row["n"] == len(other)
    assert row["diff"] == pytest.approx(other.mean() - ref.mean())
    assert row["statistic"] == pytest.approx(expected.statistic, rel=1e-9)
    assert row["p_value"] == pytest.approx(expected.pvalue, rel=1e-6)
    assert np.isnan(_row(result, "gp2_all", f"value_tier:{tiers[0]}")["statistic"])  # the reference is not tested


def test_a_share_and_its_z_are_scipys_chi_square(result: Profile, rows: pd.DataFrame,
                                                 tiers: tuple[str, str]) -> None:
    flags = [c for c in ("has_email", "loyalty_member", "contactable", "marketing_consent_latest") if c in rows]
    feature = next(c for c in flags if rows[c].notna().any() and rows[c].nunique() > 1)
    ref = rows.loc[rows["value_tier"] == tiers[0], feature].dropna().astype(bool)
    other = rows.loc[rows["lifecycle_stage"] == "lapsed", feature].dropna().astype(bool)
    row = _row(result, feature, "lifecycle_stage:lapsed")
    assert row["kind"] == "share" and row["test"] == "z"
    assert row["value"] == pytest.approx(other.mean()) and row["n"] == len(other)
    table = [[other.sum(), (~other).sum()], [ref.sum(), (~ref).sum()]]
    chi2 = stats.chi2_contingency(table, correction=False)
    assert row["statistic"] ** 2 == pytest.approx(chi2.statistic, rel=1e-9)
    assert np.sign(row["statistic"]) == np.sign(other.mean() - ref.mean())
    assert row["p_value"] == pytest.approx(chi2.pvalue, rel=1e-6)


def test_text_features_are_shares_of_their_levels(result: Profile, rows: pd.DataFrame) -> None:
    lapsed = rows[rows["lifecycle_stage"] == "lapsed"]
    expected = lapsed["rfm_segment"].value_counts(normalize=True)
    shares = result.table[(result.table["feature"] == "rfm_segment")
                          & (result.table["cohort"] == "lifecycle_stage:lapsed")].set_index("level")["value"]
    for level, share in shares.items():
        assert share == pytest.approx(expected.get(level, 0.0))
    assert set(result.group("segments")["feature"]) >= {"value_tier", "rfm_segment"}


def test_period_measures_come_from_the_orders_of_the_period(result: Profile, wh: Warehouse, rows: pd.DataFrame,
                                                            tiers: tuple[str, str]) -> None:
    orders = wh.to_pandas(wh.table("order_values").select("customer_key", "ordered_at", "revenue"))
    inside = orders[(orders["ordered_at"] >= pd.Timestamp("2025-01-01", tz="UTC"))
                    & (orders["ordered_at"] < pd.Timestamp("2025-07-01", tz="UTC"))]
    keys = rows.loc[rows["value_tier"] == tiers[0], "customer_key"]
    revenue = inside.groupby("customer_key")["revenue"].sum().reindex(keys, fill_value=0.0)
    cohort = f"value_tier:{tiers[0]}"
    assert _row(result, "buyer", cohort, period="2025-01..2025-06")["value"] == pytest.approx(
        keys.isin(inside["customer_key"]).mean())
    assert _row(result, "revenue", cohort, period="2025-01..2025-06")["value"] == pytest.approx(revenue.mean())
    assert set(result.table["period"]) == {f"as of {result.as_of}", "2025-01..2025-06", "2024"}
    channels = result.group("channels")
    for (_, _), shares in channels.groupby(["cohort", "period"]):
        assert shares["value"].sum() == pytest.approx(1.0)


def test_adjusted_p_values_are_benjamini_hochberg_per_comparison_monotone_and_marked(result: Profile) -> None:
    tested = result.table.dropna(subset=["p_value"]).sort_values("p_value")
    assert len(tested) > 100
    assert (tested["p_adjusted"] >= tested["p_value"] - 1e-15).all()
    families = list(tested.groupby(["cohort", "period"]))
    assert len(families) >= 2  # one per cohort against the reference and period
    for _, family in families:
        assert family["p_adjusted"].is_monotonic_increasing
        assert np.allclose(family["p_adjusted"], stats.false_discovery_control(family["p_value"], method="bh"))
    assert set(tested.loc[tested["p_adjusted"] < 0.001, "significance"]) <= {"***"}
    assert (tested.loc[tested["p_adjusted"] >= 0.05, "significance"] == "").all()
    means = result.table[(result.table["kind"] == "mean") & (result.table["n"] > 1)]
    assert means["sd"].notna().any() and result.table.loc[result.table["kind"] == "share", "sd"].isna().all()


def test_summary_lists_significant_differences_first(result: Profile) -> None:
    summary = result.summary(5)
    assert len(summary) == 5 and (summary["cohort"] != result.reference).all()
    assert (summary["significance"] != "").all()  # tiers differ in many features
    assert summary["effect"].abs().is_monotonic_decreasing
    wide = result.wide()
    assert set(result.cohorts) <= set(wide.columns) and f"diff {result.cohorts[1]}" in wide.columns


def test_periods_outside_the_data_and_bad_tokens_are_refused(wh: Warehouse, tiers: tuple[str, str],
                                                             result: Profile) -> None:
    cohorts = [f"value_tier:{tiers[0]}", f"value_tier:{tiers[1]}"]
    with pytest.raises(CohortError, match=r"1990-01\.\.1990-06"):
        profile(wh, cohorts, period="1990-01..1990-06")
    with pytest.raises(CohortError, match="2025-13"):
        profile(wh, cohorts, period="2025-13")
    with pytest.raises(CohortError, match="needs a period"):
        profile(wh, cohorts, compare="2024")
    with pytest.raises(CohortError, match=f"'value_tier:no_such_tier' has no customers.*holds .*{tiers[0]}"):
        profile(wh, [cohorts[0], "value_tier:no_such_tier"])
    with pytest.raises(CohortError, match="no group 'nothing'"):
        result.group("nothing")
    with pytest.raises(CohortError, match="unknown group 'nothing'"):
        profile(wh, cohorts, groups=["nothing"])


def test_a_serving_versions_tables_give_the_same_profile(wh: Warehouse, tmp_path: Path,
                                                         tiers: tuple[str, str]) -> None:
    files = {}
    for name, expr in published_tables(wh).items():
        if name in ("monthly", "preferences", "models", "seasonality"):
            continue  # tables the profiler does not read
        files[name] = tmp_path / f"{name}.parquet"
        wh.to_parquet_file(expr, files[name])
    tokens = [f"value_tier:{tiers[0]}", "winback_high_value"]
    groups = ["lifecycle", "demographics", "segments", "scores", "sales", "channels"]
    direct = profile(wh, tokens, period="2025-01..2025-06", groups=groups)
    with parquet_snapshot(wh.settings, files) as snapshot:
        published = profile(snapshot, tokens, period="2025-01..2025-06", groups=groups)
    assert set(direct.groups) == set(groups)
    pd.testing.assert_frame_equal(published.sizes, direct.sizes)
    pd.testing.assert_frame_equal(published.table, direct.table)
