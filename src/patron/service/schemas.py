"""Request and response bodies of the service, and its refusals: what the OpenAPI document shows.

Every input is bounded (ids by pattern, amounts by range, times to 1970-2100, lists by
length), so malformed or absurd input is refused with a 422 naming the field, never
carried into a model where it would overflow. The request schemas say as much of each
rule as JSON Schema can (exactly one of two fields, no ``null`` where a field may only be
left out, numbers that are numbers); what it cannot say (``recency <= T``, ``gp2 <=
revenue``, a time not too far in the future) the 422 of the route describes.

:func:`error_responses` documents the refusals: every status a route can answer besides
its success, with the body (:class:`ErrorBody`, or :class:`InvalidRequest` for 422) and
the headers sent with it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from patron.service.deps import API_KEY_HEADER

CUSTOMER_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ORDER_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_AMOUNT = 1e9
_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
#: The years 1970-2099 of an ISO 8601 time, for its schema (the exact bound, in UTC, is checked on arrival).
_YEARS = r"^(19[7-9][0-9]|20[0-9][0-9])-"

# Strict: a number must be a JSON number (not "5", not true), as the schema says.
Amount = Annotated[float, Strict(), Field(ge=0.0, le=MAX_AMOUNT, description="Money in the reporting currency, >= 0.")]
SignedAmount = Annotated[float, Strict(), Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]


class StrictBody(BaseModel):
    """Bodies refuse unknown fields and non-finite numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _not_null(value: Any) -> Any:
    """A field that may be left out but not sent as ``null`` (its schema shows no ``null``)."""
    if value is None:
        raise ValueError("may be left out but not null")
    return value


def _without_null(schema: dict[str, Any]) -> None:
    """The schema of a field that may be left out but not be ``null``: no ``null`` type, no ``null`` default."""
    schema.pop("default", None)
    kept = [s for s in schema.pop("anyOf", []) if s != {"type": "null"}]
    if len(kept) == 1:
        schema.update({**kept[0], **schema})  # the field's own description over its type's
    elif kept:
        schema["anyOf"] = kept


def _in_years(schema: dict[str, Any]) -> None:
    """The schema of a time or day of 1970-2099: its text starts with such a year."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string":
            branch["pattern"] = _YEARS


def _whole(value: Any) -> Any:
    """A JSON integer: a number without a fraction (``3`` or ``3.0``, as JSON Schema counts them), not text or
    ``true``."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _iso_text(value: Any) -> Any:
    """A time or a day as ISO 8601 text, as the schema says (not a number of seconds)."""
    if value is not None and not isinstance(value, str):
        raise ValueError("must be ISO 8601 text, e.g. 2025-06-01 or 2025-06-01T12:00:00Z")
    return value


def _in_range(value: dt.datetime) -> dt.datetime:
    if not _EARLIEST <= value < _LATEST:
        raise ValueError("time must lie between 1970-01-01 and 2100-01-01")
    return value


class PostedOrder(StrictBody):
    """One order of a posted history."""

    ordered_at: AwareDatetime = Field(description="When the order was placed, with a time zone; 1970-2099, "
                                              "not in the future.", json_schema_extra=_in_years)
    revenue: Amount
    gp2: SignedAmount | None = Field(None, description="Gross profit after fulfilment; default: the revenue.")
    discount: Amount | None = Field(None, description="Discounts given on the order; default: none known.")
    gross_revenue: Amount | None = Field(
        None, description="List-price revenue before discounts and refunds; default: revenue + discount."
    )

    _check_text = field_validator("ordered_at", mode="before")(_iso_text)
    _check_time = field_validator("ordered_at")(_in_range)


class Summary(StrictBody):
    """A customer's RFM summary, in the model's time unit (``[model] time_unit``).

    The monetary value of the repeat purchase days comes as ``monetary_revenue`` or, under
    the name the buy-till-you-die literature gives the spend model's input, ``monetary_value``
    (one of them at most; without either it is 0).
    """

    model_config = ConfigDict(json_schema_extra={"allOf": [
        # frequency 0 <=> recency 0: without a repeat purchase the last day is the first
        {"oneOf": [{"properties": {"frequency": {"const": 0}, "recency": {"const": 0}}},
                   {"properties": {"frequency": {"minimum": 1}, "recency": {"exclusiveMinimum": 0}}}]},
        {"not": {"required": ["monetary_value", "monetary_revenue"]}},
    ]})

    frequency: Annotated[int, Strict()] = Field(ge=0, le=10_000, description="Repeat purchase days.")
    recency: Annotated[float, Strict()] = Field(
        ge=0.0, le=100_000.0,
        description="First to last purchase day: 0 when frequency is 0, > 0 otherwise; at most T.")
    T: Annotated[float, Strict()] = Field(ge=0.0, le=100_000.0,
                                          description="First purchase day to the observation end.")
    monetary_revenue: Amount = Field(
        0.0, description="Mean revenue of the repeat purchase days (the first day left out): the spend model's input, "
                         "column `monetary_revenue` of table `rfm`. Default 0.")
    monetary_value: Amount | None = Field(
        None, json_schema_extra=_without_null,
        description="The same, under its name in the buy-till-you-die literature (the Gamma-Gamma spend model's "
                    "`monetary_value`): mean *revenue* of the repeat purchase days; send it or `monetary_revenue`, "
                    "not both. Not the column `monetary_value` of table `rfm` (and of `GET /customers/{key}`), which "
                    "is on the GP2 basis (= `monetary_gp2`): post that row's `monetary_revenue`.")
    total_revenue: Amount | None = Field(None, description="Revenue of all purchases, the first included.")
    total_gp2: SignedAmount | None = Field(None, description="GP2 of all purchases, the first included.")

    _check_monetary_value = field_validator("monetary_value", mode="before")(_not_null)
    _check_frequency = field_validator("frequency", mode="before")(_whole)

    @model_validator(mode="after")
    def _consistent(self) -> Summary:
        if self.recency > self.T:
            raise ValueError("recency cannot exceed T")
        if self.frequency == 0 and self.recency != 0:
            raise ValueError("a customer without repeat purchases has recency 0")
        if self.frequency > 0 and self.recency == 0:
            raise ValueError(f"frequency {self.frequency} with recency 0: a repeat purchase day lies after the first, "
                             "so a customer with repeat purchases has recency > 0")
        if self.monetary_value is not None:
            if "monetary_revenue" in self.model_fields_set:
                raise ValueError("send monetary_revenue or monetary_value (the same mean revenue), not both")
            self.monetary_revenue = self.monetary_value
        return self

    def scored(self) -> dict[str, Any]:
        """The fields the scoring reads (:func:`patron.scoring.live.summary_table`): ``monetary_value`` as
        ``monetary_revenue``."""
        return self.model_dump(exclude={"monetary_value"})


class ScoreRequest(StrictBody):
    """Either a summary or an order history (exactly one), scored on the champion model."""

    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": ["summary"]}, {"required": ["orders"]}]})

    summary: Summary | None = Field(None, json_schema_extra=_without_null)
    orders: list[PostedOrder] | None = Field(None, min_length=1, max_length=10_000, json_schema_extra=_without_null)
    observation_end: dt.date | None = Field(
        None, json_schema_extra=_in_years,
        description="Last day observed, 1970-01-01 to 2099-12-31 and not in the future; default: the warehouse's "
                    "(the day of its last order). An order history needs an order on or before it.")
    market: str | None = Field(
        None, pattern=r"^[A-Z]{2}$",
        description="The customer's market (ISO country): on a seasonal clock, whose months the history is "
                    "measured and the horizons spread on; default: the all-market pattern.",
    )

    _check_present = field_validator("summary", "orders", mode="before")(_not_null)
    _check_text = field_validator("observation_end", mode="before")(_iso_text)

    @model_validator(mode="after")
    def _one_input(self) -> ScoreRequest:
        if (self.summary is None) == (self.orders is None):
            raise ValueError("send exactly one of 'summary' and 'orders'")
        if self.observation_end is not None and not _EARLIEST.date() <= self.observation_end < _LATEST.date():
            raise ValueError("observation_end must lie between 1970-01-01 and 2100-01-01")
        return self


class OrderEvent(StrictBody):
    """A new order of a known or new customer, in the reporting currency."""

    order_id: str = Field(pattern=ORDER_ID_PATTERN)
    customer_key: str = Field(pattern=CUSTOMER_KEY_PATTERN)
    ordered_at: AwareDatetime = Field(description="When the order was placed, with a time zone; 1970-2099, not in "
                                              "the future.", json_schema_extra=_in_years)
    channel: str = Field("online", pattern=r"^[a-z_]{1,32}$")
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    store_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    revenue: Amount
    gp2: SignedAmount

    _check_text = field_validator("ordered_at", mode="before")(_iso_text)
    _check_time = field_validator("ordered_at")(_in_range)

    @model_validator(mode="after")
    def _profit_within_revenue(self) -> OrderEvent:
        if self.gp2 > self.revenue:
            raise ValueError("gp2 cannot exceed revenue")
        return self


class Scores(BaseModel):
    """Scores of one customer (the columns of table ``scores``; NULL where undefined)."""

    model_config = ConfigDict(extra="allow")

    p_alive: float | None = None
    churn_risk: float | None = None
    expected_next_order_date: dt.date | None = None
    model_id: str | None = None


class ScoreResponse(BaseModel):
    model_id: str
    observation_end: dt.date
    summary: dict[str, Any] = Field(description="The RFM summary scored.")
    scores: Scores


class EventResponse(BaseModel):
    customer_key: str
    order_id: str
    seq: int = Field(description="The event's place in the event log.")
    observation_end: dt.date = Field(description="The observation end with this order counted.")
    rescored: bool = Field(description="Whether the customer was rescored before the answer (`rescore=true`); "
                                       "else the next lookup of the customer rescores them.")
    rfm: dict[str, Any] | None = Field(description="The customer's new summary row when rescored, else null.")
    scores: Scores | None = Field(description="The customer's new scores when rescored, else null.")
    elapsed_ms: float = Field(description="Time to record the order (and rescore the customer).")


class ChannelSummary(BaseModel):
    channel: str | None
    orders: int
    revenue: float | None
    gp2: float | None


class OrderLine(BaseModel):
    order_id: str
    ordered_at: dt.datetime
    channel: str | None = None
    country: str | None = None
    store_id: str | None = None
    revenue: float | None = None
    gp2: float | None = None


class PersonalRecord(BaseModel):
    """One source record of the person: raw personal data (roles with ``customer:personal`` only)."""

    source: str | None = None
    customer_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    postcode: str | None = None
    country: str | None = None
    birth_year: int | None = None
    marketing_consent: bool | None = None


class CustomerView(BaseModel):
    customer_key: str
    tier: str | None = Field(description="Value tier from `patron segments` (e.g. top_1, top_1_5, ... bottom_50); "
                                         "null before segments are written.")
    scores: Scores | None
    rfm: dict[str, Any] | None
    segments: list[str]
    preferences: dict[str, Any]
    channels: list[ChannelSummary]
    orders: list[OrderLine] = Field(description="The latest orders, newest first (at most 100).")
    personal: list[PersonalRecord] | None = Field(None, description="Absent unless the role may see personal data.")


class AudiencePage(BaseModel):
    name: str
    total: int
    limit: int
    offset: int
    customer_keys: list[str]


class Health(BaseModel):
    status: str = Field(description="ok, or degraded when a newer version could not be opened (see problem).")
    engine: str = Field(description="The engine of the warehouse the version was published from.")
    model_id: str | None
    customers: int
    version: str = Field(description="The serving version answered from (`patron publish`).")
    published_at: dt.datetime
    age_seconds: float = Field(description="Seconds since the version was published.")
    online_store: str
    events_logged: int = Field(description="Orders posted to POST /events so far (the event log's last seq).")
    events_pending: int = Field(description="Logged events the version's data does not hold yet.")
    problem: str | None = Field(None, description="Why the newest published version is not served, if it is not.")


class CustomerMatches(BaseModel):
    kind: str
    customer_keys: list[str]


class NewKey(StrictBody):
    """The role of an API key to create."""

    role: Literal["admin", "analyst", "marketer", "store"] = Field(description="The role the key acts in.")


class KeyInfo(BaseModel):
    """An API key's public facts (never its hash)."""

    key_id: str = Field(description="The 12 hex digits after `ptk_`: how a key is named and revoked.")
    role: str
    created_at: dt.datetime
    revoked: bool


class CreatedKey(KeyInfo):
    key: str = Field(description="The key itself, shown this once; only its salted hash is stored.")


# -- refusals ---------------------------------------------------------------------------
class ErrorBody(BaseModel):
    """A refusal: what went wrong and how to put it right, in one line."""

    detail: str


class FieldError(BaseModel):
    """One fault of an invalid request: where (``["body", "summary", "recency"]``), what and its kind."""

    loc: list[str | int]
    msg: str
    type: str


class InvalidRequest(BaseModel):
    """422: the request breaks a rule. Its fields at fault (``detail`` a list, with ``message`` one readable line)
    when it does not match its schema; one line (``detail`` a string) when it breaks a rule the schema cannot
    state."""

    detail: str | list[FieldError]
    message: str | None = Field(None, description="The faults of `detail`, one readable line.")


_ERRORS: dict[int, str] = {
    400: "Malformed request: an unreadable Content-Length header, or an error patron has no status for.",
    401: f"Missing, malformed, unknown or revoked API key in the `{API_KEY_HEADER}` header (checked before any "
         "body byte is read).",
    403: "The key's role lacks the permission this route needs.",
    404: "Not found.",
    409: "Conflict with what is stored.",
    413: "Request body over `[serve] max_body_bytes` (1 MiB by default), refused unread.",
    422: "Invalid request: the fields at fault, or the rule broken.",
    429: "Over `[serve] rate_per_second` requests a second for this key; retry after `Retry-After` seconds.",
    503: "Nothing to answer from: nothing published yet, no fitted models, or a corrupt serving version "
         "(`patron publish`).",
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": f"`{API_KEY_HEADER}`: the header that carries the key.", "required": True,
                               "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds until the key may send again.", "required": True,
                          "schema": {"type": "integer", "minimum": 1}}},
}
#: What the service's front door (:class:`patron.service.guards.RequestGuard`) and the role check may answer on
#: every route that needs a key.
GUARDED = (400, 401, 403, 413, 429)


def error_responses(*codes: int, why: Mapping[int, str] | None = None) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of ``codes``: description, body schema and headers of each.

    ``why`` replaces a code's general description with the route's reasons.
    """
    reasons = {**_ERRORS, **(why or {})}
    return {code: {"description": reasons[code], "model": InvalidRequest if code == 422 else ErrorBody,
                   **({"headers": _HEADERS[code]} if code in _HEADERS else {})}
            for code in codes}
