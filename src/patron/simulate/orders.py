"""Who an order is attributed to: channel, country, store, source and the identifiers it carries.

Channel is store with the person's store propensity. The order's country is
the person's, except cross-border orders (``cross_border_rate``, e.g. bought
on holiday) in a random market; the currency is the order country's.
Online orders come from ``web``: logged in (``web_login_rate`` of a person
with a web account) they carry the account's customer id, e-mail and loyalty
number; otherwise they are guest orders with no customer id but an e-mail as
typed. Store orders come from ``pos``: identified (``pos_identified_rate`` of
a person with a pos record) they carry the pos customer id and loyalty
number; otherwise only a loyalty number (members, ``store_loyalty_only_rate``),
only an e-mail for an e-receipt (``store_email_only_rate``), or nothing.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.simulate.calendar import COUNTRIES, COUNTRY_CURRENCY, CURRENCIES, MARKETS
from patron.simulate.identity import Records, email_variants
from patron.simulate.population import Persons
from patron.simulate.purchases import Orders
from patron.simulate.settings import RetailerSettings

NULL = pa.scalar(None, pa.string())


def order_ids(online: np.ndarray) -> pa.Array:
    """Ids in time order: web orders 'W' + 9 digits, store orders 'S' + 9 digits, one shared counter."""
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(online.size) + 1), pa.string()), 9, "0")
    return pc.binary_join_element_wise(pa.array(np.where(online, "W", "S")), digits, "")


def _stores(rng: np.random.Generator, country: np.ndarray) -> pa.Array:
    """A store id such as 'DK-S007' drawn among the stores of each order's country."""
    n_stores = np.array([MARKETS[c][3] for c in COUNTRIES])
    number = (rng.random(country.size) ** 1.5 * n_stores[country]).astype(np.int64) + 1  # flagships sell more
    digits = pc.utf8_lpad(pc.cast(pa.array(number), pa.string()), 3, "0")
    return pc.binary_join_element_wise(pa.array(np.array(COUNTRIES)[country]), "-S", digits, "")


def attribute_orders(rng: np.random.Generator, orders: Orders, persons: Persons, records: Records,
                     s: RetailerSettings) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    """The orders table (contract columns) plus per order the online flag, currency and country index."""
    n = orders.person.size
    person = orders.person
    online = rng.random(n) >= persons.store_propensity[person]
    country = persons.country[person].copy()
    abroad = rng.random(n) < s.cross_border_rate
    shares = np.array([MARKETS[c][2] for c in COUNTRIES])
    country[abroad] = rng.choice(len(COUNTRIES), size=int(abroad.sum()), p=shares / shares.sum())
    currency = COUNTRY_CURRENCY[country]

    typed_email = email_variants(rng, persons.email.take(pa.array(person)), s.email_case_variant_rate,
                                 s.email_space_variant_rate)
    has_web = records.row_of[person, 0] >= 0
    has_pos = records.row_of[person, 1] >= 0
    login = online & has_web & (rng.random(n) < s.web_login_rate)
    identified = ~online & has_pos & (rng.random(n) < s.pos_identified_rate)
    u = rng.random(n)
    member = persons.loyalty_member[person]
    loyalty_only = ~online & ~identified & member & (u < s.store_loyalty_only_rate)
    email_only = ~online & ~identified & ~loyalty_only & (u >= 1.0 - s.store_email_only_rate)
    guest = online & ~login

    customer_id = pc.if_else(pa.array(login), records.customer_id(person, 0),
                             pc.if_else(pa.array(identified), records.customer_id(person, 1), NULL))
    email = pc.if_else(pa.array(login), records.column_of("email", person, 0),
                       pc.if_else(pa.array(guest | email_only), typed_email, NULL))
    scanned = pc.if_else(pa.array(loyalty_only), persons.loyalty_id.take(pa.array(person)), NULL)
    loyalty = pc.if_else(pa.array(login), records.column_of("loyalty_id", person, 0),
                         pc.if_else(pa.array(identified), records.column_of("loyalty_id", person, 1),
                                    scanned))
    table = pa.table({
        "order_id": order_ids(online),
        "source": pa.array(np.where(online, "web", "pos")),
        "customer_id": customer_id,
        "email": email,
        "loyalty_id": loyalty,
        "ordered_at": pa.array(orders.utc_us, pa.timestamp("us", tz="UTC")),
        "channel": pa.array(np.where(online, "online", "store")),
        "country": pa.array(np.array(COUNTRIES)[country]),
        "store_id": pc.if_else(pa.array(online), NULL, _stores(rng, country)),
        "currency": pa.array(np.array(CURRENCIES)[currency]),
    })
    return table, online, currency, country
