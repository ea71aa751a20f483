"""Engagement events, survey answers and A/B experiment assignments.

Events belong to a person's marketing record (crm, else web, else pos) when
that record has marketing consent, from the later of sign-up and acquisition
to the observation end. Volumes per person-year: ``sends_per_year`` campaign
sends (email 70 %, sms 20 %, push 10 %; weekly campaigns go out on Tuesdays
with a spread of a few hours), opens with probability ``0.9 e`` (email),
``0.6 e`` (sms) or ``0.5 e`` (push) for engagement ``e``, clicks on ``0.1 +
0.4 e`` of opens, unsubscribes on 0.3 % of e-mail sends, and
``visits_per_year * (0.5 + 2 e)`` site or app visits. With the defaults
(mean ``e`` ≈ 0.29) that is about five events per consenting person-year.

Surveys: ``survey_response_rate`` of orders by a person with a record get an
NPS (0-10) or CSAT (1-5) answer 2-10 days later; scores rise with the
person's latent satisfaction and fall when a line of the order was returned.

Experiments: EXP-WINBACK (control/treatment) assigns 30 % of the eligible
(acquired, consenting marketing record) at 70 % of the window; EXP-FREESHIP
(control/free_shipping/ten_percent) 40 % at 88 %. Arms have no effect on the
purchase process, which stays exact BG/NBD; they are there to be analysed.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from patron.simulate.calendar import DAY_US
from patron.simulate.identity import Records
from patron.simulate.population import Persons
from patron.simulate.settings import RetailerSettings

YEAR_US = 365.25 * DAY_US
HOUR_US = 3_600_000_000
SEND_CHANNELS = np.array(["email", "sms", "push"])
OPEN_RATE = np.array([0.9, 0.6, 0.5])
TS = pa.timestamp("us", tz="UTC")


def marketing_rows(records: Records) -> tuple[np.ndarray, np.ndarray]:
    """Per person the row of their marketing record (crm, else web, else pos; -1 none) and its consent."""
    rows = records.row_of
    row = np.where(rows[:, 2] >= 0, rows[:, 2], np.where(rows[:, 0] >= 0, rows[:, 0], rows[:, 1]))
    consent = records.table.column("marketing_consent").to_numpy(zero_copy_only=False)
    return row, np.where(row >= 0, consent[np.maximum(row, 0)], False)


def _dedupe_times(row: np.ndarray, kind: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Shift colliding (record, kind, second) events by one second so the table key stays unique."""
    secs = at // 1_000_000
    base = secs.min() if secs.size else 0
    group = row.astype(np.int64) * 8 + kind
    while True:
        key = (group << 32) | (secs - base)  # records < 2**28, seconds span < 2**32 (136 years)
        order = np.argsort(key, kind="stable")
        same = key[order][1:] == key[order][:-1]
        if not same.any():
            return (secs * 1_000_000).astype(np.int64)
        secs[order[1:][same]] += 1


def _seconds(us: np.ndarray) -> np.ndarray:
    return (us // 1_000_000) * 1_000_000


def build_events(rng: np.random.Generator, persons: Persons, records: Records, acquired_us: np.ndarray,
                 end_us: int, s: RetailerSettings) -> pa.Table:
    """The engagement_events table."""
    row, consent = marketing_rows(records)
    who = np.flatnonzero(consent)
    signup = records.table.column("signup_at").cast(pa.int64()).to_numpy()
    begin = np.maximum(acquired_us[who], signup[row[who]])
    span = np.maximum(end_us - begin, 0)
    e = persons.engagement[who]
    n_send = rng.poisson(s.sends_per_year * span / YEAR_US)
    owner = np.repeat(np.arange(who.size), n_send)
    t = begin[owner] + rng.random(owner.size) * span[owner]
    week = 7 * DAY_US
    tuesday = (t - 5 * DAY_US) // week * week + 5 * DAY_US + 9 * HOUR_US  # 1970-01-06 was a Tuesday
    sent = np.clip(tuesday + rng.exponential(2 * HOUR_US, owner.size), begin[owner], end_us - 10 * HOUR_US)
    channel = rng.choice(3, size=owner.size, p=[0.7, 0.2, 0.1])
    opened = rng.random(owner.size) < OPEN_RATE[channel] * e[owner]
    open_at = sent + rng.exponential(3 * HOUR_US, owner.size)
    clicked = opened & (rng.random(owner.size) < 0.1 + 0.4 * e[owner])
    click_at = open_at + rng.exponential(HOUR_US / 30, owner.size)
    unsub = (channel == 0) & (rng.random(owner.size) < 0.003)
    n_visit = rng.poisson(s.visits_per_year * (0.5 + 2.0 * e) * span / YEAR_US)
    v_owner = np.repeat(np.arange(who.size), n_visit)
    visit_at = begin[v_owner] + rng.random(v_owner.size) * span[v_owner]
    campaign = pc.binary_join_element_wise(
        "CMP-", pc.cast(pa.array((tuesday - 5 * DAY_US) // week), pa.string()), "-",
        pa.array(SEND_CHANNELS[channel]), "")
    parts = [(owner, np.zeros(owner.size, np.int64), sent, channel, campaign),
             (owner[opened], np.ones(int(opened.sum()), np.int64), open_at[opened], channel[opened],
              campaign.filter(pa.array(opened))),
             (owner[clicked], np.full(int(clicked.sum()), 2), click_at[clicked], channel[clicked],
              campaign.filter(pa.array(clicked))),
             (owner[unsub], np.full(int(unsub.sum()), 3), open_at[unsub], channel[unsub],
              campaign.filter(pa.array(unsub))),
             (v_owner, np.full(v_owner.size, 4), visit_at, 3 + (rng.random(v_owner.size) < 0.3),
              pa.nulls(v_owner.size, pa.string()))]
    p_owner = np.concatenate([p[0] for p in parts])
    kind = np.concatenate([p[1] for p in parts]).astype(np.int64)
    at = _seconds(np.concatenate([p[2] for p in parts]).astype(np.int64))
    at = _dedupe_times(p_owner, kind, np.minimum(at, end_us - 1_000_000))
    chan = np.concatenate([p[3] for p in parts]).astype(np.int64)
    camp = pa.concat_arrays([p[4] for p in parts])
    order = np.argsort(at // 1_000_000 * 8 + kind, kind="stable")
    rec = row[who][p_owner[order]]
    event_names = np.array(["sent", "open", "click", "unsubscribe", "visit"])
    channel_names = np.array(["email", "sms", "push", "web", "app"])
    return pa.table({
        "source": records.table.column("source").combine_chunks().take(pa.array(rec)),
        "customer_id": records.table.column("customer_id").combine_chunks().take(pa.array(rec)),
        "occurred_at": pa.array(at[order], TS),
        "event_type": pa.array(event_names[kind[order]]),
        "campaign_id": camp.take(pa.array(order)),
        "channel": pa.array(channel_names[chan[order]]),
    })


def build_surveys(rng: np.random.Generator, persons: Persons, records: Records, order_person: np.ndarray,
                  order_us: np.ndarray, online: np.ndarray, order_returned: np.ndarray, end_us: int,
                  s: RetailerSettings) -> pa.Table:
    """The surveys table: answers to NPS and CSAT surveys sent after orders."""
    rows = records.row_of[order_person]
    own = np.where(online, rows[:, 0], rows[:, 1])
    row = np.where(own >= 0, own, rows.max(axis=1))
    at = _seconds(order_us + ((2.0 + 8.0 * rng.random(order_us.size)) * DAY_US).astype(np.int64))
    answered = (row >= 0) & (rng.random(order_us.size) < s.survey_response_rate) & (at < end_us)
    idx = np.flatnonzero(answered)
    x = persons.satisfaction[order_person[idx]] - 1.2 * order_returned[idx] + rng.normal(0, 0.6, idx.size)
    nps = rng.random(idx.size) < 0.5
    score = np.where(nps, np.clip(np.round(7.6 + 1.7 * x), 0, 10), np.clip(np.round(4.0 + 0.8 * x), 1, 5))
    at_i = _dedupe_times(row[idx], np.zeros(idx.size, np.int64), at[idx])
    order = np.argsort(at_i, kind="stable")
    rec = row[idx][order]
    return pa.table({
        "source": records.table.column("source").combine_chunks().take(pa.array(rec)),
        "customer_id": records.table.column("customer_id").combine_chunks().take(pa.array(rec)),
        "answered_at": pa.array(at_i[order], TS),
        "survey_type": pa.array(np.where(nps[order], "nps", "csat")),
        "channel": pa.array(np.array(["email", "sms", "web"])[rng.choice(3, idx.size, p=[0.7, 0.2, 0.1])]),
        "score": pa.array(score[order].astype(np.int64)),
    })


EXPERIMENTS = (("EXP-WINBACK", ("control", "treatment"), 0.30, 0.70),
               ("EXP-FREESHIP", ("control", "free_shipping", "ten_percent"), 0.40, 0.88))


def build_experiments(rng: np.random.Generator, records: Records, acquired_us: np.ndarray, start_us: int,
                      end_us: int) -> pa.Table:
    """The experiments table: assignments of eligible marketing records to arms."""
    row, consent = marketing_rows(records)
    tables = []
    for name, arms, share, at_share in EXPERIMENTS:
        launch = start_us + int(at_share * (end_us - start_us))
        eligible = np.flatnonzero(consent & (acquired_us < launch))
        chosen = np.sort(eligible[rng.random(eligible.size) < share])
        when = _seconds(launch + (rng.random(chosen.size) * 14 * DAY_US).astype(np.int64))
        rec = row[chosen]
        tables.append(pa.table({
            "experiment_id": pa.array(np.full(chosen.size, name)),
            "source": records.table.column("source").combine_chunks().take(pa.array(rec)),
            "customer_id": records.table.column("customer_id").combine_chunks().take(pa.array(rec)),
            "arm": pa.array(np.array(arms)[rng.integers(0, len(arms), chosen.size)]),
            "assigned_at": pa.array(np.minimum(when, end_us - 1_000_000), TS),
        }))
    return pa.concat_tables(tables)
