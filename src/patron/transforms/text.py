"""Text helpers that behave the same on every engine.

Ibis 12's ``StringValue.strip()`` compiles on Spark to ``TRIM(' \\t\\n\\r\\v\\f' FROM x)``,
and Spark SQL reads ``\\v`` and ``\\f`` as the letters ``v`` and ``f``: 'false' becomes
'alse' and 'Olaf' becomes 'Ola'. patron trims with a regular expression instead.
"""

from __future__ import annotations

import ibis.expr.types as ir

_EDGE_SPACE = r"^\s+|\s+$"


def trim(text: ir.StringValue) -> ir.StringValue:
    """``text`` without leading and trailing whitespace, identically on DuckDB and Spark."""
    return text.re_replace(_EDGE_SPACE, "")


def is_blank(text: ir.StringValue) -> ir.BooleanValue:
    """True where ``text`` is NULL or only whitespace."""
    return text.isnull() | (trim(text) == "")
