"""Identity resolution, part two: probabilistic matching with Splink for records no rule joined.

A Fellegi-Sunter model (Splink) compares first name and last name (Jaro-Winkler),
postcode, birth year, e-mail and phone (exact); a shared postcode is term-frequency
adjusted (it counts for less the more records hold it). Its u probabilities come from random
pairs, its m probabilities from expectation maximisation on pairs blocked by e-mail
and by postcode, and the prior (probability that two random records match) from the
deterministic clusters. Splink runs in the pipeline's own engine: DuckDB through
``DuckDBAPI`` on the warehouse's connection, Spark through ``SparkAPI`` on its session.

Only pairs with at least one *single* record (a record no rule joined) in different
deterministic clusters are scored. Each single record then keeps only its best link at or
above the threshold; with one outgoing link per single record and none from clustered
records, no path can join two deterministic clusters, so probabilistic links never chain
two persons' established records together.

Splink runs only when the records hold enough to learn from (``linkage_gaps``): each
training block must give its ``MIN_TRAINING_PAIRS`` pairs of records, counted by one
aggregate query before Splink is called. Otherwise the step is skipped with a note in plain
words, and any failure inside Splink is raised as patron's ``EngineError`` naming the
setting that turns it off.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
from ibis import _

from patron.errors import EngineError, PatronError
from patron.transforms.identity_rules import IdentitySettings, scratch

if TYPE_CHECKING:
    from patron.engine import Warehouse

#: Columns Splink compares; names and codes are already normalised.
LINKAGE_COLUMNS = ("first_name", "last_name", "postcode", "birth_year", "email", "phone")

#: Columns compared by Jaro-Winkler similarity (typos); the others must agree exactly.
FUZZY_COLUMNS = ("first_name", "last_name")

#: Columns whose exact agreement is weighted by how rare the shared value is (term-frequency
#: adjustment). Postcodes only: sharing a postcode where few people share each code (a
#: five-digit or alphanumeric system) is stronger evidence than where many do (four digits).
#: Names are left out because a name's frequency in the whole file misstates its frequency
#: among the pairs compared, which share a postcode and so a country: on the synthetic
#: retailer at 1M persons adjusting names too lowered precision (0.9963 with, 0.9971 without).
TF_COLUMNS = ("postcode",)

#: Expectation-maximisation training blocks: m probabilities are learnt from the pairs of
#: records that agree on each (all records, not only the single ones).
TRAINING_BLOCKS = (("postcode",), ("first_name", "last_name"))

#: Fewest pairs of records each training block must give for Splink to run. Measured on the
#: synthetic retailer (4,000 persons, five seeds, a growing share of postcodes or names blanked,
#: 101 runs; docs/identity.md): a block with no pairs made Splink raise in 5 runs of 5, while
#: with 1 to 22 postcode pairs it still added up to 1.7 points of recall (the names carry the
#: matching) and precision stayed at 0.992 or more in every run. A higher bar would be tuned to
#: the simulator's name frequencies (ten surnames a country), not to real files, where few pairs
#: share a full name. Splink 5 also failed now and then with pairs to spare (4 runs of 96, at
#: 113 to 742 pairs) when EM drove an m probability to 0; no count predicts that, and
#: ``probabilistic_links`` reports it as patron's error.
MIN_TRAINING_PAIRS = 1

#: How the columns read in a skip note.
_COLUMN_WORDS = {"first_name": "first name", "last_name": "last name", "postcode": "postcode",
                 "birth_year": "birth year", "email": "e-mail", "phone": "phone"}

#: Prediction blocking rules (Splink SQL over the ``l``/``r`` record aliases; no user values).
_ONLY_NEW_PAIRS = "l.cluster <> r.cluster and (l.single = 1 or r.single = 1)"
_BLOCKS = (
    ("postcode", "first_name"),
    ("postcode", "last_name"),
    ("first_name", "last_name", "birth_year"),
)


def _comparison(column: str) -> Any:
    """Jaro-Winkler levels for a name, exact agreement for a code; term-frequency adjusted if in ``TF_COLUMNS``.

    Splink adjusts a comparison's exact-match level only: there the u probability becomes
    the shared value's frequency among the records (a table Splink computes with SQL in the
    linker's own engine), while the fuzzy name levels keep their average u.
    """
    import splink.comparison_library as cl

    comparison = cl.JaroWinklerAtThresholds(column, [0.92, 0.8]) if column in FUZZY_COLUMNS else cl.ExactMatch(column)
    return comparison.configure(term_frequency_adjustments=column in TF_COLUMNS)


def splink_settings(prior: float) -> Any:
    """The Splink model: comparisons, prediction blocking rules and the prior match probability."""
    from splink import SettingsCreator

    rules = [" and ".join(f"l.{c} = r.{c}" for c in block) + " and " + _ONLY_NEW_PAIRS for block in _BLOCKS]
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="rid",
        comparisons=[_comparison(c) for c in LINKAGE_COLUMNS],
        blocking_rules_to_generate_predictions=rules,
        probability_two_random_records_match=prior,
        additional_columns_to_retain=["cluster", "single"],
        retain_matching_columns=False,
    )


def prior_match_probability(n_records: int, linked_pairs: int, *, rule_recall: float = 0.9) -> float:
    """Probability that two random records match, from the pairs the rules found.

    The rules find about ``rule_recall`` of true pairs, so the true pairs number about
    ``linked_pairs / rule_recall`` among ``n (n - 1) / 2``.
    """
    total = max(n_records * (n_records - 1) / 2, 1.0)
    return float(min(max(linked_pairs / rule_recall / total, 1e-9), 0.5))


def probabilistic_links(records: ir.Table, warehouse: Warehouse, settings: IdentitySettings, *,
                        prior: float, temps: list[str]) -> ir.Table:
    """Best link (rid, target, target_cluster, match_probability) of each single record.

    Parameters
    ----------
    records
        A table in ``warehouse`` with ``rid``, the ``LINKAGE_COLUMNS``, ``cluster`` (the
        deterministic component) and ``single`` (1 when the record is alone in it).
    warehouse
        The engine Splink runs in.
    settings
        ``match_threshold``, ``u_max_pairs`` and ``seed`` are used.
    prior
        The prior match probability (``prior_match_probability``).
    temps
        The scratch tables written (Splink's input, the links) are added here.
    """
    scratch(warehouse, records.select("rid", *LINKAGE_COLUMNS, "cluster", "single"), "splink", temps)
    try:
        pairs = _scored_pairs(temps[-1], warehouse, settings, prior)
    except PatronError:
        raise
    except Exception as exc:  # Splink's and the engine's errors come in many classes
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise EngineError(f"probabilistic matching (Splink) failed: {type(exc).__name__}: {first_line}. "
                          "To resolve identities with the deterministic rules only, set "
                          "`probabilistic = false` under [identity] in patron.toml") from exc
    return scratch(warehouse, best_links(ibis.memtable(pairs)), "best", temps)


#: The scored pairs as they leave Splink (typed, so that no pairs still make a valid table).
_PAIRS_SCHEMA = pa.schema([("rid_l", pa.string()), ("rid_r", pa.string()), ("cluster_l", pa.string()),
                          ("cluster_r", pa.string()), ("single_l", pa.int64()), ("single_r", pa.int64()),
                          ("match_probability", pa.float64())])


def _scored_pairs(table_name: str, warehouse: Warehouse, settings: IdentitySettings, prior: float) -> pa.Table:
    """Train Splink on table ``table_name`` and score its candidate pairs at or above the threshold."""
    from splink import Linker, block_on

    api = warehouse.splink_api()
    linker = Linker(api.register(table_name), splink_settings(prior), log_level=logging.ERROR)
    try:
        linker.training.estimate_u_using_random_sampling(max_pairs=settings.u_max_pairs, seed=settings.seed)
        for block in TRAINING_BLOCKS:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*block), max_pairs=settings.em_max_pairs)
        predictions = linker.inference.predict(threshold_match_probability=settings.match_threshold)
        frame = predictions.as_pandas_dataframe()[_PAIRS_SCHEMA.names]
        return pa.Table.from_pandas(frame, schema=_PAIRS_SCHEMA, preserve_index=False)
    finally:
        linker.table_management.delete_tables_created_by_splink_from_db()


def linkage_gaps(records: ir.Table, warehouse: Warehouse, *, min_pairs: int | None = None) -> str | None:
    """Why Splink cannot learn from ``records``, in plain words; None when it can.

    Two aggregate queries: the records holding each of ``LINKAGE_COLUMNS``, and the pairs of
    records each of ``TRAINING_BLOCKS`` gives (the sum of n choose 2 over the block's values).
    Splink's expectation maximisation raises on a block with no pairs; each block needs
    ``min_pairs`` (``MIN_TRAINING_PAIRS`` when None).
    """
    needed = MIN_TRAINING_PAIRS if min_pairs is None else min_pairs
    counts = records.aggregate(_records=records.count(),
                               **{c: records[c].count() for c in LINKAGE_COLUMNS}).to_pyarrow().to_pylist()[0]
    n = int(counts.pop("_records") or 0)
    filled = {c: int(v or 0) for c, v in counts.items()}
    if not any(filled.values()):
        return ("no name, postcode, birth-year, e-mail or phone data on the customer records: "
                "probabilistic matching skipped")
    pairs = _training_pairs(records, warehouse)
    for block in TRAINING_BLOCKS:
        if pairs[block] >= needed:
            continue
        words = " and ".join(_COLUMN_WORDS[c] for c in block)
        empty = [c for c in block if not filled[c]]
        if empty:
            names = " and ".join(_COLUMN_WORDS[c] for c in empty)
            return (f"{names} {'is' if len(empty) == 1 else 'are'} empty on 100% of the {n:,} customer records: "
                    f"probabilistic matching skipped (it trains on records that share a {words})")
        share = 1 - min(filled[c] for c in block) / n if n else 1.0
        found = pairs[block]
        shared = (f"no two customer records share a {words}" if found == 0 else
                  f"only {found:,} pair{'' if found == 1 else 's'} of customer records "
                  f"share{'s' if found == 1 else ''} a {words} ({needed:,} needed)")
        return (f"{shared}, and {words} {'is' if len(block) == 1 else 'are'} empty on {share:.0%} of records: "
                f"probabilistic matching skipped (it trains on records that share a {words})")
    return None


def _training_pairs(records: ir.Table, warehouse: Warehouse) -> dict[tuple[str, ...], int]:
    """Pairs of records agreeing on each training block, NULLs agreeing with nothing (one query)."""
    parts = []
    for i, block in enumerate(TRAINING_BLOCKS):
        present = records.filter(*[records[c].notnull() for c in block])
        sizes = present.group_by(list(block)).aggregate(n=_.count())
        parts.append(sizes.aggregate(pairs=(_.n * (_.n - 1) // 2).sum()).mutate(block=ibis.literal(i)))
    rows = warehouse.to_pandas(ibis.union(*parts, distinct=False))
    found = {int(b): int(p) for b, p in zip(rows["block"], rows["pairs"].fillna(0), strict=True)}
    return {block: found.get(i, 0) for i, block in enumerate(TRAINING_BLOCKS)}


def best_links(pairs: ir.Table) -> ir.Table:
    """For each single record of the scored ``pairs``, its most probable partner (ties: smallest rid)."""
    as_left = pairs.filter(_.single_l == 1).select(rid=_.rid_l, target=_.rid_r, target_cluster=_.cluster_r,
                                                   match_probability=_.match_probability)
    as_right = pairs.filter(_.single_r == 1).select(rid=_.rid_r, target=_.rid_l, target_cluster=_.cluster_l,
                                                    match_probability=_.match_probability)
    both = ibis.union(as_left, as_right, distinct=False)
    ranked = both.mutate(_rank=ibis.row_number().over(
        group_by="rid", order_by=[ibis.desc("match_probability"), "target"]))
    return ranked.filter(ranked._rank == 0).drop("_rank")
