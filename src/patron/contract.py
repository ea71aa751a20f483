"""The data contract: patron's input tables, their keys, types and rules, in one place.

The synthetic retailer writes these tables, ingest coerces and checks files against
them, validation reads their rules and the data dictionary is generated from them.
Types are Ibis type strings so that every engine agrees on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import ibis
import ibis.expr.schema as sch

from patron.errors import DataContractError

TIMESTAMP = "timestamp('UTC')"

#: ISO 4217 codes of the currencies in circulation; an order in any other code is rejected.
ISO_CURRENCIES: frozenset[str] = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW
    ZWL
    """.split()
)


@dataclass(frozen=True)
class Column:
    """One column of a contract table and the rules a value must meet."""

    name: str
    dtype: str
    description: str
    required: bool = False
    non_negative: bool = False
    positive: bool = False
    allowed: frozenset[str] | None = None

    @property
    def ibis_type(self) -> ibis.expr.datatypes.DataType:
        return ibis.dtype(self.dtype)


@dataclass(frozen=True)
class TableContract:
    """A contract table: its name, primary key and columns."""

    name: str
    keys: tuple[str, ...]
    columns: tuple[Column, ...]
    description: str
    grain: str = field(default="")

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        missing = [k for k in self.keys if k not in names]
        if missing:
            raise ValueError(f"{self.name}: keys {missing} are not columns")

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def value_columns(self) -> tuple[str, ...]:
        """Columns outside the key, compared when the same key arrives twice."""
        return tuple(c.name for c in self.columns if c.name not in self.keys)

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise DataContractError(f"table {self.name} has no column {name!r}")

    def is_required(self, column: Column) -> bool:
        return column.required or column.name in self.keys

    def schema(self) -> sch.Schema:
        return ibis.schema({c.name: c.dtype for c in self.columns})

    def __iter__(self) -> Iterator[Column]:
        return iter(self.columns)


def _c(name: str, dtype: str, description: str, **rules: object) -> Column:
    if "allowed" in rules and rules["allowed"] is not None:
        rules["allowed"] = frozenset(rules["allowed"])  # type: ignore[arg-type]
    return Column(name, dtype, description, **rules)  # type: ignore[arg-type]


CHANNELS = ("online", "store")
ENGAGEMENT_CHANNELS = ("email", "sms", "push", "web", "app")
ENGAGEMENT_EVENTS = ("sent", "open", "click", "unsubscribe", "visit")
SURVEY_TYPES = ("nps", "csat")
CATEGORIES = ("charms", "bracelets", "necklaces", "rings", "earrings")
MATERIALS = ("silver", "gold", "rose gold")

CUSTOMERS = TableContract(
    "customers",
    ("source", "customer_id"),
    (
        _c("source", "string", "System the record comes from (web shop, store POS, CRM)."),
        _c("customer_id", "string", "Customer id within the source system."),
        _c("email", "string", "Email address as captured; may vary in case and spacing."),
        _c("phone", "string", "Phone number as captured, in any format."),
        _c("first_name", "string", "Given name."),
        _c("last_name", "string", "Family name."),
        _c("postcode", "string", "Postal code."),
        _c("country", "string", "ISO 3166-1 alpha-2 country of the customer."),
        _c("birth_year", "int64", "Year of birth.", non_negative=True),
        _c("gender", "string", "Gender as stated by the customer."),
        _c("signup_at", TIMESTAMP, "When the customer registered in the source."),
        _c("loyalty_id", "string", "Loyalty programme number, shared across sources."),
        _c("marketing_consent", "boolean", "Whether the customer agreed to marketing."),
    ),
    "Customer records as each source system holds them; one person may have several.",
)

ORDERS = TableContract(
    "orders",
    ("order_id",),
    (
        _c("order_id", "string", "Order id, unique across sources."),
        _c("source", "string", "System the order comes from.", required=True),
        _c("customer_id", "string", "Customer id in the source; empty for guest and anonymous store orders."),
        _c("email", "string", "Email given with the order (guest checkout, e-receipt)."),
        _c("loyalty_id", "string", "Loyalty number scanned or given with the order."),
        _c("ordered_at", TIMESTAMP, "When the order was placed, with its time zone.", required=True),
        _c("channel", "string", "online or store.", required=True, allowed=CHANNELS),
        _c("country", "string", "ISO 3166-1 alpha-2 country of sale.", required=True),
        _c("store_id", "string", "Store of a store order."),
        _c("currency", "string", "ISO 4217 currency of the order's money columns.", required=True,
           allowed=ISO_CURRENCIES),
    ),
    "One row per order from every channel.",
)

ORDER_LINES = TableContract(
    "order_lines",
    ("order_id", "line_no"),
    (
        _c("order_id", "string", "Order the line belongs to."),
        _c("line_no", "int64", "Line number within the order.", non_negative=True),
        _c("sku", "string", "Product sold.", required=True),
        _c("quantity", "int64", "Units sold.", required=True, positive=True),
        _c("unit_price", "float64", "Price per unit before discount, order currency.", required=True,
           non_negative=True),
        _c("discount", "float64", "Total discount on the line, order currency.", non_negative=True),
        _c("unit_cost", "float64", "Cost of goods per unit, order currency.", non_negative=True),
    ),
    "Order lines: what was sold, at what price, discount and cost.",
)

PRODUCTS = TableContract(
    "products",
    ("sku",),
    (
        _c("sku", "string", "Stock keeping unit."),
        _c("name", "string", "Product name."),
        _c("category", "string", "Category: charms, bracelets, necklaces, rings, earrings."),
        _c("material", "string", "Material: silver, gold, rose gold."),
        _c("collection", "string", "Collection the product belongs to."),
        _c("list_price", "float64", "List price in the reporting currency.", non_negative=True),
    ),
    "Product master data.",
)

RETURNS = TableContract(
    "returns",
    ("order_id", "line_no", "returned_at"),
    (
        _c("order_id", "string", "Order of the returned line."),
        _c("line_no", "int64", "Returned line.", non_negative=True),
        _c("returned_at", TIMESTAMP, "When the return was received."),
        _c("quantity", "int64", "Units returned.", required=True, positive=True),
        _c("refund_amount", "float64", "Amount refunded, order currency.", required=True,
           non_negative=True),
        _c("handling_cost", "float64", "Cost of handling the return, order currency.",
           non_negative=True),
    ),
    "Returns of order lines, with refunds and handling cost.",
)

ORDER_COSTS = TableContract(
    "order_costs",
    ("order_id",),
    (
        _c("order_id", "string", "Order the costs belong to."),
        _c("shipping_cost", "float64", "Shipping cost, order currency.", non_negative=True),
        _c("payment_fee", "float64", "Payment provider fee, order currency.", non_negative=True),
        _c("handling_cost", "float64", "Pick, pack and handling cost, order currency.",
           non_negative=True),
    ),
    "Fulfilment costs per order.",
)

ENGAGEMENT_EVENTS_TABLE = TableContract(
    "engagement_events",
    ("source", "customer_id", "occurred_at", "event_type"),
    (
        _c("source", "string", "System of the customer record."),
        _c("customer_id", "string", "Customer id in that source."),
        _c("occurred_at", TIMESTAMP, "When the event happened."),
        _c("event_type", "string", "sent, open, click, unsubscribe or visit.",
           allowed=ENGAGEMENT_EVENTS),
        _c("campaign_id", "string", "Campaign the event belongs to."),
        _c("channel", "string", "email, sms, push, web or app.", allowed=ENGAGEMENT_CHANNELS),
    ),
    "Marketing and site engagement events.",
)

SURVEYS = TableContract(
    "surveys",
    ("source", "customer_id", "answered_at"),
    (
        _c("source", "string", "System of the customer record."),
        _c("customer_id", "string", "Customer id in that source."),
        _c("answered_at", TIMESTAMP, "When the survey was answered."),
        _c("survey_type", "string", "nps (0-10) or csat (1-5).", required=True, allowed=SURVEY_TYPES),
        _c("channel", "string", "Channel the survey was answered in."),
        _c("score", "int64", "Score given.", required=True, non_negative=True),
    ),
    "Satisfaction survey answers (NPS, CSAT).",
)

FX_RATES = TableContract(
    "fx_rates",
    ("currency", "date"),
    (
        _c("currency", "string", "ISO 4217 currency.", allowed=ISO_CURRENCIES),
        _c("date", "date", "Day the rate applies from."),
        _c("rate_to_reporting", "float64", "Reporting-currency units per unit of currency.",
           required=True, positive=True),
    ),
    "Exchange rates to the reporting currency; a rate holds until the next date.",
)

EXPERIMENTS = TableContract(
    "experiments",
    ("experiment_id", "source", "customer_id"),
    (
        _c("experiment_id", "string", "Experiment id."),
        _c("source", "string", "System of the customer record."),
        _c("customer_id", "string", "Customer id in that source."),
        _c("arm", "string", "Arm the customer was assigned to (control, treatment...).", required=True),
        _c("assigned_at", TIMESTAMP, "When the customer was assigned."),
    ),
    "A/B experiment assignments.",
)

CONTRACT: dict[str, TableContract] = {
    t.name: t
    for t in (
        CUSTOMERS,
        ORDERS,
        ORDER_LINES,
        PRODUCTS,
        RETURNS,
        ORDER_COSTS,
        ENGAGEMENT_EVENTS_TABLE,
        SURVEYS,
        FX_RATES,
        EXPERIMENTS,
    )
}

#: Ground-truth tables written by the synthetic retailer, never read by the pipeline.
TRUTH_TABLES = ("truth_identity", "truth_orders", "truth_customers")


def contract_table(name: str) -> TableContract:
    """The contract of table ``name``, or a ``DataContractError`` naming the known tables."""
    try:
        return CONTRACT[name]
    except KeyError:
        known = ", ".join(sorted(CONTRACT))
        raise DataContractError(f"unknown table {name!r}; the contract has: {known}") from None
