"""Playbook rules and the allowable acquisition cost on hand data."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pandas as pd
import pytest

from patron import pipeline
from patron.activation.audiences import audience_candidates, audience_members
from patron.activation.playbooks import allowable_acquisition_cost
from patron.activation.segments import scores_as_of
from patron.config import AudienceDefinition, Settings
from patron.engine import Warehouse
from patron.errors import ConfigError
from patron.transforms.features.lifecycle import ACTIVE_DAYS
from tests.activation.test_segments import duck  # noqa: F401  (fixture)


def test_winback_is_high_value_and_lapsed(duck: Warehouse) -> None:  # noqa: F811
    frame = duck.to_pandas(audience_members(duck, duck.settings, "winback_high_value"))
    # top 25% = K000..K049; lapsing/lapsed = i % 4 in (0, 2), i.e. even i; K002, K004 lack consent
    expected = [f"K{i:03d}" for i in range(0, 50, 2) if i not in (2, 4)]
    assert sorted(frame.customer_key) == expected
    assert set(frame.next_best_action) == {"win_back"}


def test_discount_suppression_is_bottom_tier(duck: Warehouse) -> None:  # noqa: F811
    frame = duck.to_pandas(audience_members(duck, duck.settings, "discount_suppression"))
    assert sorted(frame.customer_key) == [f"K{i:03d}" for i in range(100, 200)]


def test_retention_cap_and_service_priority(duck: Warehouse) -> None:  # noqa: F811
    frame = duck.to_pandas(audience_members(duck, duck.settings, "retention_offer")).set_index("customer_key")
    # upper half (K000..K099), neither lapsing nor lapsed (odd i, all churn risk 0.8): 50; the top 20% by churn
    # risk, ties by key, are K001..K019; K003 has no consent
    assert sorted(frame.index) == [f"K{i:03d}" for i in range(1, 20, 2) if i != 3]
    assert frame.loc["K001", "retention_offer_cap"] == pytest.approx(0.2 * 198)
    assert frame.loc["K001", "service_priority"] == 1 and frame.loc["K011", "service_priority"] == 2
    settings = replace(duck.settings, audiences=(*duck.settings.audiences, AudienceDefinition("a")))
    everyone = duck.to_pandas(audience_members(duck, settings, "a")).set_index("customer_key")
    assert everyone.loc["K031", "service_priority"] == 2 and everyone.loc["K051", "service_priority"] == 3
    assert everyone.loc["K199", "retention_offer_cap"] == 0.0  # CLV -5 floors at 0
    assert everyone.loc["K199", "service_priority"] == 4
    assert everyone.loc["K101", "next_best_action"] == "no_discount"
    assert everyone.loc["K001", "next_best_action"] == "retention_offer"  # active, churn risk 0.8
    assert everyone.loc["K021", "next_best_action"] == "nurture"  # as K001, but past the retention share
    assert everyone.loc["K000", "next_best_action"] == "win_back"  # lapsed, top tier
    retained = set(everyone.index[everyone.next_best_action == "retention_offer"])
    assert retained == set(frame.index)  # the action and the audience pick the same customers


def test_allowable_acquisition_cost(duck: Warehouse) -> None:  # noqa: F811
    table = duck.to_pandas(allowable_acquisition_cost(duck, segment="value_tier", horizon_months=12))
    rows = table.set_index(["channel", "segment"])
    # online = K000..K099: top_1 is K000, K001 with clv 199, 198 → mean 198.5 × 0.3
    assert rows.loc[("online", "top_1"), "customers"] == 2
    assert rows.loc[("online", "top_1"), "allowable_acquisition_cost"] == pytest.approx(0.3 * 198.5)
    # store = K100..K199, all bottom_50: clv 99..1 and -5 → mean (sum(1..99) - 5) / 100
    assert rows.loc[("store", "bottom_50"), "mean_clv"] == pytest.approx((99 * 100 / 2 - 5) / 100)
    assert len(table) == 6  # five online tiers + one store tier
    with pytest.raises(ConfigError, match="unknown segment"):
        allowable_acquisition_cost(duck, segment="nope")
    with pytest.raises(ConfigError):
        allowable_acquisition_cost(duck, Settings(), horizon_months=7)


# -- on a generated retailer ------------------------------------------------------------------------
_BUILT: dict[str, Settings] = {}


@pytest.fixture(scope="module")
def retailer(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A generated 1,500-customer retailer scored and segmented, with a second customer record dated 200 days
    after the scores' (built once per run; tests/activation/test_exports.py shares it)."""
    if not _BUILT:
        root = tmp_path_factory.mktemp("playbook_retailer")
        pipeline.generate(1500, root / "data", seed=7, fmt="parquet")
        settings = Settings(project_dir=root / "project", engine="duckdb")
        pipeline.ingest(settings, [root / "data"])
        pipeline.resolve(settings)
        summary = pipeline.summarise(settings)
        record = pipeline.features(settings)
        assert record.as_of == summary.observation_end + dt.timedelta(days=1)
        pipeline.features(settings, as_of=record.as_of + dt.timedelta(days=200))  # the latest, not the scores'
        pipeline.fit(settings)
        pipeline.score(settings)
        pipeline.segments(settings)
        _BUILT["settings"] = settings
    return _BUILT["settings"]


def test_playbooks_select_a_minority(retailer: Settings) -> None:
    sizes = pipeline.audiences(retailer).set_index("name").matched
    with pipeline.open_warehouse(retailer) as wh:
        seg = wh.to_pandas(wh.table("segments"))
    n = len(seg)
    upper = seg.value_tier != "bottom_50"
    still_active = upper & ~seg.lifecycle_stage.isin(["lapsing", "lapsed"])
    # with churn risk >= 0.5 the retention offer went to 97% of the upper half; now 20% of its active part
    assert sizes["retention_offer"] == int(0.2 * still_active.sum() + 1e-9)
    assert sizes["retention_offer"] < 0.25 * upper.sum()
    assert sizes["vip_service"] == int(0.05 * n + 1e-9)
    assert sizes["value_lookalike_seed"] == int(0.10 * n + 1e-9)
    assert 0 < sizes["winback_high_value"] < 0.5 * int(0.25 * n + 1e-9)  # lapsing or lapsed: a minority of the top
    assert sizes["discount_suppression"] == n - int(0.5 * n + 1e-9)


def test_segments_describe_the_scores_date_on_a_generated_retailer(retailer: Settings) -> None:
    with pipeline.open_warehouse(retailer) as wh:
        as_of = scores_as_of(wh)
        seg = wh.to_pandas(wh.table("segments"))
        rfm = wh.to_pandas(wh.table("rfm")).set_index("customer_key")
        winback = wh.to_pandas(audience_candidates(wh, retailer, "winback_high_value"))
    assert as_of == dt.date.fromisoformat(str(pd.Timestamp(rfm.last_purchase_at.max()).date())) + dt.timedelta(days=1)
    assert set(seg.as_of_date.map(lambda d: pd.Timestamp(d).date())) == {as_of}
    assert not seg.lifecycle_stage.isin(["unknown", "prospect"]).any()  # every scored customer has bought
    # a win-back goes to nobody who bought within ACTIVE_DAYS of the scores' date (the July record sent 404 of 744)
    last = rfm.loc[winback.customer_key, "last_purchase_at"].map(lambda t: pd.Timestamp(t).date())
    assert len(last) > 0 and ((as_of - last).map(lambda d: d.days) > ACTIVE_DAYS).all()
