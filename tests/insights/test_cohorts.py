"""Cohort and period tokens: each form keeps the customers pandas finds; bad tokens are named."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from patron.activation.audiences import audience_candidates
from patron.engine import Warehouse
from patron.insights.cohorts import CohortError, cohort_members, latest_as_of, parse_period, resolve_cohorts


def members(wh: Warehouse, *tokens: str) -> list[set[str]]:
    """The customer keys of each cohort, in the order given."""
    cohorts = resolve_cohorts(wh, list(tokens))
    frame = wh.to_pandas(cohort_members(wh, cohorts, latest_as_of(wh)))
    return [set(frame.loc[frame["cohort"] == i, "customer_key"]) for i in range(len(tokens))]


@pytest.mark.parametrize(("token", "start", "end"), [
    ("2025-01..2025-06", dt.date(2025, 1, 1), dt.date(2025, 7, 1)),
    ("2024-Q4", dt.date(2024, 10, 1), dt.date(2025, 1, 1)),
    ("2024", dt.date(2024, 1, 1), dt.date(2025, 1, 1)),
    ("2024-02-29", dt.date(2024, 2, 29), dt.date(2024, 3, 1)),
    ("2024-12..2025-02-10", dt.date(2024, 12, 1), dt.date(2025, 2, 11)),
])
def test_periods_read_as_days(token: str, start: dt.date, end: dt.date) -> None:
    period = parse_period(token)
    assert (period.start, period.end, period.label) == (start, end, token)


@pytest.mark.parametrize("token", ["2025-13", "2025-06..2025-01", "last year", "2023-02-29", "2025-Q5"])
def test_bad_periods_are_named(token: str) -> None:
    with pytest.raises(CohortError, match=f"bad period '{token}'"):
        parse_period(token)


def test_column_value_tokens_keep_the_customers_pandas_finds(wh: Warehouse, rows: pd.DataFrame) -> None:
    tier = str(rows["value_tier"].dropna().iloc[0])
    both = sorted(rows["value_tier"].dropna().unique())[:2]
    market = rows["preferred_country"].fillna(rows["home_country"])
    country = str(market.dropna().iloc[0])
    by_tier, by_two, by_stage, by_market = members(wh, f"value_tier:{tier}", f"value_tier:{','.join(both)}",
                                                   "lifecycle_stage:lapsed", f"market:{country}")
    assert by_tier == set(rows.loc[rows["value_tier"] == tier, "customer_key"])
    assert by_two == set(rows.loc[rows["value_tier"].isin(both), "customer_key"])
    assert by_stage == set(rows.loc[rows["lifecycle_stage"] == "lapsed", "customer_key"])
    assert by_market == set(rows.loc[market == country, "customer_key"])


def test_numbers_and_flags_are_typed_from_the_column(wh: Warehouse, rows: pd.DataFrame) -> None:
    (twice,), (loyal,) = members(wh, "frequency:1"), members(wh, "loyalty_member:true")
    assert twice == set(rows.loc[rows["frequency"] == 1, "customer_key"]) != set()
    assert loyal == set(rows.loc[rows["loyalty_member"].fillna(False).astype(bool), "customer_key"])


def test_acquisition_cohorts_are_by_first_order_month(wh: Warehouse, rows: pd.DataFrame) -> None:
    year = int(rows["first_order_year"].dropna().min()) + 1
    quarter, whole_year, months = members(wh, f"acquired:{year}-Q1", f"acquired:{year}",
                                          f"acquired:{year}-02..{year}-04")
    first = rows["first_order_year"] * 12 + rows["first_order_month"] - 1
    start = year * 12
    assert quarter == set(rows.loc[(first >= start) & (first < start + 3), "customer_key"]) != set()
    assert whole_year == set(rows.loc[rows["first_order_year"] == year, "customer_key"])
    assert months == set(rows.loc[(first >= start + 1) & (first < start + 4), "customer_key"])


def test_raw_conditions_use_the_audience_language(wh: Warehouse, rows: pd.DataFrame) -> None:
    one, several, scored = members(wh, '["orders_all", ">=", 3]',
                                   '[["orders_all", ">=", 2], ["lifecycle_stage", "!=", "lapsed"]]',
                                   '["clv", ">=", 50]')
    assert one == set(rows.loc[rows["orders_all"] >= 3, "customer_key"]) != set()
    assert several == set(rows.loc[(rows["orders_all"] >= 2) & (rows["lifecycle_stage"] != "lapsed"),
                                   "customer_key"])
    # clv is a column of the audience base (the horizon's CLV), not of the profile base
    assert scored == set(rows.loc[rows["clv_12m"] >= 50, "customer_key"])


def test_audience_names_keep_the_audiences_customers(wh: Warehouse) -> None:
    (winback,) = members(wh, "winback_high_value")
    expected = wh.to_pandas(audience_candidates(wh, wh.settings, "winback_high_value").select("customer_key"))
    assert winback == set(expected["customer_key"]) != set()


@pytest.mark.parametrize(("token", "message"), [
    ("nonsense", "unknown cohort 'nonsense'.*winback_high_value.*acquired:YYYY-MM"),
    ("tier:top_1", "unknown cohort 'tier:top_1': no column 'tier'"),
    ('["orders_all", "~", 3]', r"cohort '\[\"orders_all\", \"~\", 3\]': unknown operator '~'"),
    ('["orders_all", ">="', "is not a condition in the audience language"),
    ("frequency:many", "cohort 'frequency:many'.*numeric"),
    ("acquired:2024-02-03", "acquisition cohorts are by month"),
    ("acquired:soon", "bad period 'soon'"),
])
def test_bad_tokens_are_named_with_what_is_accepted(wh: Warehouse, token: str, message: str) -> None:
    with pytest.raises(CohortError, match=message):
        resolve_cohorts(wh, [token])


def test_the_number_of_cohorts_is_checked(wh: Warehouse) -> None:
    with pytest.raises(CohortError, match="1 to 4 cohorts, not 5"):
        resolve_cohorts(wh, [f"frequency:{i}" for i in range(5)])
    with pytest.raises(CohortError, match="'frequency:1' is given twice"):
        resolve_cohorts(wh, ["frequency:1", "frequency:1"])
