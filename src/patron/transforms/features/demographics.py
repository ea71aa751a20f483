"""Demographics: age, gender and home country, from the customer's source records.

Where records disagree, each value is taken from the most recently signed-up record
that states it (a store record without a gender does not hide the web account's).
"""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from patron.transforms.features.spec import DERIVED, Feature, feature

GROUP = "demographics"
AGE_BANDS = ((25, "<25"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))


def _latest(column: str, dtype: str) -> Callable[[ir.Table], ir.Value]:
    """The value of ``column`` on the latest signed-up record that states it."""
    return lambda t: (t[f"{column}_rank"] == 0).ifelse(t[column], ibis.null(dtype)).max()


def _age_band(t: ir.Table) -> ir.StringValue:
    cases = [(t.age_years < upper, label) for upper, label in AGE_BANDS]
    return ibis.cases(*cases, (t.age_years.notnull(), "65+"), else_=ibis.null("string"))


FEATURES: tuple[Feature, ...] = (
    feature("birth_year", GROUP, "int64", "birth_year of the latest signed-up record stating it",
            "Year of birth.", source="records", expr=_latest("birth_year", "int64")),
    feature("gender", GROUP, "string", "gender of the latest signed-up record stating it",
            "Gender as stated by the customer.", source="records", expr=_latest("gender", "string")),
    feature("home_country", GROUP, "string", "country of the latest signed-up record stating it",
            "Country of the customer's address.", source="records", expr=_latest("country", "string")),
    feature("age_years", GROUP, "int64", "year(as_of_date) − birth_year",
            "Age in years at as_of (to within a year).", source=DERIVED,
            expr=lambda t: t.as_of_date.year().cast("int64") - t.birth_year),
    feature("age_band", GROUP, "string", "age_years in <25, 25-34, 35-44, 45-54, 55-64, 65+",
            "Age band at as_of, for reporting and fairness checks.", source=DERIVED, expr=_age_band),
    feature("shops_abroad", GROUP, "boolean", "preferred_country != home_country",
            "Whether the customer spends most in a market other than their home country.", source=DERIVED,
            expr=lambda t: t.preferred_country != t.home_country),
)
