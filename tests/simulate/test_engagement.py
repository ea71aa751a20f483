"""Engagement volumes, survey scores and experiment assignments."""

from __future__ import annotations

import numpy as np
import pandas as pd

from patron.simulate import Retailer


def test_a_few_events_per_person_year(retailer: Retailer) -> None:
    events = retailer.tables["engagement_events"].to_pandas()
    tc = retailer.truth["truth_customers"].to_pandas()
    person_years = (tc["T_weeks"] / 52.18).sum()
    assert 1.0 < len(events) / person_years < 8.0
    sent = events[events["event_type"] == "sent"]
    assert set(sent["channel"]) == {"email", "sms", "push"}
    assert (events["event_type"] == "open").sum() < len(sent)


def test_engaged_persons_open_more(retailer: Retailer) -> None:
    events = retailer.tables["engagement_events"].to_pandas()
    ident = retailer.truth["truth_identity"].to_pandas()
    tc = retailer.truth["truth_customers"].to_pandas().set_index("person_id")
    events = events.merge(ident, on=["source", "customer_id"])
    per = events.pivot_table(index="person_id", columns="event_type", values="channel", aggfunc="size",
                             fill_value=0)
    rate = per["open"] / per["sent"].clip(lower=1)
    engaged = tc.loc[rate.index, "engagement"]
    assert np.corrcoef(rate, engaged)[0, 1] > 0.3


def test_surveys_reflect_satisfaction(retailer: Retailer) -> None:
    surveys = retailer.tables["surveys"].to_pandas().merge(retailer.truth["truth_identity"].to_pandas(),
                                                            on=["source", "customer_id"])
    sat = retailer.truth["truth_customers"].to_pandas().set_index("person_id")["satisfaction"]
    nps = surveys[surveys["survey_type"] == "nps"]
    assert nps["score"].between(0, 10).all()
    assert surveys.loc[surveys["survey_type"] == "csat", "score"].between(1, 5).all()
    assert np.corrcoef(nps["score"], sat.loc[nps["person_id"]])[0, 1] > 0.5


def test_experiments_split_evenly(retailer: Retailer) -> None:
    exp = retailer.tables["experiments"].to_pandas()
    assert set(exp["experiment_id"]) == {"EXP-WINBACK", "EXP-FREESHIP"}
    arms = exp[exp["experiment_id"] == "EXP-WINBACK"]["arm"].value_counts(normalize=True)
    assert abs(arms["control"] - 0.5) < 0.03
    assert (exp["assigned_at"] < pd.Timestamp("2025-12-31", tz="UTC")).all()
