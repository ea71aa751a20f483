"""Segments on hand-built scores: tiers by rank, RFM grid cells, strategy grid, settings."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Iterator
from pathlib import Path

import ibis
import pandas as pd
import pytest

from patron import pipeline
from patron.activation.audiences import audience_members
from patron.activation.segments import quintile_score, rfm_segment, scores_as_of, segments_expression, write_segments
from patron.config import DEFAULT_TOML, Settings, parse_settings
from patron.engine import Warehouse, connect
from patron.errors import ConfigError, PatronError

N = 200
HORIZONS = (3, 12, 36)


def hand_tables(n: int = N) -> dict[str, pd.DataFrame]:
    """scores, rfm, car, identity_map and customers of ``n`` customers ``K000`` (highest CLV) .. ``K199``.

    ``clv_12m = n - 1 - i`` except the last customer, whose CLV is -5; historic value
    rises with ``i``; every customer has one record with consent except: ``K001`` has a
    second record (the only one consenting), ``K002``..``K004`` have none consenting.
    """
    keys = [f"K{i:03d}" for i in range(n)]
    clv = [float(n - 1 - i) for i in range(n)]
    clv[-1] = -5.0
    scores = pd.DataFrame({"customer_key": keys, "p_alive": 0.5,
                           "churn_risk": [0.8 if i % 2 else 0.1 for i in range(n)],
                           "historic_gp2": [float(i) for i in range(n)],
                           "historic_revenue": [2.0 * i for i in range(n)]})
    for h in HORIZONS:
        scores[f"expected_orders_{h}m"] = h / 12
        scores[f"expected_value_{h}m"] = [c * h / 12 for c in clv]
        scores[f"clv_{h}m"] = [c * h / 12 for c in clv]
        scores[f"clv_{h}m_lower"] = scores[f"clv_{h}m"] - 1
        scores[f"clv_{h}m_upper"] = scores[f"clv_{h}m"] + 1
    rfm = pd.DataFrame({"customer_key": keys, "frequency": [i % 4 for i in range(n)],
                        "recency": [10.0] * n, "T": [10.0 + (i % 10) for i in range(n)],
                        "monetary_value": [float(i % 7) for i in range(n)]})
    stages = ["lapsed", "active", "lapsing", "new"]
    car = pd.DataFrame({"customer_key": keys, "lifecycle_stage": [stages[i % 4] for i in range(n)],
                        "days_since_last_interaction": [[30, 200, 400, None][i % 4] for i in range(n)],
                        "preferred_country": ["DE" if i % 2 else "DK" for i in range(n)], "home_country": "DK",
                        "first_order_channel": ["online" if i < n // 2 else "store" for i in range(n)]})
    car["days_since_last_interaction"] = car["days_since_last_interaction"].astype("Int64")
    records = [(f"web:{k}", k, True) for k in keys]
    records[1] = ("web:K001", "K001", False)
    records += [("crm:K001", "K001", True)]
    for i in (2, 3, 4):
        records[i] = (records[i][0], records[i][1], False)
    ids = pd.DataFrame({"source": [r[0].split(":")[0] for r in records], "customer_id": [r[0] for r in records],
                        "customer_key": [r[1] for r in records]})
    customers = pd.DataFrame({
        "source": ids.source, "customer_id": ids.customer_id,
        "email": [f" {r[1]}@Example.com " for r in records], "phone": "+45 12 34 56 78",
        "country": "DK", "postcode": "1000", "marketing_consent": [r[2] for r in records],
        "signup_at": pd.to_datetime(["2024-01-01"] * n + ["2025-01-01"], utc=True)})
    customers.loc[n, "email"] = "k001.new@example.com"
    return {"scores": scores, "rfm": rfm, "car": car, "identity_map": ids, "customers": customers}


def load_hand(warehouse: Warehouse, n: int = N, only: tuple[str, ...] | None = None) -> None:
    for name, frame in hand_tables(n).items():
        if only is None or name in only:
            warehouse.write(name, frame)


@pytest.fixture
def duck(tmp_path: Path) -> Iterator[Warehouse]:
    """A DuckDB warehouse holding the hand tables and their segments."""
    wh = connect(Settings(project_dir=tmp_path))
    load_hand(wh)
    write_segments(wh)
    yield wh
    wh.close()


def test_tiers_by_rank_on_both_engines(warehouse: Warehouse) -> None:
    # memtables, not written tables: the expression runs on each engine; write_segments is the duck fixture's
    tables = {name: ibis.memtable(frame) for name, frame in hand_tables().items()}
    expr = segments_expression(tables["scores"], tables["rfm"], tables["car"], warehouse.settings)
    segments = warehouse.to_pandas(expr)
    counts = segments.value_tier.value_counts().to_dict()
    assert counts == {"top_1": 2, "top_1_5": 8, "top_5_10": 10, "top_10_25": 30, "top_25_50": 50, "bottom_50": 100}
    by_key = segments.set_index("customer_key")
    assert list(by_key.loc[["K000", "K001", "K002", "K009", "K010", "K199"], "value_tier"]) == [
        "top_1", "top_1", "top_1_5", "top_1_5", "top_5_10", "bottom_50"]
    assert by_key.index.is_unique and len(by_key) == N
    assert set(by_key.horizon_months) == {12}


def test_strategy_grid_and_lifecycle(duck: Warehouse) -> None:
    seg = duck.to_pandas(duck.table("segments")).set_index("customer_key")
    # potential value ranks by CLV (K000 highest), current value by historic GP2 (K199 highest)
    assert seg.potential_value.value_counts().to_dict() == {"high": 40, "medium": 60, "low": 100}
    assert seg.loc["K000", "potential_value"] == "high" and seg.loc["K000", "current_value"] == "low"
    assert seg.loc["K160", "current_value"] == "high" and seg.loc["K159", "current_value"] == "medium"
    assert list(seg.loc[["K000", "K001", "K002", "K003"], "engagement"]) == ["high", "medium", "low", "low"]
    assert seg.loc["K000", "strategy_cell"] == "low_high_high"
    assert list(seg.loc[["K000", "K001"], "lifecycle_stage"]) == ["lapsed", "active"]


def test_rfm_grid_cells() -> None:
    cells = {(5, 5): "champions", (1, 1): "hibernating", (1, 5): "cannot_lose_them", (2, 3): "at_risk",
             (3, 3): "need_attention", (4, 1): "promising", (5, 1): "new_customers", (4, 2): "potential_loyalists",
             (3, 4): "loyal", (3, 1): "about_to_sleep", (4, 5): "loyal", (2, 2): "hibernating"}
    grid = [(r, f) for r in range(1, 6) for f in range(1, 6)]
    t = ibis.memtable(pd.DataFrame(grid, columns=["r", "f"]))
    out = ibis.duckdb.connect().to_pandas(t.mutate(seg=rfm_segment(t.r, t.f, Settings().segments)))
    got = {(int(r), int(f)): s for r, f, s in out.itertuples(index=False)}
    assert {k: got[k] for k in cells} == cells
    assert "other" not in got.values()  # the default grid covers all 25 cells


def test_quintile_scores_share_ties() -> None:
    t = ibis.memtable(pd.DataFrame({"v": [*list(range(10)), 0, 0]}))
    out = ibis.duckdb.connect().to_pandas(t.mutate(s=quintile_score(t.v)).order_by("v"))
    # percent rank (rank - 1) / 11: the three zeros 0 → 1; v = 1 → 3/11 → floor(1.36) + 1 = 2; ...; v = 9 → 1 → capped 5
    assert out.s.tolist() == [1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5]


def test_segments_without_car(tmp_path: Path) -> None:
    tables = hand_tables(20)
    con = ibis.duckdb.connect()
    expr = segments_expression(ibis.memtable(tables["scores"]), ibis.memtable(tables["rfm"]), None, Settings())
    out = con.to_pandas(expr)
    assert set(out.lifecycle_stage) == {"unknown"} and set(out.engagement) == {"low"}


def test_segment_settings_from_toml() -> None:
    data = tomllib.loads(DEFAULT_TOML)
    assert parse_settings(data, Path(".")).segments.horizon_months == 12
    data["segments"] = {"horizon_months": 36, "tier_names": ["a", "b"], "tier_shares": [0.2, 1.0],
                        "service_priority": [1, 2]}
    seg = parse_settings(data, Path(".")).segments
    assert seg.tier_names == ("a", "b") and seg.tier_shares == (0.2, 1.0)
    for bad in ({"horizon_months": 6}, {"tier_shares": [0.5, 0.4, 1, 1, 1, 1]}, {"grid_shares": [0.6, 0.5]},
                {"rfm_grid": [["x", 0, 5, 1, 5]]}, {"colour": 1}):
        with pytest.raises(ConfigError):
            parse_settings({"segments": bad}, Path("."))


# -- one date for scores, record and segments ---------------------------------------------------------
END = dt.date(2025, 12, 30)  # the observation end of the dated hand tables: their scores are as of 2025-12-31


def date_the_tables(wh: Warehouse, stages_by_date: dict[dt.date, str]) -> None:
    """Give the hand ``rfm`` first purchases whose age ``T`` (weeks) ends on END, and ``car`` one record per date
    with every customer in the given lifecycle stage."""
    tables = hand_tables()
    rfm = tables["rfm"]
    rfm["first_purchase_at"] = [pd.Timestamp(END, tz="UTC") - pd.Timedelta(days=7 * t) + pd.Timedelta(hours=9)
                                for t in rfm["T"]]
    wh.write("rfm", rfm)
    frames = [tables["car"].assign(as_of_date=day, lifecycle_stage=stage) for day, stage in stages_by_date.items()]
    wh.write("car", pd.concat(frames, ignore_index=True))


def test_the_scores_date_comes_from_rfm_or_from_scores(duck: Warehouse) -> None:
    assert scores_as_of(duck) is None  # hand tables without first purchases: no date to tell
    date_the_tables(duck, {dt.date(2025, 12, 31): "active"})
    assert scores_as_of(duck) == dt.date(2025, 12, 31)
    scores = duck.to_pandas(duck.table("scores")).assign(observation_end=dt.date(2025, 6, 29))
    scores.loc[:3, "observation_end"] = dt.date(2026, 1, 5)  # a few rescored later by the service: most rows count
    duck.write("scores", scores)
    assert scores_as_of(duck) == dt.date(2025, 6, 30)


def test_segments_refuse_a_record_of_another_date(duck: Warehouse) -> None:
    date_the_tables(duck, {dt.date(2025, 7, 1): "lapsed"})
    message = ("the customer record (car) is as of 2025-07-01 but the scores are as of 2025-12-31; "
               "run `patron features --as-of 2025-12-31`")
    with pytest.raises(PatronError) as info:
        write_segments(duck)
    assert str(info.value) == message
    with pytest.raises(PatronError, match="as of 2025-07-01 but the scores are as of 2025-12-31"):
        audience_members(duck, duck.settings, "winback_high_value")


def test_segments_take_the_record_of_the_scores_date_not_the_latest(duck: Warehouse) -> None:
    date_the_tables(duck, {dt.date(2025, 7, 1): "lapsed", dt.date(2025, 12, 31): "active",
                           dt.date(2026, 3, 1): "lapsing"})
    write_segments(duck)
    seg = duck.to_pandas(duck.table("segments"))
    assert set(seg.lifecycle_stage) == {"active"}
    assert set(seg.as_of_date.map(lambda d: pd.Timestamp(d).date())) == {dt.date(2025, 12, 31)}
    members = duck.to_pandas(audience_members(duck, duck.settings, "winback_high_value"))
    assert members.empty  # nobody is lapsed on 2025-12-31, whatever the other records say


def test_audiences_refuse_segments_older_than_the_scores(duck: Warehouse) -> None:
    date_the_tables(duck, {dt.date(2025, 12, 31): "active"})
    with pytest.raises(PatronError, match="segments carry no date and the scores are as of 2025-12-31"):
        audience_members(duck, duck.settings, "vip_service")  # segments from before the tables were dated
    write_segments(duck)
    assert duck.count(audience_members(duck, duck.settings, "vip_service")) > 0
    rfm = duck.to_pandas(duck.table("rfm"))
    duck.write("rfm", rfm.assign(T=rfm["T"] + 1))  # summarised and scored a week later
    date_the_tables_car = duck.to_pandas(duck.table("car")).assign(as_of_date=dt.date(2026, 1, 7))
    duck.write("car", date_the_tables_car)
    with pytest.raises(PatronError, match="segments are as of 2025-12-31 but the scores are as of 2026-01-07"):
        audience_members(duck, duck.settings, "vip_service")


def test_segments_without_a_record_are_noted(tmp_path: Path) -> None:
    settings = Settings(project_dir=tmp_path)
    with connect(settings) as wh:
        load_hand(wh, only=("scores", "rfm", "identity_map", "customers"))
    reporter = pipeline.Reporter()
    counts = pipeline.segments(settings, reporter=reporter)
    assert counts["lifecycle_stage"].lifecycle_stage.tolist() == ["unknown"]
    assert any("no customer record (car)" in n for n in reporter.notes)
