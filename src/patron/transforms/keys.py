"""Provisional customer keys: who placed an order, before identity resolution exists.

Identity resolution (deterministic rules, then probabilistic matching) will give each
person one ``customer_key`` through an ``identity_map`` table; until then, and for
any order the map does not cover, an order is keyed by the best identifier it carries.
This module is that stop-gap and is meant to be replaced by an ``identity_map`` join.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from patron.transforms.text import is_blank, trim


def _present(value: ir.StringValue) -> ir.BooleanValue:
    """Whether an identifier is given: not NULL and not blank (CSV guests often arrive as '')."""
    return ~is_blank(value)


def provisional_customer_key(orders: ir.Table) -> ir.Table:
    """Add ``customer_key``, the provisional identity of the customer behind each order.

    The first rule that applies wins:

    1. ``source || ':' || customer_id`` when the order carries a customer id (an
       account in that source system; ids are only unique within their source);
    2. ``'loyalty:' || loyalty_id`` when it carries a loyalty number (shared by all sources);
    3. ``'email:' || lower(trim(email))`` when it carries an email (guest checkout, e-receipt);
    4. NULL otherwise: an anonymous order, which customer-level models leave out.

    An identifier that is NULL or blank counts as absent; ids are used as given,
    emails are normalised (trimmed, lower case) because people type them inconsistently.

    Parameters
    ----------
    orders
        A table with the contract's ``source``, ``customer_id``, ``loyalty_id`` and
        ``email`` columns (``orders`` or anything derived from it, e.g. order values).

    Returns
    -------
    ir.Table
        ``orders`` with a string column ``customer_key`` added.

    Notes
    -----
    Provisional: the same person buying with an account and as a guest gets two keys.
    Identity resolution replaces this with a join to ``identity_map``.
    """
    by_account = orders.source + ":" + orders.customer_id
    by_loyalty = "loyalty:" + orders.loyalty_id
    by_email = "email:" + trim(orders.email).lower()
    key = (
        ibis.cases(
            (_present(orders.customer_id) & orders.source.notnull(), by_account),
            (_present(orders.loyalty_id), by_loyalty),
            (_present(orders.email), by_email),
            else_=ibis.null("string"),
        )
    )
    return orders.mutate(customer_key=key)


def resolved_customer_key(orders: ir.Table, order_keys: ir.Table) -> ir.Table:
    """``orders`` with the ``customer_key`` identity resolution gave each order.

    ``order_keys`` is the table ``patron resolve`` writes (``order_id``, ``customer_key``,
    ``method``); orders it does not cover, or covers as anonymous, get a NULL key.
    """
    keys = order_keys.select(_order_id=order_keys.order_id, customer_key=order_keys.customer_key)
    joined = orders.left_join(keys, orders.order_id == keys._order_id)
    return joined.select(*[joined[c] for c in orders.columns], joined.customer_key)
