"""The audience filter language, consent exclusion and resolution on hand data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from patron.activation.audiences import audience_counts, audience_members, condition, get_audience, list_audiences
from patron.config import AudienceDefinition, Settings, parse_settings
from patron.engine import Warehouse
from patron.errors import ConfigError
from tests.activation.test_segments import duck  # noqa: F401  (fixture)


def with_audience(settings: Settings, *where: tuple, **kw: object) -> Settings:
    return replace(settings, audiences=(*settings.audiences, AudienceDefinition("t", "", tuple(where), **kw)))


def members(wh: Warehouse, settings: Settings, name: str = "t", **kw: object) -> list[str]:
    return sorted(wh.to_pandas(audience_members(wh, settings, name, **kw)).customer_key)


def test_structured_filter_selects_and_excludes_no_consent(duck: Warehouse) -> None:  # noqa: F811
    s = with_audience(duck.settings, ("value_tier", "in", ["top_1", "top_1_5"]), ("clv", ">=", 195))
    # K000..K004 have clv 199..195; K002..K004 have no consenting record; K001 consents on its second record
    assert members(duck, s) == ["K000", "K001"]
    assert audience_counts(duck, s, "t").__dict__ == {"matched": 5, "members": 2, "excluded_no_consent": 3}


def test_market_and_horizon(duck: Warehouse) -> None:  # noqa: F811
    s = with_audience(duck.settings, ("clv", ">", 570), horizon_months=36)
    # clv_36m = 3 (199 - i) > 570 for i < 9; K002..K004 lack consent; clv_12m never exceeds 199
    assert members(duck, s) == ["K000", "K001", "K005", "K006", "K007", "K008"]
    assert members(duck, s, market="de") == ["K001", "K005", "K007"]  # odd keys buy most in DE
    assert members(duck, s, horizon=12) == []


def test_one_row_per_customer(duck: Warehouse) -> None:  # noqa: F811
    frame = duck.to_pandas(audience_members(duck, with_audience(duck.settings), "t"))
    assert frame.customer_key.is_unique and len(frame) == 197  # 200 less the three without consent


@pytest.mark.parametrize(("where", "token"), [
    (("no_such_column", "=", 1), "no_such_column"),
    (("x; drop table scores", "=", 1), "x; drop table scores"),
    (("clv", "like", "1"), "like"),
    (("clv", "==", 1), "=="),
    (("clv", ">=", "100; drop table scores"), "is not a number"),
    (("value_tier", "=", 3), "quote"),
    (("value_tier", "in", []), "non-empty"),
    (("clv", ">="), "needs a value"),
    (("clv",), "must be [column, operator, value]"),
])
def test_bad_conditions_are_rejected_naming_the_token(duck: Warehouse, where: tuple, token: str) -> None:  # noqa: F811
    s = with_audience(duck.settings, where)
    with pytest.raises(ConfigError, match="audience 't'") as info:
        audience_members(duck, s, "t")
    assert token in str(info.value)


def test_injection_in_a_value_is_only_text(duck: Warehouse) -> None:  # noqa: F811
    s = with_audience(duck.settings, ("value_tier", "=", "top_1'; drop table scores; --"))
    assert members(duck, s) == []
    assert duck.has_table("scores") and duck.count(duck.table("scores")) == 200


def test_null_operators(duck: Warehouse) -> None:  # noqa: F811
    base = duck.table("segments")
    expr = base.filter(condition(base, "t", ["clv", "is not null"]))
    assert duck.count(expr) == 200


def test_shipped_playbooks_and_toml_audiences() -> None:
    names = [a.name for a in list_audiences(Settings())]
    assert names == ["winback_high_value", "discount_suppression", "retention_offer", "vip_service",
                     "value_lookalike_seed"]
    data = {"audiences": [{"name": "de_vip", "where": [["value_tier", "in", ["top_1"]], ["market", "=", "DE"]],
                           "action": "call"},
                          {"name": "discount_suppression", "where": [["value_tier", "=", "top_25_50"]]}]}
    s = parse_settings(data, Path("."))
    assert get_audience(s, "de_vip").where == (("value_tier", "in", ("top_1",)), ("market", "=", "DE"))
    assert get_audience(s, "discount_suppression").where == (("value_tier", "=", "top_25_50"),)
    assert len(s.audiences) == 6
    with pytest.raises(ConfigError, match="defined twice"):
        parse_settings({"audiences": [{"name": "a"}, {"name": "a"}]}, Path("."))
    with pytest.raises(ConfigError, match="no audience 'nope'"):
        get_audience(s, "nope")


def test_top_share_ranks_within_the_other_conditions(duck: Warehouse) -> None:  # noqa: F811
    # clv falls with i (K000 highest); the share is cut as tiers are: rank r of n kept when r <= share × n
    everyone = with_audience(duck.settings, ("clv", "top share", 0.1))
    assert audience_counts(duck, everyone, "t").matched == 20
    assert members(duck, everyone) == [f"K{i:03d}" for i in range(20) if i not in (2, 3, 4)]
    # ranked among the bottom tier only (K100..K199), wherever the condition is written
    bottom = with_audience(duck.settings, ("clv", "top share", 0.1), ("value_tier", "=", "bottom_50"))
    assert members(duck, bottom) == [f"K{i}" for i in range(100, 110)]
    lowest = with_audience(duck.settings, ("value_tier", "=", "bottom_50"), ("clv", "bottom share", 0.05))
    assert members(duck, lowest) == ["K195", "K196", "K197", "K198", "K199"]
    # and among the market's customers: DE holds the odd keys, 100 of them
    german = with_audience(duck.settings, ("clv", "top share", 0.1), market="DE")
    assert members(duck, german) == [f"K{i:03d}" for i in range(1, 20, 2) if i != 3]


def test_share_conditions_apply_in_order(duck: Warehouse) -> None:  # noqa: F811
    # the top half by clv (K000..K099), then the top 20% of those by historic value (rising with i): K080..K099
    s = with_audience(duck.settings, ("clv", "top share", 0.5), ("historic_gp2", "top share", 0.2))
    assert members(duck, s) == [f"K0{i}" for i in range(80, 100)]


@pytest.mark.parametrize(("where", "token"), [
    (("clv", "top share", 0), "needs a share"),
    (("clv", "top share", 1.5), "needs a share"),
    (("clv", "top share", "0.2"), "needs a share"),
    (("clv", "bottom share", True), "needs a share"),
    (("value_tier", "top share", 0.2), "needs a numeric column"),
    (("clv", "top share"), "needs a value"),
])
def test_bad_share_conditions(duck: Warehouse, where: tuple, token: str) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="audience 't'") as info:
        audience_members(duck, with_audience(duck.settings, where), "t")
    assert token in str(info.value)


def test_consent_is_the_latest_word(duck: Warehouse) -> None:  # noqa: F811
    customers = duck.to_pandas(duck.table("customers"))
    # K005 consented in 2024 and opted out on a newer record; K002 (never consented) says yes on a newer one
    late = pd.DataFrame({"source": "crm", "customer_id": ["crm:K005", "crm:K002"], "email": None, "phone": None,
                         "country": "DK", "postcode": None, "marketing_consent": [False, True],
                         "signup_at": pd.to_datetime(["2025-03-01", "2025-03-01"], utc=True)})
    ids = duck.to_pandas(duck.table("identity_map"))
    ids = pd.concat([ids, pd.DataFrame({"source": "crm", "customer_id": ["crm:K005", "crm:K002"],
                                        "customer_key": ["K005", "K002"]})], ignore_index=True)
    duck.write("customers", pd.concat([customers, late], ignore_index=True))
    duck.write("identity_map", ids)
    s = with_audience(duck.settings, ("clv", ">=", 194))
    assert members(duck, s) == ["K000", "K001", "K002"]  # K005 left, K002 joined; K003, K004 still without
    assert audience_counts(duck, s, "t").excluded_no_consent == 3
    # two statements of the same time that disagree: a no wins
    tie = late.assign(customer_id="crm:K005", marketing_consent=True, signup_at=pd.Timestamp("2025-03-01", tz="UTC"))
    tie = tie.iloc[:1].assign(customer_id="crm2:K005")
    duck.write("customers", pd.concat([customers, late, tie], ignore_index=True))
    duck.write("identity_map", pd.concat([ids, pd.DataFrame({"source": ["crm"], "customer_id": ["crm2:K005"],
                                                             "customer_key": ["K005"]})], ignore_index=True))
    assert "K005" not in members(duck, s)
