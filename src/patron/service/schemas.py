"""Request and response bodies of the service: what the OpenAPI document shows.

Every input is bounded (ids by pattern, amounts by range, times to 1970-2100, lists by
length), so malformed or absurd input is refused with a 422 naming the field, never
carried into a model where it would overflow.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

CUSTOMER_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ORDER_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
MAX_AMOUNT = 1e9
_EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_LATEST = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)

Amount = Annotated[float, Field(ge=0.0, le=MAX_AMOUNT, description="Money in the reporting currency, >= 0.")]
SignedAmount = Annotated[float, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT)]


class Strict(BaseModel):
    """Bodies refuse unknown fields and non-finite numbers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _in_range(value: dt.datetime) -> dt.datetime:
    if not _EARLIEST <= value < _LATEST:
        raise ValueError("time must lie between 1970-01-01 and 2100-01-01")
    return value


class PostedOrder(Strict):
    """One order of a posted history."""

    ordered_at: AwareDatetime = Field(description="When the order was placed, with a time zone.")
    revenue: Amount
    gp2: SignedAmount | None = Field(None, description="Gross profit after fulfilment; default: the revenue.")
    discount: Amount | None = Field(None, description="Discounts given on the order; default: none known.")
    gross_revenue: Amount | None = Field(
        None, description="List-price revenue before discounts and refunds; default: revenue + discount."
    )

    _check_time = field_validator("ordered_at")(_in_range)


class Summary(Strict):
    """A customer's RFM summary, in the model's time unit (``[model] time_unit``)."""

    frequency: int = Field(ge=0, le=10_000, description="Repeat purchase days.")
    recency: float = Field(ge=0.0, le=100_000.0, description="First to last purchase day.")
    T: float = Field(ge=0.0, le=100_000.0, description="First purchase day to the observation end.")
    monetary_revenue: Amount = Field(0.0, description="Mean revenue of the repeat purchase days.")
    total_revenue: Amount | None = None
    total_gp2: SignedAmount | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Summary:
        if self.recency > self.T:
            raise ValueError("recency cannot exceed T")
        if self.frequency == 0 and self.recency != 0:
            raise ValueError("a customer without repeat purchases has recency 0")
        return self


class ScoreRequest(Strict):
    """Either a summary or an order history, scored on the champion model."""

    summary: Summary | None = None
    orders: list[PostedOrder] | None = Field(None, min_length=1, max_length=10_000)
    observation_end: dt.date | None = Field(
        None, description="Last day observed; default: the warehouse's (the day of its last order)."
    )
    market: str | None = Field(
        None, pattern=r"^[A-Z]{2}$",
        description="The customer's market (ISO country): on a seasonal clock, whose months the history is "
                    "measured and the horizons spread on; default: the all-market pattern.",
    )

    @model_validator(mode="after")
    def _one_input(self) -> ScoreRequest:
        if (self.summary is None) == (self.orders is None):
            raise ValueError("send exactly one of 'summary' and 'orders'")
        if self.observation_end is not None and not _EARLIEST.date() <= self.observation_end < _LATEST.date():
            raise ValueError("observation_end must lie between 1970-01-01 and 2100-01-01")
        return self


class OrderEvent(Strict):
    """A new order of a known or new customer, in the reporting currency."""

    order_id: str = Field(pattern=ORDER_ID_PATTERN)
    customer_key: str = Field(pattern=CUSTOMER_KEY_PATTERN)
    ordered_at: AwareDatetime
    channel: str = Field("online", pattern=r"^[a-z_]{1,32}$")
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    store_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    revenue: Amount
    gp2: SignedAmount

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
    observation_end: dt.date
    rfm: dict[str, Any]
    scores: Scores
    elapsed_ms: float = Field(description="Time to record the order and rescore the customer.")


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


class NewKey(Strict):
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
