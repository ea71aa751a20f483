"""Audiences: named filters over segments, scores and features, resolved in the engine.

An audience (``[[audiences]]`` in ``patron.toml``, :class:`patron.config.AudienceDefinition`)
is a list of conditions ``[column, operator, value]`` that must all hold, e.g.::

    where = [["value_tier", "in", ["top_1", "top_1_5"]], ["clv", ">=", 100], ["home_country", "=", "DE"]]

The conditions are *data*, never code: each column must be a column of the audience
base table (checked by name against its schema), each operator one of :data:`OPERATORS`,
each value a number, string or boolean (a list of them for ``in``); the condition is
built as an Ibis expression with the value as a literal, so no user text reaches SQL or
``eval``. A bad condition raises :class:`patron.errors.ConfigError` naming the audience
and the offending token.

The base table is ``segments`` ⋈ ``scores`` ⋈ ``car`` (one row per scored customer), plus
``clv``, ``clv_lower``, ``clv_upper``, ``expected_value`` and ``expected_orders`` of the
audience's horizon, ``market`` (``car.preferred_country``, else ``home_country``), the
playbook columns (``service_priority``, ``retention_offer_cap``, ``next_best_action``) and
``marketing_consent``.

Consent rule: a person (customer key) has marketing consent when **at least one** of the
customer records resolved to them has ``marketing_consent`` true; members without it are
excluded from every audience, and counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from patron.config import AudienceDefinition, Settings
from patron.errors import ConfigError
from patron.playbooks import next_best_action, retention_offer_cap, service_priority
from patron.transforms.features.registry import latest_record

if TYPE_CHECKING:
    from patron.engine import Warehouse

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "is not null")
_ORDERING = ("<", "<=", ">", ">=")
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class AudienceCounts:
    """How many customers an audience matched, and how many of them lack marketing consent."""

    matched: int
    members: int
    excluded_no_consent: int


def list_audiences(settings: Settings) -> list[AudienceDefinition]:
    """The defined audiences (shipped playbooks first, then ``[[audiences]]``)."""
    return list(settings.audiences)


def get_audience(settings: Settings, name: str) -> AudienceDefinition:
    """The audience called ``name``; a ConfigError listing the known names otherwise."""
    for audience in settings.audiences:
        if audience.name == name:
            return audience
    known = ", ".join(a.name for a in settings.audiences)
    raise ConfigError(f"no audience {name!r}; defined: {known}")


# -- the base table -------------------------------------------------------------------------------
def consent_by_key(identity_map: ir.Table, customers: ir.Table) -> ir.Table:
    """(customer_key, marketing_consent): true when any record of the person consented."""
    joined = identity_map.join(customers, ["source", "customer_id"])
    return joined.group_by("customer_key").aggregate(
        marketing_consent=joined.marketing_consent.fill_null(False).any())


def _add_columns(left: ir.Table, right: ir.Table) -> ir.Table:
    """``left`` left-joined to ``right`` on customer_key, keeping only columns new to ``left``."""
    extra = [c for c in right.columns if c not in left.columns]
    joined = left.left_join(right, left.customer_key == right.customer_key)
    return joined.select(left, *[joined[c] for c in extra])


def audience_base(warehouse: Warehouse, settings: Settings, *, horizon: int | None = None) -> ir.Table:
    """One row per scored customer with every column an audience may filter on."""
    h = horizon or settings.segments.horizon_months
    if h not in settings.model.horizons_months:
        raise ConfigError(f"horizon {h} is not one of [model] horizons_months {settings.model.horizons_months}")
    seg = settings.segments
    base = _add_columns(warehouse.table("segments").drop("clv"), warehouse.table("scores"))
    if warehouse.has_table("car"):
        base = _add_columns(base, latest_record(warehouse.table("car")))
    consent = consent_by_key(warehouse.table("identity_map"), warehouse.input_table("customers"))
    base = _add_columns(base, consent)
    market = (base.preferred_country.fill_null(base.home_country) if "preferred_country" in base.columns
              else ibis.null("string"))
    base = base.mutate(
        clv=base[f"clv_{h}m"], clv_lower=base[f"clv_{h}m_lower"], clv_upper=base[f"clv_{h}m_upper"],
        expected_value=base[f"expected_value_{h}m"], expected_orders=base[f"expected_orders_{h}m"],
        audience_horizon_months=ibis.literal(h, type="int64"), market=market,
        marketing_consent=base.marketing_consent.fill_null(False),
        service_priority=service_priority(base.value_tier, seg))
    return base.mutate(retention_offer_cap=retention_offer_cap(base.clv, seg),
                       next_best_action=next_best_action(base.value_tier, base.lifecycle_stage, base.churn_risk, seg))


# -- the filter language --------------------------------------------------------------------------
def _bad(audience: str, message: str) -> ConfigError:
    return ConfigError(f"audience {audience!r}: {message}")


def _check_scalar(audience: str, column: str, value: Any, dtype: Any) -> Any:
    if not isinstance(value, _SCALARS):
        raise _bad(audience, f"value {value!r} for {column!r} must be a number, string or boolean")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if dtype.is_numeric() and not numeric:
        raise _bad(audience, f"column {column!r} is numeric; {value!r} is not a number")
    if dtype.is_string() and not isinstance(value, str):
        raise _bad(audience, f"column {column!r} holds text; quote {value!r}")
    if dtype.is_boolean() and not isinstance(value, bool):
        raise _bad(audience, f"column {column!r} is true/false; {value!r} is not")
    return value


def condition(table: ir.Table, audience: str, cond: tuple[Any, ...] | list[Any]) -> ir.BooleanValue:
    """One ``[column, operator, value]`` condition as an Ibis boolean over ``table``.

    The column must be one of ``table``'s columns, the operator one of :data:`OPERATORS`;
    values become literals. Anything else raises a ConfigError naming the bad token.
    """
    if not isinstance(cond, tuple | list) or len(cond) not in (2, 3):
        raise _bad(audience, f"condition {cond!r} must be [column, operator, value]")
    column, op = cond[0], cond[1]
    if not isinstance(column, str) or column not in table.columns:
        raise _bad(audience, f"unknown column {column!r}")
    if not isinstance(op, str) or op.lower() not in OPERATORS:
        raise _bad(audience, f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    op = op.lower()
    col = table[column]
    if op in ("is null", "is not null"):
        if len(cond) != 2:
            raise _bad(audience, f"{op!r} takes no value")
        return col.isnull() if op == "is null" else col.notnull()
    if len(cond) != 3:
        raise _bad(audience, f"operator {op!r} on {column!r} needs a value")
    value, dtype = cond[2], col.type()
    if op in ("in", "not in"):
        if not isinstance(value, tuple | list) or not value:
            raise _bad(audience, f"{op!r} on {column!r} needs a non-empty list")
        values = [_check_scalar(audience, column, v, dtype) for v in value]
        return col.isin(values) if op == "in" else col.notin(values)
    value = _check_scalar(audience, column, value, dtype)
    if op in _ORDERING and not (dtype.is_numeric() or dtype.is_temporal() or dtype.is_string()):
        raise _bad(audience, f"operator {op!r} does not apply to column {column!r}")
    compare = {"=": col.__eq__, "!=": col.__ne__, "<": col.__lt__, "<=": col.__le__, ">": col.__gt__,
               ">=": col.__ge__}[op]
    return compare(ibis.literal(value))


def audience_filter(table: ir.Table, audience: AudienceDefinition) -> ir.BooleanValue:
    """All of the audience's conditions (true when it has none)."""
    conditions = [condition(table, audience.name, c) for c in audience.where]
    return ibis.and_(*conditions) if conditions else ibis.literal(True)


# -- resolution -----------------------------------------------------------------------------------
def audience_candidates(warehouse: Warehouse, settings: Settings | None, name: str, *,
                        market: str | None = None, horizon: int | None = None) -> ir.Table:
    """Customers the audience's filter selects, consent not yet applied (one row per key).

    ``market`` and ``horizon`` override the audience's own.
    """
    settings = settings or warehouse.settings
    audience = get_audience(settings, name)
    base = audience_base(warehouse, settings, horizon=horizon or audience.horizon_months)
    selected = base.filter(audience_filter(base, audience))
    market = market or audience.market
    if market is not None:
        selected = selected.filter(selected.market == ibis.literal(market.upper()))
    if audience.action is not None:
        selected = selected.mutate(next_best_action=ibis.literal(audience.action))
    return selected.mutate(audience=ibis.literal(audience.name))


def audience_members(warehouse: Warehouse, settings: Settings | None, name: str, *,
                     market: str | None = None, horizon: int | None = None) -> ir.Table:
    """The audience: matching customers with marketing consent, one row per customer_key."""
    candidates = audience_candidates(warehouse, settings, name, market=market, horizon=horizon)
    return candidates.filter(candidates.marketing_consent)


def audience_counts(warehouse: Warehouse, settings: Settings | None, name: str, *,
                    market: str | None = None, horizon: int | None = None) -> AudienceCounts:
    """Matched customers, members (with consent) and those excluded for lack of consent."""
    candidates = audience_candidates(warehouse, settings, name, market=market, horizon=horizon)
    row = warehouse.to_pandas(candidates.aggregate(
        matched=candidates.count(), members=candidates.marketing_consent.cast("int64").sum()))
    matched, members = int(row.matched.iloc[0]), int(row.members.fillna(0).iloc[0])
    return AudienceCounts(matched=matched, members=members, excluded_no_consent=matched - members)
