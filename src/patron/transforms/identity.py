"""Identity resolution (``patron resolve``): one ``customer_key`` per person across web, store and CRM.

Steps, each an engine-neutral Ibis expression written to the warehouse between steps:

0. gather the records: the ``customers`` table (which may be absent or empty), and one
   record for each account (``source``, ``customer_id``) that orders name but no customer
   record holds, carrying the e-mail and loyalty id found on its orders;
1. normalise identifiers (``identity_rules``): e-mail lower-case and trimmed, phone in
   E.164 (phonenumbers, the record's country as default region), names lower-case with
   accents folded, postcodes and loyalty ids upper-case without spaces;
2. deterministic links: shared loyalty id or e-mail (strong keys), shared phone only with
   a corroborating first name or birth year; connected components by label propagation;
3. probabilistic matching with Splink (``identity_linkage``) of the records no rule
   joined, each attached to its best partner at or above ``match_threshold``; skipped,
   with a note, when the records hold too little to train it on;
4. ``identity_map`` (source, customer_id, customer_key, method, match_probability);
5. ``order_keys`` (order_id, customer_key, method): by the order's account, else its
   loyalty id, else its e-mail; orders with no identifier stay anonymous (NULL key).

``pairwise_metrics`` and ``order_attachment_rate`` score the result against the synthetic
retailer's ground truth. What the run skipped is said in plain words in
``IdentityResult.notes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
from ibis import _

from patron.contract import CUSTOMERS
from patron.transforms.identity_linkage import linkage_gaps, prior_match_probability, probabilistic_links
from patron.transforms.identity_rules import (
    IdentitySettings,
    cluster_key,
    connected_components,
    deterministic_edges,
    normalise_code,
    normalise_customers,
    normalise_email,
    phone_lookup,
    record_methods,
    scratch,
)

if TYPE_CHECKING:
    from patron.engine import Warehouse

__all__ = ["IdentityResult", "IdentitySettings", "PairwiseMetrics", "account_records", "order_attachment_rate",
           "order_keys", "pairwise_metrics", "resolve_identities"]

#: The customer columns identity resolution reads.
RECORD_COLUMNS = ("source", "customer_id", "email", "phone", "first_name", "last_name", "postcode", "country",
                  "birth_year", "loyalty_id")

NO_CUSTOMERS = ("no customers table: each account on the orders (source, customer_id) is one person, joined "
                "to others only by the e-mail or loyalty id on its orders; probabilistic matching skipped")


@dataclass(frozen=True)
class IdentityResult:
    """What identity resolution wrote, and how it went.

    Attributes
    ----------
    identity_map
        (source, customer_id, customer_key, method, match_probability), one row per record.
    order_keys
        (order_id, customer_key, method), one row per order.
    iterations
        Label-propagation rounds of the deterministic and the probabilistic step.
    probabilistic_links
        Records that Splink attached to another record.
    notes
        What the run skipped or assumed, in plain words (no customers table, accounts only
        orders name, probabilistic matching skipped and why).
    """

    identity_map: ir.Table
    order_keys: ir.Table
    iterations: tuple[int, int]
    probabilistic_links: int
    notes: tuple[str, ...] = ()


class PairwiseMetrics(NamedTuple):
    """Pairwise precision, recall and F1 of a clustering against the true persons."""

    precision: float
    recall: float
    f1: float


def _record_columns(table: ir.Table) -> ir.Table:
    """``RECORD_COLUMNS`` of ``table`` in the contract's types; an absent column is NULL."""
    schema = CUSTOMERS.schema()
    return table.select(**{c: (table[c] if c in table.columns else ibis.null()).cast(schema[c])
                           for c in RECORD_COLUMNS})


def account_records(customers: ir.Table, orders: ir.Table) -> ir.Table:
    """A record for each account (source, customer_id) that orders name and ``customers`` lacks.

    Real exports often hold orders only, or orders whose accounts the customer file misses.
    Each such account is a record with the country, normalised e-mail and loyalty id of its
    orders (the smallest, when its orders carry several), so that rules and guest orders can
    still join it; its other identifiers are NULL.
    """
    named = orders.filter(orders.customer_id.notnull())
    accounts = named.group_by(["source", "customer_id"]).aggregate(
        email=normalise_email(named.email).min(), loyalty_id=normalise_code(named.loyalty_id).min(),
        country=named.country.min())
    return _record_columns(accounts.anti_join(customers, ["source", "customer_id"]))


def _gather_records(customers: ir.Table | None, orders: ir.Table, warehouse: Warehouse,
                    temps: list[str], notes: list[str]) -> ir.Table:
    """The customer records with those of the accounts only orders name (``account_records``)."""
    absent = customers is None
    if absent:
        customers = scratch(warehouse, CUSTOMERS.schema().to_pyarrow().empty_table(), "customers", temps)
        notes.append(NO_CUSTOMERS)
    base = _record_columns(customers)
    extra = scratch(warehouse, account_records(base, orders), "accounts", temps)
    if not absent:
        missing = warehouse.count(extra)
        if missing:
            counted = "1 account on the orders has" if missing == 1 else f"{missing:,} accounts on the orders have"
            notes.append(f"{counted} no customers record: each is a person of its own, joined to others only by "
                         "the e-mail or loyalty id on its orders")
    return base.union(extra, distinct=False)


def _pairs(count: ir.IntegerValue) -> ir.IntegerValue:
    """n choose 2."""
    return count * (count - 1) // 2


def _cluster(records: ir.Table, labels: ir.Table) -> ir.Table:
    """Records with their deterministic ``cluster`` and ``single`` (1 when alone in it)."""
    joined = records.join(labels, records.rid == labels.node).drop("node").rename(cluster="label")
    return joined.mutate(single=(_.rid.count().over(group_by="cluster") == 1).cast("int64"))


def _final_clusters(clustered: ir.Table, links: ir.Table | None, warehouse: Warehouse,
                    settings: IdentitySettings, temps: list[str]) -> tuple[ir.Table, int]:
    """(cluster, final): deterministic clusters merged along the probabilistic links."""
    clusters = clustered.select(node=_.cluster, label=_.cluster).distinct()
    if links is None:
        return clusters.select(cluster=_.node, final=_.label), 0
    edges = links.select(src=_.rid, dst=_.target_cluster)
    labels, rounds = connected_components(clusters, edges, warehouse, max_iterations=settings.max_iterations,
                                          temps=temps)
    return labels.select(cluster=_.node, final=_.label), rounds


def _link_probability(links: ir.Table | None) -> ir.Table | None:
    """(rid, match_probability): the best probabilistic link touching each record, either end."""
    if links is None:
        return None
    ends = ibis.union(links.select(rid=_.rid, p=_.match_probability),
                      links.select(rid=_.target, p=_.match_probability), distinct=False)
    return ends.group_by("rid").aggregate(match_probability=_.p.max())


def build_identity_map(clustered: ir.Table, methods: ir.Table, finals: ir.Table,
                       probabilities: ir.Table | None) -> ir.Table:
    """One row per record: its customer key, the rule that placed it, the match probability, and the record's
    e-mail, phone and loyalty id as resolution compared them (``match_email``, ``match_phone`` in E.164,
    ``match_loyalty_id``; NULL when absent or, for a phone, unparsable).

    A record joined by a rule has probability 1; one that only Splink joined has its best
    link's probability; a record alone in its final cluster is ``single`` with NULL. The
    normalised identifiers let the serving layer's look-ups be built without parsing every
    phone again (:func:`patron.serving.publish.identity_rows`).
    """
    step = clustered.join(finals, "cluster").left_join(methods, "rid").drop("rid_right")
    if probabilities is not None:
        step = step.left_join(probabilities, "rid").drop("rid_right")
    else:
        step = step.mutate(match_probability=ibis.null("float64"))
    step = step.mutate(_size=_.rid.count().over(group_by="final"))
    method = ibis.cases((step.method.notnull(), step.method), (step._size > 1, "probabilistic"),
                        else_="single")
    probability = ibis.cases((step.method.notnull(), ibis.literal(1.0)),
                             (step._size > 1, step.match_probability.cast("float64")),
                             else_=ibis.null("float64"))
    return step.select("source", "customer_id", customer_key=cluster_key(step.final), method=method,
                       match_probability=probability, match_email=step.email, match_phone=step.phone,
                       match_loyalty_id=step.loyalty_id)


def _unique_lookup(records: ir.Table, identity_map: ir.Table, column: str) -> ir.Table:
    """(value, key) for values of ``column`` that belong to exactly one customer key."""
    keyed = records.filter(records[column].notnull()).join(identity_map, ["source", "customer_id"])
    distinct = keyed.select(value=keyed[column], key=keyed.customer_key).distinct()
    grouped = distinct.group_by("value").aggregate(n=_.key.count(), key=_.key.min())
    return grouped.filter(grouped.n == 1).select("value", "key")


def order_keys(orders: ir.Table, records: ir.Table, identity_map: ir.Table,
               settings: IdentitySettings) -> ir.Table:
    """(order_id, customer_key, method) for every order.

    The first that applies: the order's account (``source``, ``customer_id``) in the
    identity map; its loyalty id, then its normalised e-mail, when that belongs to exactly
    one customer; a guest key (``'G'`` + MD5 of the identifier) when the identifier matches
    no record and ``key_unmatched_guests`` is set (else ``unmatched``, NULL key); orders
    without an identifier are ``anonymous`` with a NULL key.
    """
    o = orders.select("order_id", "source", "customer_id", loyalty=normalise_code(orders.loyalty_id),
                      email=normalise_email(orders.email))
    accounts = identity_map.select("source", "customer_id", k_account="customer_key")
    loyalty = _unique_lookup(records, identity_map, "loyalty_id").rename(loyalty="value", k_loyalty="key")
    email = _unique_lookup(records, identity_map, "email").rename(email="value", k_email="key")
    step = (o.left_join(accounts, ["source", "customer_id"]).drop("source_right", "customer_id_right")
            .left_join(loyalty, "loyalty").drop("loyalty_right")
            .left_join(email, "email").drop("email_right"))
    guest_id = ibis.coalesce("loyalty:" + step.loyalty, "email:" + step.email)
    guest = ibis.ifelse(ibis.literal(settings.key_unmatched_guests), "G" + guest_id.hexdigest("md5").substr(0, 16),
                        ibis.null("string"))
    key = ibis.coalesce(step.k_account, step.k_loyalty, step.k_email, guest)
    method = ibis.cases(
        (step.k_account.notnull(), "customer_id"),
        (step.k_loyalty.notnull(), "loyalty_id"),
        (step.k_email.notnull(), "email"),
        (guest_id.notnull() & ibis.literal(settings.key_unmatched_guests), "guest"),
        (guest_id.notnull(), "unmatched"),
        else_="anonymous",
    )
    return step.select("order_id", customer_key=key, method=method)


def resolve_identities(customers: ir.Table | None, orders: ir.Table, *, backend: Warehouse,
                       settings: IdentitySettings | None = None, identity_map_name: str = "identity_map",
                       order_keys_name: str = "order_keys") -> IdentityResult:
    """Resolve customer records and orders to persons; write ``identity_map`` and ``order_keys``.

    Parameters
    ----------
    customers, orders
        The contract's ``customers`` and ``orders`` tables (or memtables of them);
        ``customers`` None when there is no such table: each account on the orders is then
        a record of its own.
    backend
        The warehouse to run in and write to.
    settings
        Thresholds; ``IdentitySettings()`` by default.
    identity_map_name, order_keys_name
        Names of the two tables written.

    Returns
    -------
    IdentityResult
        The two written tables, a few counts about the run and notes on what it skipped.
    """
    s = settings or IdentitySettings()
    wh = backend
    temps: list[str] = []
    notes: list[str] = []
    try:
        gathered = _gather_records(customers, orders, wh, temps, notes)
        phones = phone_lookup(gathered, wh, temps)
        records = scratch(wh, normalise_customers(gathered, phones), "records", temps)
        edges = scratch(wh, deterministic_edges(records, s), "links", temps)
        labels, rounds = connected_components(records.select(node=_.rid, label=_.rid), edges, wh,
                                              max_iterations=s.max_iterations, temps=temps)
        clustered = scratch(wh, _cluster(records, labels), "clustered", temps)
        links = None if customers is None else _probabilistic(clustered, wh, s, temps, notes)
        finals, prob_rounds = _final_clusters(clustered, links, wh, s, temps)
        methods = record_methods(edges)
        wh.write(identity_map_name, build_identity_map(clustered, methods, finals, _link_probability(links)))
        identity_map = wh.table(identity_map_name)
        wh.write(order_keys_name, order_keys(orders, records, identity_map, s))
        n_links = 0 if links is None else wh.count(links)
    finally:
        for name in temps:
            wh.drop(name)
    return IdentityResult(identity_map, wh.table(order_keys_name), (rounds, prob_rounds), n_links, tuple(notes))


def _probabilistic(clustered: ir.Table, warehouse: Warehouse, settings: IdentitySettings,
                   temps: list[str], notes: list[str]) -> ir.Table | None:
    """Splink's best links of the single records, or None when it is off, has nothing to do or
    too little to learn from (then with a note saying why)."""
    if not settings.probabilistic:
        return None
    sizes = clustered.group_by("cluster").aggregate(n=_.rid.count())
    stats = sizes.aggregate(records=_.n.sum(), pairs=_pairs(_.n).sum(), singles=(_.n == 1).sum()).to_pyarrow()
    n_records, pairs, singles = (int(stats.column(c)[0].as_py() or 0) for c in ("records", "pairs", "singles"))
    if singles == 0 or n_records < 3:
        return None
    gap = linkage_gaps(clustered, warehouse)
    if gap is not None:
        notes.append(gap)
        return None
    return probabilistic_links(clustered, warehouse, settings, prior=prior_match_probability(n_records, pairs),
                               temps=temps)


# -- measured against the synthetic retailer's truth ----------------------------------------------
def _as_table(obj: ir.Table | pa.Table | pd.DataFrame) -> ir.Table:
    return obj if isinstance(obj, ir.Table) else ibis.memtable(obj)


def pairwise_metrics(identity_map: ir.Table | pa.Table | pd.DataFrame,
                     truth_identity: ir.Table | pa.Table | pd.DataFrame) -> PairwiseMetrics:
    """Pairwise precision, recall and F1 of ``identity_map``'s clusters against true persons.

    A pair of records is predicted when they share a customer key and true when they share
    a person. Counted from the (key, person) cross-tabulation as sums of n choose 2, so
    no pair is ever listed: true positives ``Σ C(n_kp, 2)``, predicted ``Σ_k C(n_k, 2)``,
    true ``Σ_p C(n_p, 2)``. Precision (recall) is 1 when nothing is predicted (true).
    """
    imap, truth = _as_table(identity_map), _as_table(truth_identity)
    joined = imap.join(truth, ["source", "customer_id"]).select("customer_key", "person_id")
    cells = joined.group_by(["customer_key", "person_id"]).aggregate(n=_.count())
    tp = cells.aggregate(v=_pairs(_.n).sum())
    predicted = cells.group_by("customer_key").aggregate(n=_.n.sum()).aggregate(v=_pairs(_.n).sum())
    actual = cells.group_by("person_id").aggregate(n=_.n.sum()).aggregate(v=_pairs(_.n).sum())
    row = tp.cross_join(predicted.rename(p="v")).cross_join(actual.rename(a="v")).to_pyarrow().to_pylist()[0]
    tp_n, pred_n, true_n = (float(row[k] or 0) for k in ("v", "p", "a"))
    precision = tp_n / pred_n if pred_n else 1.0
    recall = tp_n / true_n if true_n else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PairwiseMetrics(precision, recall, f1)


def order_attachment_rate(order_keys: ir.Table | pa.Table | pd.DataFrame,
                          truth_orders: ir.Table | pa.Table | pd.DataFrame,
                          identity_map: ir.Table | pa.Table | pd.DataFrame,
                          truth_identity: ir.Table | pa.Table | pd.DataFrame, *,
                          orders: ir.Table | pa.Table | pd.DataFrame | None = None,
                          channel: str = "store") -> float:
    """Share of identifiable orders attached to the right person.

    An order is right when the majority person of its customer key's records (ties: the
    smallest person id) is the order's true person. The denominator is every order that
    carries an identifier (method not ``anonymous``) and, when ``orders`` is given, is in
    ``channel`` ('store' by default; None for all channels).
    """
    keys, truth_o = _as_table(order_keys), _as_table(truth_orders)
    imap, truth_i = _as_table(identity_map), _as_table(truth_identity)
    cells = (imap.join(truth_i, ["source", "customer_id"]).group_by(["customer_key", "person_id"])
             .aggregate(n=_.count()))
    ranked = cells.mutate(_r=ibis.row_number().over(group_by="customer_key",
                                                    order_by=[ibis.desc("n"), "person_id"]))
    majority = ranked.filter(ranked._r == 0).select("customer_key", majority=_.person_id)
    scope = keys.filter(keys.method != "anonymous")
    if orders is not None and channel is not None:
        o = _as_table(orders)
        scope = scope.semi_join(o.filter(o.channel == channel), "order_id")
    step = scope.join(truth_o, "order_id").left_join(majority, "customer_key")
    right = (step.majority.notnull() & (step.majority == step.person_id)).cast("int64")
    row = step.aggregate(right=right.sum(), n=_.count()).to_pyarrow().to_pylist()[0]
    return float(row["right"] or 0) / row["n"] if row["n"] else 1.0
