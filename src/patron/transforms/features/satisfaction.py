"""Satisfaction features: latest, mean and lowest NPS (0-10) and CSAT (1-5) answers.

From the survey answers of all the customer's source records before as_of; the latest
answer of a type is the one with the latest ``answered_at`` (``answer_rank = 0``).
"""

from __future__ import annotations

import ibis

from patron.contract import SURVEY_TYPES
from patron.transforms.features.spec import DERIVED, Feature, feature

GROUP = "satisfaction"
PROMOTER = 9
PASSIVE = 7
SCALES = {"nps": "0-10", "csat": "1-5"}


def _survey(kind: str) -> list[Feature]:
    label = kind.upper()

    def scores(t, where=None):
        condition = t.survey_type == kind if where is None else (t.survey_type == kind) & where(t)
        return condition.ifelse(t.score, ibis.null("int64"))

    return [
        feature(f"{kind}_latest", GROUP, "int64", f"score of the latest '{kind}' answer",
                f"The customer's latest {label} score ({SCALES[kind]}).", source="surveys",
                expr=lambda t: scores(t, lambda u: u.answer_rank == 0).max()),
        feature(f"{kind}_mean", GROUP, "float64", f"mean(score) over '{kind}' answers",
                f"Mean {label} score over all answers.", source="surveys", expr=lambda t: scores(t).mean()),
        feature(f"{kind}_mean_365d", GROUP, "float64", f"mean(score) over '{kind}' answers, days_ago <= 365",
                f"Mean {label} score over the answers of the 365 days before as_of.", source="surveys",
                expr=lambda t: scores(t, lambda u: u.days_ago <= 365).mean()),
        feature(f"{kind}_min", GROUP, "int64", f"min(score) over '{kind}' answers",
                f"Lowest {label} score given: a bad experience stays on record.", source="surveys",
                expr=lambda t: scores(t).min()),
        feature(f"{kind}_answers", GROUP, "int64", f"count('{kind}' answers)",
                f"{label} surveys answered.", source="surveys", expr=lambda t: scores(t).count(), fill=0),
    ]


FEATURES: tuple[Feature, ...] = (
    *(f for kind in SURVEY_TYPES for f in _survey(kind)),
    feature("days_since_last_survey", GROUP, "int64", "min(days_ago) over survey answers",
            "Days from the latest survey answer to as_of.", source="surveys", expr=lambda t: t.days_ago.min()),
    feature("nps_latest_category", GROUP, "string",
            f"promoter if nps_latest >= {PROMOTER}; passive if >= {PASSIVE}; detractor otherwise",
            "NPS category of the latest answer; NULL without an NPS answer.", source=DERIVED,
            expr=lambda t: ibis.cases((t.nps_latest >= PROMOTER, "promoter"), (t.nps_latest >= PASSIVE, "passive"),
                                      (t.nps_latest.notnull(), "detractor"), else_=ibis.null("string"))),
)
