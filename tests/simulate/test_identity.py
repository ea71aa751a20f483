"""Identity is fragmented at the configured rates: records per person, guests, e-mail variants."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from patron.simulate import Retailer


def test_share_of_persons_with_several_records(retailer: Retailer) -> None:
    s = retailer.settings
    n_records = retailer.truth["truth_customers"].column("n_records").to_numpy()
    expected = 1.0 - s.records_probs[0] / sum(s.records_probs)
    assert abs((n_records > 1).mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n_records.size)
    assert n_records.min() == 1 and n_records.max() == 3
    per_person = retailer.truth["truth_identity"].group_by("person_id").aggregate([("source", "count")])
    assert np.bincount(per_person.column("source_count").to_numpy()).tolist()[1:] == np.bincount(
        n_records).tolist()[1:]


def test_guest_and_anonymous_orders(retailer: Retailer) -> None:
    orders = retailer.tables["orders"]
    online = pc.equal(orders.column("channel"), "online")
    guest = orders.filter(pc.and_(online, pc.is_null(orders.column("customer_id"))))
    assert guest.num_rows > 0.1 * orders.num_rows
    assert guest.column("email").null_count == 0
    store = orders.filter(pc.invert(online))
    anonymous = pc.and_(pc.and_(pc.is_null(store.column("customer_id")), pc.is_null(store.column("email"))),
                        pc.is_null(store.column("loyalty_id")))
    assert 0.05 < pc.mean(pc.cast(anonymous, "int64")).as_py() < 0.5
    assert store.column("store_id").null_count == 0
    assert orders.filter(online).column("store_id").null_count == orders.filter(online).num_rows


def test_email_variants_at_configured_rate(retailer: Retailer) -> None:
    s = retailer.settings
    web = retailer.tables["customers"].filter(pc.equal(retailer.tables["customers"].column("source"), "web"))
    email = web.column("email")
    canonical = pc.utf8_lower(pc.utf8_trim_whitespace(email))
    varied = pc.mean(pc.cast(pc.not_equal(email, canonical), "int64")).as_py()
    upper_only = pc.mean(pc.cast(pc.not_equal(pc.utf8_trim_whitespace(email), canonical), "int64")).as_py()
    expected = 1 - (1 - s.email_case_variant_rate) * (1 - s.email_space_variant_rate)
    assert abs(varied - expected) < 0.02
    assert abs(upper_only - s.email_case_variant_rate) < 0.02


def test_records_of_one_person_share_a_normalised_email_mostly(retailer: Retailer) -> None:
    customers = retailer.tables["customers"].append_column(
        "person_id", retailer.truth["truth_identity"].column("person_id"))
    norm = pc.utf8_lower(pc.utf8_trim_whitespace(customers.column("email")))
    table = customers.append_column("norm", norm).filter(pc.is_valid(norm))
    distinct = table.group_by("person_id").aggregate([("norm", "count_distinct")])
    counts = distinct.column("norm_count_distinct").to_numpy()
    assert 0.0 < (counts > 1).mean() < 0.1  # alternative addresses exist but are rare
    phones = customers.column("phone").drop_null()
    assert pc.any(pc.starts_with(phones, "00")).as_py() and pc.any(pc.match_substring(phones, " ")).as_py()
