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

Two operators select a share rather than a threshold: ``["churn_risk", "top share", 0.2]``
keeps the 20% with the highest churn risk, ``"bottom share"`` the lowest, ranked among
the customers the audience's other conditions (and market) keep; several apply in the
order written. The share is a number in (0, 1], the column numeric; ties are broken by
``customer_key`` and NULLs are never kept (:func:`patron.activation.playbooks.in_top_share`).

The base table is ``segments`` ⋈ ``scores`` ⋈ ``car`` (one row per scored customer), plus
``clv``, ``clv_lower``, ``clv_upper``, ``expected_value`` and ``expected_orders`` of the
audience's horizon, ``market`` (``car.preferred_country``, else ``home_country``), the
playbook columns (``service_priority``, ``retention_offer_cap``, ``next_best_action``) and
``marketing_consent``.

Consent rule: a person's consent is **their latest word**: the ``marketing_consent`` of
the most recently signed-up record (``signup_at``) of theirs that states one (true or
false; a record with none says nothing). Records signed up at the same time (or all
without a time) that disagree count as no. Members without consent are excluded from
every audience, and counted; exports carry only identifiers of consenting records
(:mod:`patron.activation.exports`). See docs/privacy.md.

The date rule: segments, scores and the customer record must describe one date, the
scores' (:func:`patron.activation.segments.scores_as_of`); a ``car`` or ``segments`` of another
date is refused with both dates named, never replaced by the latest at hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir

from patron.activation.playbooks import (
    in_top_share,
    next_best_action,
    retention_offer_cap,
    retention_target,
    service_priority,
)
from patron.activation.segments import check_segments_date, customer_record, scores_as_of
from patron.config import AudienceDefinition, Settings
from patron.errors import ConfigError

if TYPE_CHECKING:
    from patron.engine import Warehouse

OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "is not null", "top share",
             "bottom share")
#: Operators that rank customers rather than test each alone: applied after the others.
SHARE_OPERATORS = ("top share", "bottom share")
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
    """(customer_key, marketing_consent): the person's latest word.

    The consent of their most recently signed-up record that states one (NULL says
    nothing); among records of the same (or no) sign-up time a no wins. Persons with no
    statement are absent (no consent).
    """
    joined = identity_map.join(customers, ["source", "customer_id"])
    return latest_word(joined.filter(joined.marketing_consent.notnull()), "customer_key")


def latest_word(records: ir.Table, by: str) -> ir.Table:
    """(``by``, marketing_consent) of the latest stated record per ``by``; on a tie in ``signup_at`` a no wins."""
    order = [records.signup_at.isnull(), records.signup_at.desc(), records.marketing_consent.asc()]
    ranked = records.mutate(_n=ibis.row_number().over(group_by=by, order_by=order))
    latest = ranked.filter(ranked._n == 0)
    return latest.select(by, marketing_consent=latest.marketing_consent)


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
    as_of = scores_as_of(warehouse, settings)
    record = customer_record(warehouse, as_of)  # first: a record of another date is the cause to name
    check_segments_date(warehouse, as_of)
    base = _add_columns(warehouse.table("segments").drop("clv"), warehouse.table("scores"))
    if record is not None:
        base = _add_columns(base, record)
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
    retention = retention_target(base.value_tier, base.lifecycle_stage, base.churn_risk, base.customer_key, seg)
    return base.mutate(retention_offer_cap=retention_offer_cap(base.clv, seg),
                       next_best_action=next_best_action(base.value_tier, base.lifecycle_stage, retention, seg))


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
    if op in SHARE_OPERATORS:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            raise _bad(audience, f"{op!r} on {column!r} needs a share: a number above 0 and at most 1, not {value!r}")
        if not dtype.is_numeric():
            raise _bad(audience, f"operator {op!r} needs a numeric column; {column!r} is not")
        return in_top_share(col, table.customer_key, float(value), top=op == "top share")
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


def _is_share(cond: Any) -> bool:
    return (isinstance(cond, tuple | list) and len(cond) > 1 and isinstance(cond[1], str)
            and cond[1].lower() in SHARE_OPERATORS)


def audience_filter(table: ir.Table, audience: AudienceDefinition) -> ir.BooleanValue:
    """The audience's conditions that test each customer alone, all of them (true when none).

    Every condition is checked, share conditions too; those apply in :func:`select_audience`.
    """
    conditions = [condition(table, audience.name, c) for c in audience.where]
    plain = [c for c, cond in zip(conditions, audience.where, strict=True) if not _is_share(cond)]
    return ibis.and_(*plain) if plain else ibis.literal(True)


def select_audience(table: ir.Table, audience: AudienceDefinition, *, market: str | None = None) -> ir.Table:
    """The rows of ``table`` the audience keeps: its plain conditions and ``market``, then
    each share condition in turn, ranked among the rows kept so far."""
    kept = table.filter(audience_filter(table, audience))
    if market is not None:
        kept = kept.filter(kept.market == ibis.literal(market.upper()))
    for cond in filter(_is_share, audience.where):
        kept = kept.mutate(_share=condition(kept, audience.name, cond))
        kept = kept.filter(kept._share).drop("_share")
    return kept


# -- resolution -----------------------------------------------------------------------------------
def audience_candidates(warehouse: Warehouse, settings: Settings | None, name: str, *,
                        market: str | None = None, horizon: int | None = None) -> ir.Table:
    """Customers the audience's filter selects, consent not yet applied (one row per key).

    ``market`` and ``horizon`` override the audience's own.
    """
    settings = settings or warehouse.settings
    audience = get_audience(settings, name)
    base = audience_base(warehouse, settings, horizon=horizon or audience.horizon_months)
    selected = select_audience(base, audience, market=market or audience.market)
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
