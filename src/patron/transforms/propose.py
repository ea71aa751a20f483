"""Propose a ``[[sources]]`` mapping of an export (``patron init --from FILE``).

The file's header is matched to contract columns by name (case, blanks and underscores
ignored, with the usual synonyms: ``InvoiceNo`` is ``order_id``, ``CustomerID`` is
``customer_id``), and its content tells the rest: the date spelling, a decimal comma,
country names rather than codes, cancelled invoices (ids starting with ``C``). A file
with an order id or a date and something sold (sku, quantity, price or amount) is read
as a flat transaction log. The proposal is TOML text the user can edit; it is checked to
load with the settings parser and to map a sample of the file before it is returned.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from patron.config import SourceMapping, parse_settings
from patron.contract import CONTRACT
from patron.errors import DataContractError, PatronError
from patron.transforms.mapping import apply_mapping, read_whitespace, shipped_map
from patron.transforms.readers import RawFile, read_raw
from patron.transforms.spellings import date_reading

SAMPLE_ROWS = 1000
#: Header names (lower case, without blanks, ``_``, ``-`` or ``.``) read as each contract column.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "order_id": ("orderid", "invoiceno", "invoice", "invoiceid", "invoicenumber", "ordernumber", "orderno",
                 "order", "transactionid", "transaction", "receiptid", "receiptno", "ticketid"),
    "customer_id": ("customerid", "customer", "customerno", "customernumber", "custid", "clientid", "client",
                    "memberid", "member", "userid", "accountid"),
    "ordered_at": ("orderedat", "invoicedate", "date", "orderdate", "timestamp", "transactiondate", "datetime",
                   "purchasedate", "saledate", "createdat", "time"),
    "sku": ("sku", "stockcode", "productid", "product", "productcode", "item", "itemid", "itemcode", "article",
            "articleid", "ean", "upc"),
    "quantity": ("quantity", "qty", "units", "unitssold", "numberofitems", "numberofunits", "pieces"),
    "unit_price": ("unitprice", "price", "itemprice", "priceeach", "sellingprice"),
    "amount": ("amount", "total", "value", "sales", "revenue", "linetotal", "totalprice", "netsales",
               "salesamount", "ordervalue", "ordertotal"),
    "country": ("country", "countrycode", "countryname", "market"),
    "email": ("email", "emailaddress", "mail", "customeremail"),
    "channel": ("channel", "saleschannel"),
    "store_id": ("store", "storeid", "storecode", "shop", "shopid"),
    "currency": ("currency", "currencycode", "curr"),
    "loyalty_id": ("loyaltyid", "loyaltynumber", "loyaltycard", "cardnumber"),
    "discount": ("discount", "discountamount"),
    "unit_cost": ("unitcost", "cost", "cogs"),
    "line_no": ("lineno", "linenumber", "line"),
}
#: Wider patterns tried on the columns no synonym claimed (``number_of_cds``, ``dollar_value``).
PATTERNS: tuple[tuple[str, str], ...] = (
    ("quantity", r"^(numberof|nb|num)|qty|quantity"),
    ("amount", r"value$|amount$|total$|revenue$|sales$"),
    ("ordered_at", r"date$|^date"),
)
SOLD = ("sku", "quantity", "unit_price", "amount")
#: The currency of the most common country, for the ``currency`` constant (checked by the user).
CURRENCIES = {
    "GB": "GBP", "US": "USD", "CA": "CAD", "AU": "AUD", "NZ": "NZD", "CH": "CHF", "NO": "NOK", "SE": "SEK",
    "DK": "DKK", "PL": "PLN", "CZ": "CZK", "HU": "HUF", "JP": "JPY", "CN": "CNY", "HK": "HKD", "SG": "SGD",
    "IN": "INR", "BR": "BRL", "MX": "MXN", "ZA": "ZAR", "AE": "AED", "SA": "SAR", "IL": "ILS", "KR": "KRW",
    "TR": "TRY", "RO": "RON", "IS": "ISK", "TW": "TWD", "TH": "THB", "MY": "MYR", "ID": "IDR", "PH": "PHP",
    **dict.fromkeys(("AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV",
                     "MT", "NL", "PT", "SI", "SK"), "EUR"),
}


@dataclass
class Proposal:
    """A proposed ``[[sources]]`` entry: its TOML text, the parsed mapping and what was guessed."""

    toml: str
    source: SourceMapping
    summary: list[str] = field(default_factory=list)


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-.]+", "", name.lower())


def guess_columns(names: list[str]) -> dict[str, str]:
    """Contract column → file column, by synonym first, then by wider patterns; each file column once."""
    guessed: dict[str, str] = {}
    by_norm = {_norm(n): n for n in names}
    for column, synonyms in SYNONYMS.items():
        hit = next((by_norm[s] for s in synonyms if s in by_norm and by_norm[s] not in guessed.values()), None)
        if hit is not None:
            guessed[column] = hit
    for column, pattern in PATTERNS:
        if column not in guessed:
            hit = next((n for n in names if n not in guessed.values() and re.search(pattern, _norm(n))), None)
            if hit is not None:
                guessed[column] = hit
    return guessed


def _read(path: Path) -> tuple[RawFile, str | None]:
    """The file, and ``"whitespace"`` when its fields are separated by runs of blanks."""
    raw = read_raw(path)
    header = raw.table.column_names
    if len(header) == 1 and len(header[0].split()) > 1:
        return read_whitespace(path), "whitespace"
    return raw, None


def _values(raw: RawFile, column: str, rows: int | None = SAMPLE_ROWS) -> pa.Array:
    text = raw.table[column].combine_chunks()
    text = text if rows is None else text.slice(0, rows)
    text = pc.utf8_trim_whitespace(pc.fill_null(text, ""))
    return text.filter(pc.not_equal(text, ""))


def _number_spelling(raw: RawFile, columns: list[str]) -> tuple[str, str]:
    """(decimal, thousands) the sample's numbers are written with."""
    texts = [v for c in columns for v in _values(raw, c).to_pylist()]
    comma = any(re.search(r"\d,\d{1,2}$", v) for v in texts) or (
        any(re.search(r"\d,\d+$", v) for v in texts) and not any("." in v for v in texts))
    point = any(re.search(r"\d\.\d{1,2}$", v) for v in texts)
    if comma and not point:
        return ",", "." if any(re.search(r"\d\.\d{3}(\D|$)", v) for v in texts) else ""
    return ".", "," if any(re.search(r"\d,\d{3}(\D|$)", v) for v in texts) else ""


def _date_format(raw: RawFile, column: str, where: str, notes: list[str]) -> str | None:
    values = _values(raw, column, rows=None)
    if len(values) and pc.all(pc.match_substring_regex(values, r"^[0-9]{8}$")).as_py():
        notes.append(f"dates in {column} read as yyyymmdd (date_format = \"%Y%m%d\")")
        return "%Y%m%d"
    try:
        formats, warning = date_reading(values, where=where)
    except DataContractError:
        notes.append(f"dates in {column} read both day-first and month-first: day_first is a GUESS, check it")
        return "day_first"
    if formats is None:
        if warning is None and len(values) and not pc.any(pc.match_substring_regex(values, r"^[0-9]{4}-")).as_py():
            notes.append(f"dates in {column} were not recognised: set date_format to a strftime pattern")
        return None
    reading = "day_first" if formats[0].startswith("%d") else "month_first"
    notes.append(f"dates in {column} read {reading.replace('_', '-')}")
    return reading


def _is_names(raw: RawFile, column: str) -> bool:
    values = _values(raw, column)
    codes = pc.sum(pc.match_substring_regex(values, r"^[A-Za-z]{2}$")).as_py() or 0
    return len(values) > 0 and codes < 0.9 * len(values)


def _cancellations(raw: RawFile, column: str) -> bool:
    values = _values(raw, column, rows=None)
    cancelled = pc.sum(pc.match_substring_regex(values, r"^[Cc][0-9]")).as_py() or 0
    return 0 < cancelled < len(values)


def _table_for(path: Path, names: list[str]) -> str:
    from patron.transforms.ingest import table_for_path

    try:
        return table_for_path(path)
    except PatronError:
        lowered = {n.lower() for n in names}
        best = max(CONTRACT, key=lambda t: len(lowered & set(CONTRACT[t].column_names)))
        if not lowered & set(CONTRACT[best].column_names):
            raise DataContractError(
                f"{path}: no column looks like an order id, date or something sold, and the file's name and "
                "columns name no contract table; write its [[sources]] entry by hand (see docs/mapping.md)"
            ) from None
        return best


def _source_name(path: Path) -> str:
    return re.sub(r"[^a-z0-9]+", "_", path.stem.lower()).strip("_") or "source"


def _shown_path(path: Path, project_dir: Path) -> str:
    try:
        return path.resolve().relative_to(project_dir.resolve()).as_posix()
    except ValueError:
        return path.resolve().as_posix()


def propose_source(path: Path | str, *, project_dir: Path | str = ".", name: str | None = None) -> Proposal:
    """A ``[[sources]]`` entry mapping ``path`` to the contract, for ``patron.toml`` in ``project_dir``."""
    path, project_dir = Path(path), Path(project_dir)
    raw, delimiter = _read(path)
    names = raw.table.column_names
    guessed = guess_columns(names)
    notes: list[str] = []
    name = name or _source_name(path)
    entry: dict[str, object] = {"name": name, "path": _shown_path(path, project_dir)}
    transactions = bool({"order_id", "ordered_at"} & set(guessed)) and bool(set(SOLD) & set(guessed))
    table = None if transactions else _table_for(path, names)
    if transactions:
        entry["layout"] = "transactions"
        if "unit_price" in guessed:
            guessed.pop("amount", None)
    else:
        entry["table"] = table
        known = set(CONTRACT[str(table)].column_names)
        guessed = {c: f for c, f in guessed.items() if c in known}
    if delimiter:
        entry["delimiter"] = delimiter
    numeric = [guessed[c] for c in ("quantity", "unit_price", "amount", "discount", "unit_cost") if c in guessed]
    decimal, thousands = _number_spelling(raw, numeric)
    if decimal != ".":
        entry["decimal"] = decimal
        notes.append("numbers use a decimal comma")
    if thousands:
        entry["thousands"] = thousands
    date_column = guessed.get("ordered_at")
    if date_column:
        date_format = _date_format(raw, date_column, f"{path}: column {date_column!r}", notes)
        if date_format:
            entry["date_format"] = date_format
    values: dict[str, str] = {}
    if "country" in guessed and _is_names(raw, guessed["country"]):
        values["country"] = "country_names"
        entry["unmapped"] = "reject"
        notes.append(f"{guessed['country']} holds country names: mapped to ISO codes by country_names; "
                     "names it does not know are rejected")
    exclude = []
    if transactions and "order_id" in guessed and _cancellations(raw, guessed["order_id"]):
        exclude.append([guessed["order_id"], "starts with", "C"])
        notes.append(f"{guessed['order_id']} values starting with C are cancellations: excluded")
    if exclude:
        entry["exclude"] = exclude
    constants = _constants(raw, guessed, transactions, table, values, notes)
    toml = _toml(entry, guessed, constants, values, names, transactions, table)
    source = parse_settings(tomllib.loads(toml), project_dir).sources[0]
    sample = RawFile(raw.path, raw.sha256, raw.table.slice(0, SAMPLE_ROWS), raw.lines.slice(0, SAMPLE_ROWS))
    apply_mapping(sample, source)  # the proposal must map its own file
    listed = ", ".join(f"{c} = {f}" for c, f in guessed.items())
    layout = "a flat transaction log (orders and order_lines)" if transactions else f"table {table}"
    summary = [f"{path.name}: {raw.table.num_rows:,} rows read as {layout}", f"columns: {listed or 'none guessed'}",
               *notes]
    return Proposal(toml, source, summary)


def _constants(raw: RawFile, guessed: dict[str, str], transactions: bool, table: str | None,
               values: dict[str, str], notes: list[str]) -> dict[str, str]:
    """Constants for the required order columns the file lacks."""
    if not transactions and table != "orders":
        return {}
    constants: dict[str, str] = {}
    if "channel" not in guessed:
        constants["channel"] = "online"
        notes.append('channel = "online" for every order (no channel column): check it')
    if "country" not in guessed:
        constants["country"] = "ZZ"
        notes.append('no country column: country = "ZZ" (unknown); set the ISO code of your market')
    if "currency" not in guessed:
        code = None
        if "country" in guessed:
            text = _values(raw, guessed["country"], rows=None).to_pylist()
            mapping = {k.lower(): v for k, v in shipped_map("country_names").items()} if values else {}
            common = Counter(mapping.get(t.lower(), t.upper()) for t in text).most_common(1)
            code = CURRENCIES.get(common[0][0]) if common else None
        constants["currency"] = code or "EUR"
        notes.append(f'currency = "{constants["currency"]}" for every order '
                     f'({"from the most common country" if code else "no currency column"}): check it')
    return constants


def _toml(entry: dict[str, object], guessed: dict[str, str], constants: dict[str, str], values: dict[str, str],
          names: list[str], transactions: bool, table: str | None) -> str:
    def text(value: object) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["# Proposed by `patron init --from`: check every line (see docs/mapping.md).", "[[sources]]"]
    lines += [f"{key} = {text(value)}" for key, value in entry.items()]
    lines.append("[sources.columns]            # contract column = column of the file")
    lines += [f"{column} = {text(name)}" for column, name in guessed.items()]
    tables = ("orders", "order_lines") if transactions else (str(table),)
    possible = [c for t in tables for c in CONTRACT[t].column_names] + (["amount"] if transactions else [])
    open_columns = [c for c in dict.fromkeys(possible)
                    if c not in guessed and c not in constants and c != "source"
                    and not (c == "amount" and "unit_price" in guessed)
                    and not (c == "unit_price" and "amount" in guessed)]
    lines += [f'# {column} = ""' for column in open_columns]
    unused = [n for n in names if n not in guessed.values() and n not in _excluded_columns(entry)]
    if unused:
        lines.append(f"# file columns not used: {', '.join(unused)}")
    if constants:
        lines.append("[sources.constants]          # contract column = the same value on every row")
        lines += [f"{column} = {text(value)}" for column, value in constants.items()]
    if values:
        lines.append("[sources.values]             # contract column = a value map")
        lines += [f"{column} = {text(value)}" for column, value in values.items()]
    return "\n".join(lines) + "\n"


def _excluded_columns(entry: dict[str, object]) -> list[str]:
    return [str(rule[0]) for rule in entry.get("exclude", [])]  # type: ignore[union-attr]
