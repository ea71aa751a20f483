"""Ids, numbers and dates as people export them, rewritten to the spellings ingest checks.

Spreadsheets and BI tools write ``17850.0`` for the id 17850, ``1.234,56`` for 1234.56 and
``09/12/2011 12:50`` for a timestamp. A source mapping (``[[sources]]`` in ``patron.toml``)
says which spelling a file uses; these functions rewrite whole text columns with
``pyarrow.compute`` before ingest coerces and checks them. A value they cannot read is
left as it is, so that ingest rejects it with its own reason and line.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from patron.errors import DataContractError

#: Id columns whose values exports write as integral floats (``17850.0``).
ID_COLUMNS = ("order_id", "customer_id", "loyalty_id", "store_id", "sku")
#: Day-first and month-first spellings tried when a file's dates are not ISO; each may carry a time.
DAY_FIRST = ("%d/%m/%Y", "%d.%m.%Y", "%d-%m-%Y")
MONTH_FIRST = ("%m/%d/%Y",)
TIMES = ("", " %H:%M", " %H:%M:%S")
READINGS = {"day_first": DAY_FIRST, "month_first": MONTH_FIRST}
ISO_FORMATS = ("%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
_ISO = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?)?(Z|[+-][0-9]{2}:[0-9]{2})?$"
_ISO_NAIVE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2})?)?$"
_INTEGRAL_FLOAT = r"^(\s*[+-]?[0-9]+)[.]0+(\s*)$"
_SPACES = (" ", "\u00a0", "\u202f")  # thousands written with a blank: plain, no-break or narrow no-break


def integral_ids(text: pa.Array) -> pa.Array:
    """``17850.0`` → ``17850``; any other text unchanged."""
    return pc.replace_substring_regex(text, _INTEGRAL_FLOAT, r"\1\2")


def plain_numbers(text: pa.Array, *, decimal: str = ".", thousands: str = "") -> pa.Array:
    """Numbers written with ``thousands`` separators and a ``decimal`` comma, as ``1234.56``."""
    for mark in (_SPACES if thousands == " " else (thousands,) if thousands else ()):
        text = pc.replace_substring(text, mark, "")
    if decimal == ",":
        text = pc.replace_substring(text, ",", ".")
    return text


def with_times(dates: tuple[str, ...]) -> tuple[str, ...]:
    """Each date pattern alone and followed by ``HH:MM`` or ``HH:MM:SS``."""
    return tuple(d + t for d in dates for t in TIMES)


def _parsed(text: pa.Array, formats: tuple[str, ...]) -> pa.Array:
    """Instants of ``text`` under the first of ``formats`` that reads each value; NULL if none does."""
    attempts = [pc.strptime(text, format=f, unit="s", error_is_null=True) for f in formats]
    return attempts[0] if len(attempts) == 1 else pc.coalesce(*attempts)


def _reads_all(values: pa.Array, formats: tuple[str, ...]) -> bool:
    return len(values) > 0 and _parsed(values, formats).null_count == 0


def date_reading(text: pa.Array, *, where: str) -> tuple[tuple[str, ...] | None, str | None]:
    """The patterns the non-blank values of ``text`` are written in, and a warning saying which.

    ISO values (and a column with no values) need none: ``(None, None)``. Otherwise the
    day-first and month-first readings are tried: exactly one reading every value is used;
    both (every day is 12 or less) raise ``DataContractError`` asking for ``date_format``;
    neither leaves the values to ingest, which rejects them row by row.
    """
    values = pc.unique(pc.utf8_trim_whitespace(text))
    values = values.filter(pc.not_equal(values, ""))
    if not len(values) or pc.all(pc.match_substring_regex(values, _ISO)).as_py():
        return None, None
    day = _reads_all(values, with_times(DAY_FIRST))
    month = _reads_all(values, with_times(MONTH_FIRST))
    if day and month:
        raise DataContractError(
            f"{where}: the dates read both day-first and month-first (no day is above 12), e.g. "
            f"{values[0].as_py()!r}; set date_format = \"day_first\" or \"month_first\" (or a strftime "
            "pattern) for this source in patron.toml"
        )
    if day or month:
        reading = "day_first" if day else "month_first"
        example = values[0].as_py()
        return with_times(READINGS[reading]), f"{where}: dates read {reading.replace('_', '-')} (e.g. {example!r})"
    return None, None


def date_formats(date_format: str | None) -> tuple[str, ...] | None:
    """The patterns a source's ``date_format`` stands for; None when it is unset."""
    if date_format is None:
        return None
    return with_times(READINGS[date_format]) if date_format in READINGS else (date_format,)


def iso_instants(text: pa.Array, *, kind: str, date_format: str | None, time_zone: str,
                 where: str, among: pa.Array | None = None) -> tuple[pa.Array, list[str]]:
    """Timestamps (``kind = "timestamp"``) or dates (``"date"``) of ``text`` as ISO text.

    Values are read with ``date_format`` (a strftime pattern or a reading), else detected
    (``date_reading``). Naive timestamps are taken in ``time_zone`` and written in UTC
    (``2011-12-09T12:50:00Z``). Values that do not parse keep their text; blank stays blank.
    ``among`` (a mask) limits detection to the rows that will be loaded.
    """
    clean = pc.utf8_trim_whitespace(pc.fill_null(text, ""))
    formats = date_formats(date_format)
    warnings: list[str] = []
    if formats is None:
        formats, warning = date_reading(clean if among is None else clean.filter(among), where=where)
        warnings += [warning] if warning else []
    if formats is None:  # ISO already: only naive timestamps away from UTC need rewriting
        if kind != "timestamp" or time_zone == "UTC":
            return text, warnings
        formats = ISO_FORMATS
        naive = pc.match_substring_regex(clean, _ISO_NAIVE)
    else:
        naive = pc.not_equal(clean, "")
    parsed = _parsed(clean, formats)
    if kind == "date":
        written = pc.strftime(parsed, format="%Y-%m-%d")
    else:
        local = pc.assume_timezone(parsed, timezone=time_zone, ambiguous="earliest", nonexistent="earliest")
        utc = local.cast(pa.timestamp("s", tz="UTC"))
        written = pc.binary_join_element_wise(pc.strftime(utc, format="%Y-%m-%dT%H:%M:%S"), "Z", "")
    rewrite = pc.and_(naive, pc.is_valid(parsed))
    return pc.if_else(rewrite, written, text), warnings
