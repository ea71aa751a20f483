"""What a CAR feature is: the :class:`Feature` record and the :func:`feature` constructor.

Group modules (``financial``, ``product``, ...) import this module to declare their
features; :mod:`patron.transforms.features.registry` imports the group modules to
collect them. Keeping the declaration here, apart from the registry, means a group
module never imports the registry and the package has no import cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import ibis.expr.types as ir

from patron.transforms.features.context import PER_CUSTOMER_SOURCES, ROW_SOURCES

#: The source of a feature computed from other features of the same record.
DERIVED = "derived"

#: Groups in the order of the data dictionary.
GROUPS: tuple[str, ...] = (
    "financial",
    "product",
    "engagement",
    "preferences",
    "lifecycle",
    "first_order",
    "seasonal",
    "satisfaction",
    "demographics",
)
#: The column types a feature may have.
DTYPES = ("float64", "int64", "boolean", "string")

#: A feature's expression: from its source table (or the record, for derived features) to a value.
Expression = Callable[[ir.Table], ir.Value]


@dataclass(frozen=True)
class Feature:
    """One column of the customer analytic record.

    Attributes
    ----------
    name
        Column name, unique across the registry (lower case, digits and underscores).
    group
        One of :data:`GROUPS`.
    dtype
        Ibis type of the column: ``float64``, ``int64``, ``boolean`` or ``string``.
    definition
        The formula in a line, as the data dictionary shows it.
    description
        What the feature means and why it is there.
    source
        The table the expression reads: a row source, ``rfm`` or ``derived``.
    expr
        The expression: an aggregate over the source's rows of one customer, or a value
        of the customer's row for per-customer and derived sources.
    fill
        The value for a customer the source has no rows for (0 for sums and counts,
        False for flags); ``None`` leaves NULL (no data: no latest score, no first order).
    """

    name: str
    group: str
    dtype: str
    definition: str
    description: str
    source: str
    expr: Expression
    fill: object = None

    def __post_init__(self) -> None:
        """Reject a feature the registry could not compute or document: bad group, type, source or name."""
        if self.group not in GROUPS:
            raise ValueError(f"feature {self.name}: unknown group {self.group!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"feature {self.name}: unknown dtype {self.dtype!r}")
        if self.source not in (*ROW_SOURCES, *PER_CUSTOMER_SOURCES, DERIVED):
            raise ValueError(f"feature {self.name}: unknown source {self.source!r}")
        if not self.name.isidentifier() or self.name != self.name.lower():
            raise ValueError(f"feature name {self.name!r} must be a lower-case identifier")


def feature(name: str, group: str, dtype: str, definition: str, description: str, *, source: str,
            expr: Expression, fill: object = None) -> Feature:
    """A :class:`Feature`; a keyword-friendly constructor for the group modules."""
    return Feature(name, group, dtype, definition, description, source, expr, fill)
