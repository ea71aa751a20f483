"""The synthetic jewellery retailer: ``generate_retailer`` builds it, ``write_retailer`` writes it.

A retailer sells online and in stores in twelve countries (DK, DE, FR, IT,
ES, NL, GB, US, AU, SE, PL, JP) in their currencies, reporting in EUR. Its
persons follow a known latent process (BG/NBD purchases in operational time,
Gamma-Gamma spend; see ``purchases`` and ``calendar`` for seasonality), buy
from a 200-SKU catalogue (``catalog``, ``lines``), appear as fragmented
customer records in three source systems (``identity``, ``orders``) and
engage with marketing (``engagement``). Every table of the data contract is
produced with its exact columns and Arrow types, together with the truth the
pipeline must recover: ``truth_identity``, ``truth_orders`` and
``truth_customers``. Everything is drawn from one ``numpy`` seed through
independent child streams, so a seed gives identical files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from patron.contract import CATEGORIES, CONTRACT, MATERIALS
from patron.errors import PatronError
from patron.simulate.calendar import COUNTRIES, DAY_US, MARKETS, black_friday, mothers_day
from patron.simulate.catalog import build_catalog, daily_rates, fx_table
from patron.simulate.dirty import as_text, inject
from patron.simulate.engagement import build_events, build_experiments, build_surveys
from patron.simulate.identity import Records, build_records
from patron.simulate.lines import build_costs, build_lines, build_returns
from patron.simulate.orders import attribute_orders
from patron.simulate.population import Persons, draw_persons
from patron.simulate.purchases import Orders, PurchaseTruth, build_clocks, simulate_orders, window_us
from patron.simulate.settings import RetailerSettings

TS = pa.timestamp("us", tz="UTC")
STREAMS = ("persons", "purchases", "records", "orders", "catalog", "fx", "lines", "returns", "events",
           "surveys", "experiments", "dirty")


@dataclass
class Retailer:
    """The generated contract tables, the ground truth and the settings that produced them."""

    tables: dict[str, pa.Table]
    truth: dict[str, pa.Table]
    settings: RetailerSettings


def conform(name: str, table: pa.Table) -> pa.Table:
    """``table`` with exactly the contract columns of ``name``, in order, cast to the contract types."""
    schema = CONTRACT[name].schema().to_pyarrow()
    return pa.table([table.column(f.name).cast(f.type) for f in schema], schema=schema)


def generate_retailer(customers: int = 10_000, seed: int = 42, start: str = "2021-01-01",
                      end: str = "2025-12-31", **overrides: Any) -> Retailer:
    """Generate a retailer of ``customers`` persons from ``seed`` over [start, end).

    ``end`` is the observation end: nothing happens at or after 00:00 UTC of
    that day. Any other ``RetailerSettings`` field can be overridden by name.
    """
    if customers < 1:
        raise PatronError("customers must be at least 1")
    s = RetailerSettings(seed=seed, customers=customers, start=start, end=end, **overrides)
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    rng = {name: np.random.default_rng(child) for name, child in zip(STREAMS, children, strict=True)}
    start_us, end_us = window_us(s)
    persons = draw_persons(rng["persons"], s)
    clocks = build_clocks(s)
    ords, ptruth = simulate_orders(rng["purchases"], persons, s, clocks)
    records = build_records(rng["records"], persons, ptruth.acquired_us, s, end_us)
    order_table, online, currency, country = attribute_orders(rng["orders"], ords, persons, records, s)
    catalog = build_catalog(rng["catalog"])
    first_day = start_us // DAY_US
    n_days = (end_us - start_us) // DAY_US
    rates = daily_rates(rng["fx"], first_day, n_days)
    order_ids = order_table.column("order_id").combine_chunks()
    line_table, facts = build_lines(rng["lines"], ords, order_ids, currency, persons, catalog, rates, first_day, s)
    returns, returned = build_returns(rng["returns"], facts, ords, online, order_ids, rates, first_day, end_us, s)
    costs = build_costs(facts, ords, online, country, currency, order_ids, rates, first_day)
    order_returned = np.bincount(facts["owner"], weights=returned, minlength=ords.person.size) > 0
    tables = {
        "customers": records.table,
        "orders": order_table,
        "order_lines": line_table,
        "products": catalog.table,
        "returns": returns,
        "order_costs": costs,
        "engagement_events": build_events(rng["events"], persons, records, ptruth.acquired_us, end_us, s),
        "surveys": build_surveys(rng["surveys"], persons, records, ords.person, ords.utc_us, online,
                                 order_returned, end_us, s),
        "fx_rates": fx_table(rates, first_day),
        "experiments": build_experiments(rng["experiments"], records, ptruth.acquired_us, start_us, end_us),
    }
    tables = {name: conform(name, tables[name]) for name in CONTRACT}
    truth = _truth_tables(persons, records, ords, ptruth, order_ids)
    return Retailer(tables, truth, s)


def _truth_tables(persons: Persons, records: Records, ords: Orders,
                  ptruth: PurchaseTruth, order_ids: pa.Array) -> dict[str, pa.Table]:
    pid = persons.person_id
    n_records = (records.row_of >= 0).sum(axis=1)
    cdf_cat, cdf_mat = persons.category_cdf, persons.material_cdf
    pref_cat = np.argmax(np.diff(cdf_cat, axis=1, prepend=0.0), axis=1)
    pref_mat = np.argmax(np.diff(cdf_mat, axis=1, prepend=0.0), axis=1)
    customers = pa.table({
        "person_id": pid,
        "country": pa.array(np.array(COUNTRIES)[persons.country]),
        "lambda": pa.array(persons.lam),
        "p_dropout": pa.array(persons.p_drop),
        "nu": pa.array(persons.nu),
        "acquired_at": pa.array(ptruth.acquired_us, TS),
        "acquired_op_week": pa.array(ptruth.acquired_op_week),
        "T_weeks": pa.array(ptruth.t_weeks),
        "t_x_weeks": pa.array(ptruth.t_x_weeks),
        "n_repeat": pa.array(ptruth.n_repeat),
        "n_orders": pa.array(ptruth.n_repeat + 1),
        "alive_at_end": pa.array(ptruth.alive_at_end),
        "dropout_at": pa.array(ptruth.dropout_us, TS, mask=ptruth.dropout_us < 0),
        "store_propensity": pa.array(persons.store_propensity),
        "discount_prone": pa.array(persons.discount_prone),
        "engagement": pa.array(persons.engagement),
        "satisfaction": pa.array(persons.satisfaction),
        "preferred_category": pa.array(np.array(CATEGORIES)[pref_cat]),
        "preferred_material": pa.array(np.array(MATERIALS)[pref_mat]),
        "loyalty_member": pa.array(persons.loyalty_member),
        "marketing_consent": pa.array(persons.consent),
        "birth_year": pa.array(persons.birth_year),
        "gender": pa.array(np.where(persons.female, "F", "M")),
        "n_records": pa.array(n_records.astype(np.int64)),
    })
    ident = pa.table({
        "source": records.table.column("source"),
        "customer_id": records.table.column("customer_id"),
        "person_id": pid.take(pa.array(records.person)),
    })
    truth_orders = pa.table({
        "order_id": order_ids,
        "person_id": pid.take(pa.array(ords.person)),
        "purchase_number": pa.array(ords.seq),
        "op_week": pa.array(ords.op_week),
        "spend_eur": pa.array(ords.spend_eur),
    })
    return {"truth_identity": ident, "truth_orders": truth_orders, "truth_customers": customers}


def truth_settings(retailer: Retailer, dirty_log: list[dict[str, Any]]) -> dict[str, Any]:
    """The settings and the documented generative story, for ``truth_settings.json``."""
    s = retailer.settings
    years = range(int(s.start[:4]), int(s.end[:4]) + 1)
    return {
        "settings": s.to_dict(),
        "reporting_currency": "EUR",
        "markets": {c: {"currency": m[0], "time_zone": m[1], "share": m[2], "stores": m[3]}
                    for c, m in MARKETS.items()},
        "time_unit": "week (operational time; BG/NBD parameters are per operational week)",
        "seasonality": {
            "doc": "purchases are BG/NBD in operational time; calendar time = inverse of the cumulative "
                   "seasonal intensity of the person's country (mean 1 per calendar year)",
            "mothers_day": {c: [str(mothers_day(c, y)) for y in years] for c in COUNTRIES},
            "black_friday": [str(black_friday(y)) for y in years],
            "valentines_day": [f"{y}-02-14" for y in years],
        },
        "expected": {
            "mean_lambda": s.r / s.alpha,
            "mean_p_dropout": s.a / (s.a + s.b),
            "mean_order_value_eur": s.p_shape * s.gamma / (s.q - 1.0),
        },
        "dirty_rows": dirty_log,
    }


def write_retailer(retailer: Retailer, out_dir: str | Path, fmt: str = "parquet",
                   dirty_rows: int = 0) -> list[Path]:
    """Write every contract table, the truth tables and ``truth_settings.json`` to ``out_dir``.

    ``fmt`` is ``parquet`` (typed columns) or ``csv`` (text form of ``dirty``).
    With ``dirty_rows`` > 0, that many bad rows of each kind are appended to
    orders and order_lines, which are then written as all-string columns.
    """
    if fmt not in ("parquet", "csv"):
        raise PatronError(f"unknown format {fmt!r}; use 'parquet' or 'csv'")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = dict(retailer.tables)
    log: list[dict[str, Any]] = []
    if dirty_rows > 0:
        rng = np.random.default_rng(np.random.SeedSequence(retailer.settings.seed).spawn(len(STREAMS))[-1])
        o, ln, log = inject(rng, as_text(tables["orders"]), as_text(tables["order_lines"]), dirty_rows)
        tables["orders"], tables["order_lines"] = o, ln
    written = [_write(t, out / f"{name}.{fmt}", fmt) for name, t in {**tables, **retailer.truth}.items()]
    meta = out / "truth_settings.json"
    meta.write_text(json.dumps(truth_settings(retailer, log), indent=2, default=str) + "\n")
    return [*written, meta]


def _write(table: pa.Table, path: Path, fmt: str) -> Path:
    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        options = pacsv.WriteOptions(include_header=True, quoting_style="needed")
        pacsv.write_csv(as_text(table), path, options)
    return path
