"""Identity resolution, part one: normalised identifiers, deterministic links and components.

Records of one person carry the same identifiers written differently (``' Ann@X.com'``
and ``'ann@x.com'``, ``'+45 12 34 56 78'`` and ``'12345678'``). This module brings them
to one form and links records that share one:

* **Strong keys**: a loyalty number or a normalised e-mail shared by two records makes
  them the same person.
* **Phone, corroborated**: a normalised phone links two records only when they also
  agree on one of ``IdentitySettings.phone_corroboration`` (first name or birth year
  by default). A household shares a landline and a surname, so the surname is not
  enough on its own; a phone alone never links.
* **Placeholders**: a key value held by more than ``max_records_per_key`` records
  (``'noreply@shop.com'``, a till's dummy loyalty card) is treated as no value.

Linked records form connected components, found in the engine by label propagation.
Records that no rule joins are left for probabilistic matching (``identity_linkage``).
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis import _

from patron.config import IdentitySettings
from patron.errors import ConvergenceError
from patron.transforms.text import trim

if TYPE_CHECKING:
    from patron.engine import Warehouse

#: Accented letters folded to their base letter in names (``str.translate`` in the engine).
_ACCENTED = "àáâãäåāăąçćčďèéêëēėęěğìíîïīįıłñńňòóôõöøōőŕřśšşťùúûüūůűųýÿźżž"
_PLAIN = "aaaaaaaaacccdeeeeeeeegiiiiiiilnnnoooooooorrssstuuuuuuuuyyzzz"
_FOLD = str.maketrans(_ACCENTED, _PLAIN)
#: What a value pseudonymised at ingest starts with (:mod:`patron.transforms.pseudonyms`).
PSEUDONYM_PREFIX = "h:"


# -- normalisation -------------------------------------------------------------------------------
def _blank_to_null(value: ir.StringValue) -> ir.StringValue:
    return ibis.ifelse(value.length() == 0, ibis.null("string"), value)


def normalise_email(email: ir.StringValue) -> ir.StringValue:
    """Lower case and trimmed; blank is NULL. Nothing cleverer (no gmail dot removal):
    providers differ on which variants reach one mailbox."""
    return _blank_to_null(trim(email).lower())


def normalise_name(name: ir.StringValue) -> ir.StringValue:
    """Lower case, accents folded (``'Søren'`` → ``'soren'``), runs of spaces collapsed, trimmed."""
    folded = name.lower().translate(_ACCENTED, _PLAIN)
    return _blank_to_null(trim(folded.re_replace(r"\s+", " ")))


def normalise_code(value: ir.StringValue) -> ir.StringValue:
    """Upper case without spaces or hyphens: postcodes (``'1234 ab'`` → ``'1234AB'``), loyalty ids."""
    return _blank_to_null(value.upper().re_replace(r"[\s\-]", ""))


def email_for_matching(email: str | None) -> str | None:
    """Trimmed and lower-cased e-mail, the Python twin of :func:`normalise_email`; blank gives None.

    Also the form Google Customer Match and Meta custom audiences hash (:mod:`patron.activation.exports`).
    """
    if not isinstance(email, str):  # None, or NaN from a frame
        return None
    text = email.strip().lower()
    return text or None


def name_for_matching(name: str | None) -> str | None:
    """Lower case, accents folded, spaces collapsed: the Python twin of :func:`normalise_name`."""
    if not isinstance(name, str):
        return None
    text = " ".join(name.lower().translate(_FOLD).split())
    return text or None


def code_for_matching(code: str | None) -> str | None:
    """Upper case without whitespace or hyphens: the Python twin of :func:`normalise_code`."""
    if not isinstance(code, str):
        return None
    text = re.sub(r"[\s\-]", "", code.upper())
    return text or None


def phone_to_e164(raw: str | None, country: str | None) -> str | None:
    """One phone in E.164 (``'+4512345678'``), read with ``country`` as the default region.

    A leading ``00`` is read as the international prefix (``+``), as in most of the
    world; numbers that cannot be parsed or have an impossible length give None.
    """
    import phonenumbers

    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, country or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_lookup(customers: ir.Table, warehouse: Warehouse, temps: list[str]) -> ir.Table:
    """A table (phone, country, phone_e164) for every distinct phone of ``customers``.

    phonenumbers is Python, so the distinct (phone, country) pairs stream to the driver in
    Arrow batches, are normalised there and are written back. This
    needs no Python UDF on the workers (Spark executors may lack phonenumbers or run
    another Python) and parses each distinct string once.
    """
    known = customers.filter(customers.phone.notnull())
    pairs = known.select("phone", country=known.country.fill_null("")).distinct()  # '' joins, NULL would not
    schema = pa.schema([("phone", pa.string()), ("country", pa.string()), ("phone_e164", pa.string())])
    batches = []
    for batch in warehouse.batches(pairs, chunk_size=200_000):
        phones, countries = batch.column("phone").to_pylist(), batch.column("country").to_pylist()
        e164 = [p if p.startswith(PSEUDONYM_PREFIX) else phone_to_e164(p, c)  # hashed at ingest: already E.164
                for p, c in zip(phones, countries, strict=True)]
        batches.append(pa.table([batch.column("phone"), batch.column("country"), pa.array(e164, pa.string())],
                                schema=schema))
    return scratch(warehouse, pa.concat_tables(batches) if batches else schema.empty_table(), "phones", temps)


def normalise_customers(customers: ir.Table, phones: ir.Table) -> ir.Table:
    """Customer records with a record id ``rid`` and normalised identifiers and names.

    ``rid`` is ``source || ':' || customer_id``; ``phones`` is ``phone_lookup``'s table.
    """
    joined = customers.left_join(
        phones, (customers.phone == phones.phone) & (customers.country.fill_null("") == phones.country))
    return joined.select(
        rid=joined.source + ":" + joined.customer_id,
        source=joined.source,
        customer_id=joined.customer_id,
        email=normalise_email(joined.email),
        phone=joined.phone_e164,
        first_name=normalise_name(joined.first_name),
        last_name=normalise_name(joined.last_name),
        postcode=normalise_code(joined.postcode),
        birth_year=joined.birth_year.cast("int64"),
        loyalty_id=normalise_code(joined.loyalty_id),
    )


# -- deterministic links -------------------------------------------------------------------------
def _usable(records: ir.Table, key: str, max_records: int) -> ir.Table:
    """Records whose ``key`` is present and held by at most ``max_records`` records."""
    present = records.filter(records[key].notnull())
    counted = present.mutate(_n=_.rid.count().over(group_by=key), _first=_.rid.min().over(group_by=key))
    return counted.filter((_._n > 1) & (_._n <= max_records))


def strong_edges(records: ir.Table, key: str, max_records: int) -> ir.Table:
    """Edges (src, dst, method) joining each record to the smallest record sharing ``key``.

    A star per key value links the same components as all pairs, in linear size.
    """
    usable = _usable(records, key, max_records)
    return usable.filter(usable.rid != usable._first).select(src=_.rid, dst=_._first,
                                                             method=ibis.literal(key))


def phone_edges(records: ir.Table, corroboration: tuple[str, ...], max_records: int) -> ir.Table:
    """Edges between records sharing a phone and agreeing on one of ``corroboration``."""
    usable = _usable(records, "phone", max_records)
    left = usable.select("rid", "phone", *corroboration)
    right = left.view()
    agree = ibis.or_(*[left[c].notnull() & (left[c] == right[c]) for c in corroboration])
    pairs = left.join(right, (left.phone == right.phone) & (left.rid < right.rid) & agree)
    return pairs.select(src=right.rid, dst=left.rid, method=ibis.literal("phone"))


def deterministic_edges(records: ir.Table, settings: IdentitySettings) -> ir.Table:
    """All deterministic edges: loyalty id, e-mail, then corroborated phone."""
    cap = settings.max_records_per_key
    return ibis.union(strong_edges(records, "loyalty_id", cap), strong_edges(records, "email", cap),
                      phone_edges(records, settings.phone_corroboration, cap), distinct=False)


def record_methods(edges: ir.Table) -> ir.Table:
    """(rid, method): the strongest rule among a record's edges (loyalty id > e-mail > phone)."""
    ends = ibis.union(edges.select(rid=_.src, method=_.method), edges.select(rid=_.dst, method=_.method),
                      distinct=False)
    rank = ends.method.cases(("loyalty_id", 1), ("email", 2), else_=3)
    best = ends.mutate(rank=rank).group_by("rid").aggregate(rank=_.rank.min())
    return best.select("rid", method=best.rank.cases((1, "loyalty_id"), (2, "email"), else_="phone"))


# -- connected components ------------------------------------------------------------------------
def temp_name(prefix: str) -> str:
    """A fresh name for a scratch table of identity resolution (``_patron_<prefix>_<hex>``)."""
    return f"_patron_{prefix}_{uuid.uuid4().hex[:10]}"


def scratch(warehouse: Warehouse, obj: ir.Table | pa.Table, prefix: str, temps: list[str]) -> ir.Table:
    """Write ``obj`` to a new uniquely named scratch table, note its name in ``temps``, return it.

    Scratch tables are created directly (no staging and swap: nothing reads them before they
    exist), which halves the catalog work per step on Spark.
    """
    name = temp_name(prefix)
    temps.append(name)
    return warehouse.create(name, obj)


def connected_components(nodes: ir.Table, edges: ir.Table, warehouse: Warehouse, *,
                         max_iterations: int, temps: list[str]) -> tuple[ir.Table, int]:
    """Label each node with the smallest node label of its component (min-label propagation).

    Parameters
    ----------
    nodes
        (node, label): every node with its starting label (usually itself).
    edges
        (src, dst): undirected links between nodes.
    warehouse
        Where each round's labels are written, so that the expression stays one round deep.
    max_iterations
        Rounds allowed; a component wider than this raises ``ConvergenceError``.
    temps
        The scratch tables written are added here; the caller drops them after use.

    Returns
    -------
    tuple
        The final (node, label) table and the rounds used.
    """
    both = ibis.union(edges.select(a=_.src, b=_.dst), edges.select(a=_.dst, b=_.src), distinct=True)
    both = scratch(warehouse, both, "edges", temps)
    labels = nodes.select("node", "label")
    for iteration in range(1, max_iterations + 1):
        heard = both.join(labels, both.b == labels.node).group_by(node=both.a).aggregate(
            heard=_.label.min())
        step = labels.left_join(heard, labels.node == heard.node)
        new = step.select(node=labels.node, label=ibis.least(labels.label, step.heard.fill_null(labels.label)),
                          changed=(step.heard.notnull() & (step.heard < labels.label)))
        current = scratch(warehouse, new, "labels", temps)
        changed = warehouse.count(current.filter(current.changed))
        labels = current.select("node", "label")
        if changed == 0:
            return labels, iteration
    raise ConvergenceError(f"identity components did not settle in {max_iterations} label-propagation "
                           "rounds; raise identity max_iterations or look for a placeholder key")


def cluster_key(label: ir.StringValue) -> ir.StringValue:
    """The customer key of a cluster: ``'C'`` + 16 hex digits of the MD5 of its smallest record id.

    MD5 is computed the same way on every engine, so a cluster keeps its key across
    engines and runs as long as its smallest record stays in it.
    """
    return "C" + label.hexdigest("md5").substr(0, 16)
