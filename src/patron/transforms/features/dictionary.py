"""The data dictionary of the customer analytic record, generated from the feature registry.

``python -m patron.transforms.features.dictionary`` prints the Markdown kept in
``docs/data-dictionary.md``; a test fails when the two drift apart, so the document
is always the single agreed definition of each metric.
"""

from __future__ import annotations

from patron.transforms.features.expressions import PERIODS
from patron.transforms.features.lifecycle import ACTIVE_DAYS, LAPSED_DAYS, NEW_DAYS
from patron.transforms.features.registry import features_by_group, registry, required_tables
from patron.transforms.features.seasons import SEASONS
from patron.transforms.features.spec import Feature

GROUP_TITLES: dict[str, str] = {
    "financial": "Financial",
    "product": "Product",
    "engagement": "Engagement",
    "preferences": "Preferences and consent",
    "lifecycle": "Lifecycle",
    "first_order": "First order",
    "seasonal": "Seasonal buyers",
    "satisfaction": "Satisfaction",
    "demographics": "Demographics",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _intro() -> list[str]:
    periods = ", ".join(f"`_{p}`" for p in PERIODS)
    seasons = "; ".join(f"{label}: {window}" for label, window in SEASONS.values())
    return [
        "# Data dictionary: the customer analytic record (`car`)",
        "",
        "Generated from the feature registry (`patron.transforms.features`) by",
        "`python -m patron.transforms.features.dictionary`; do not edit by hand.",
        "",
        f"One row per `customer_key` and `as_of_date`, {len(registry())} features. Conventions:",
        "",
        "- **Point in time**: a record at `as_of_date` uses only data strictly before that date's",
        "  midnight (UTC): orders placed, returns received, events, survey answers and customer",
        "  records signed up. `marketing_consent` is the exception: the contract keeps only its",
        "  current value.",
        "- **Money** is in the reporting currency, from the order and line values of",
        "  `patron.transforms.money` (GP2 = net revenue − cost of goods kept − fulfilment − return",
        "  handling; net revenue = price − discount − refunds).",
        f"- **Periods**: suffixes {periods} mean the 90 or 365 days before as_of, or all history.",
        "  `days_ago` is as_of's day number minus the UTC day of the row (1 = the day before).",
        "- **Sources**: `orders` (order values), `lines` (line values with the product's",
        "  category, material, collection), `purchase_days` (UTC days with an order), `rfm` (the",
        "  RFM summary in days), `events`, `surveys`, `records` (customer records); `derived`",
        "  features are computed from other features of the record, named in the definition.",
        "- **Missing data**: sums and counts are 0 for a customer without rows; latest values,",
        "  means, ratios with a zero denominator and days-since without an event are NULL.",
        "- **Optional tables**: only `orders` and `order_lines` are required. The `needs` column",
        "  names the optional tables a feature is computed from; when one of them is absent or",
        "  empty the feature is NULL for every customer (unknown, not zero), and `patron",
        "  features` says which tables it went without.",
        f"- **Lifecycle stage**: new ≤ {NEW_DAYS} days since the first order; active ≤ {ACTIVE_DAYS}",
        f"  days since the last; lapsing ≤ {LAPSED_DAYS}; lapsed beyond; reactivated when the",
        f"  customer came back after more than {LAPSED_DAYS} days and that was ≤ {ACTIVE_DAYS} days ago.",
        f"- **Seasons** (UTC days): {seasons}.",
        "",
    ]


def _summary() -> list[str]:
    lines = ["| group | features |", "|---|---|"]
    for group, features in features_by_group().items():
        anchor = group.replace("_", "-")
        lines.append(f"| [{GROUP_TITLES[group]}](#{anchor}) | {len(features)} |")
    return [*lines, ""]


def _table(features: list[Feature]) -> list[str]:
    lines = ["| feature | type | source | needs | definition | description |", "|---|---|---|---|---|---|"]
    for f in features:
        needs = ", ".join(sorted(required_tables(f.name)))
        lines.append(f"| `{f.name}` | {f.dtype} | {f.source} | {needs} | {_cell(f.definition)} "
                     f"| {_cell(f.description)} |")
    return lines


def dictionary_markdown() -> str:
    """The data dictionary as Markdown: every feature with its group, type, definition and description."""
    lines = [*_intro(), *_summary()]
    for group, features in features_by_group().items():
        lines += [f'<a id="{group.replace("_", "-")}"></a>', "", f"## {GROUP_TITLES[group]}", "", *_table(features), ""]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    print(dictionary_markdown(), end="")
