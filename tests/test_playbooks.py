"""Playbook rules and the allowable acquisition cost on hand data."""

from __future__ import annotations

from dataclasses import replace

import pytest

from patron.audiences import audience_members
from patron.config import AudienceDefinition, Settings
from patron.engine import Warehouse
from patron.errors import ConfigError
from patron.playbooks import allowable_acquisition_cost
from tests.test_segments import duck  # noqa: F401  (fixture)


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
    # upper half (K000..K099) with churn risk 0.8 (odd i), less K003 (no consent)
    assert len(frame) == 49 and "K003" not in frame.index
    assert frame.loc["K001", "retention_offer_cap"] == pytest.approx(0.2 * 198)
    assert frame.loc["K001", "service_priority"] == 1 and frame.loc["K011", "service_priority"] == 2
    assert frame.loc["K031", "service_priority"] == 2 and frame.loc["K051", "service_priority"] == 3
    settings = replace(duck.settings, audiences=(*duck.settings.audiences, AudienceDefinition("a")))
    everyone = duck.to_pandas(audience_members(duck, settings, "a")).set_index("customer_key")
    assert everyone.loc["K199", "retention_offer_cap"] == 0.0  # CLV -5 floors at 0
    assert everyone.loc["K199", "service_priority"] == 4
    assert everyone.loc["K101", "next_best_action"] == "no_discount"
    assert everyone.loc["K001", "next_best_action"] == "retention_offer"  # active, churn risk 0.8
    assert everyone.loc["K000", "next_best_action"] == "win_back"  # lapsed, top tier


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
