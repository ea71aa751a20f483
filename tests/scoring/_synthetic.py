"""Data and reference scores the scoring tests share: a synthetic ``rfm`` and the models' own predictions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from patron.config import ModelSettings, Settings
from patron.engine import Warehouse, connect
from patron.models.clv import DAYS_PER_MONTH, customer_lifetime_value
from patron.scoring.batch import score_customers
from patron.scoring.fit import fit_value_models
from patron.scoring.model_store import FittedValueModels
from tests.models._simulate import simulate_bg_nbd

END = dt.date(2025, 6, 30)
HORIZONS = (3, 12, 36)
MONTH_WEEKS = DAYS_PER_MONTH / 7.0


def synthetic_rfm(n: int, seed: int) -> pd.DataFrame:
    """An ``rfm`` table of BG/NBD customers with Gamma-Gamma revenue and noisy margins (weeks).

    Row 0 is a fixed probe customer (4 repeats, last at week 40 of 52, 40 a repeat order).
    """
    base = simulate_bg_nbd(0.25, 4.0, 0.8, 2.5, n, seed)
    rng = np.random.default_rng(seed + 1)
    x = base["frequency"].to_numpy().astype("int64")
    nu = rng.gamma(4.0, 1.0 / 15.0, n)  # Gamma-Gamma: p = 6, q = 4, gamma = 15, mean 30 per order
    first_revenue = rng.gamma(6.0, 1.0 / nu)
    repeat_mean = np.where(x > 0, rng.gamma(6.0 * np.maximum(x, 1), 1.0 / (np.maximum(x, 1) * nu)), 0.0)
    theta = rng.normal(0.35, 0.12, n)

    def gp2(revenue: np.ndarray) -> np.ndarray:
        return theta * revenue + rng.normal(0.0, 1.0, n) * np.sqrt(0.5 * revenue)

    repeat_gp2 = np.where(x > 0, gp2(repeat_mean * x), 0.0)
    frame = pd.DataFrame({"frequency": x, "recency": base["recency"], "T": base["T"],
                          "monetary_revenue": repeat_mean, "first_revenue": first_revenue,
                          "monetary_gp2": np.where(x > 0, repeat_gp2 / np.maximum(x, 1), 0.0),
                          "first_gp2": gp2(first_revenue)})
    frame.loc[0, ["frequency", "recency", "T", "monetary_revenue", "monetary_gp2"]] = [4, 40.0, 52.0, 40.0, 14.0]
    frame.loc[0, ["first_revenue", "first_gp2"]] = [40.0, 14.0]
    return rfm_columns(frame)


def rfm_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns ``patron.transforms.rfm.rfm_summary`` writes, from the parts above."""
    x = frame["frequency"].astype("int64")
    end = pd.Timestamp(END, tz="UTC") + pd.Timedelta(hours=12)
    first = end - pd.to_timedelta(frame["T"] * 7, unit="D")
    return pd.DataFrame({
        "customer_key": [f"c{i:06d}" for i in range(len(frame))],
        "frequency": x,
        "recency": frame["recency"].astype(float),
        "T": frame["T"].astype(float),
        "monetary_value": frame["monetary_gp2"],
        "monetary_gp2": frame["monetary_gp2"],
        "monetary_revenue": frame["monetary_revenue"],
        "n_orders": x + 1,
        "total_gp2": frame["first_gp2"] + x * frame["monetary_gp2"],
        "total_revenue": frame["first_revenue"] + x * frame["monetary_revenue"],
        "first_purchase_at": first,
        "last_purchase_at": first + pd.to_timedelta(frame["recency"] * 7, unit="D"),
    })


def read(warehouse: Warehouse, table: str) -> pd.DataFrame:
    return warehouse.to_pandas(warehouse.table(table)).sort_values("customer_key").reset_index(drop=True)


class ValuePerOrder:
    """Expected value per order the way a reader would compute it: Gamma-Gamma spend x kept margin."""

    def __init__(self, models: FittedValueModels, value: str) -> None:
        self.models, self.value = models, value

    def expected_spend(self, data: pd.DataFrame) -> np.ndarray:
        # repeat buyers whose repeats were all returned are scored with a mean spend of (next to) 0
        spend = self.models.spend.expected_spend(
            data.assign(monetary_value=np.maximum(data["monetary_revenue"], 1e-300))
        )
        return spend * (self.models.margin.expected_margin(data) if self.value == "gp2" else 1.0)


def direct_scores(models: FittedValueModels, rfm: pd.DataFrame, *, value: str = "gp2",
                  discount_rate: float = 0.10) -> dict[str, np.ndarray]:
    """Per-customer scores from the models' own prediction methods, customer by customer."""
    out = {"p_alive": models.purchase.p_alive(rfm)}
    spend = ValuePerOrder(models, value)
    for h in HORIZONS:
        out[f"expected_orders_{h}m"] = models.purchase.expected_purchases(rfm, t=h * MONTH_WEEKS)
        out[f"expected_value_{h}m"] = out[f"expected_orders_{h}m"] * spend.expected_spend(rfm)
        out[f"clv_{h}m"] = customer_lifetime_value(models.purchase, spend, rfm, months=h,
                                                   discount_rate=discount_rate, time_unit_days=7.0)
    return out


def assert_scores_match(scores: pd.DataFrame, expected: dict[str, np.ndarray]) -> None:
    for name, values in expected.items():
        np.testing.assert_allclose(scores[name], values, rtol=1e-9, atol=1e-12, err_msg=name)


def numeric(scores: pd.DataFrame) -> pd.DataFrame:
    return scores.select_dtypes("number")


def fit_and_score(folder: Path, rfm: pd.DataFrame, value: str = "revenue") -> tuple[FittedValueModels, pd.DataFrame]:
    settings = Settings(project_dir=folder, engine="duckdb", model=ModelSettings(value=value))
    with connect(settings) as warehouse:
        warehouse.write("rfm", rfm)
        models = fit_value_models(warehouse, settings=settings)
        score_customers(warehouse, models, settings=settings, observation_end=END)
        return models, read(warehouse, "scores")
