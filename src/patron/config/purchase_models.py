"""The purchase models' names: the one list every layer (patron.toml, the CLI, the backtest) uses."""

from __future__ import annotations

from patron.errors import ConfigError

#: The purchase models, by the one name used everywhere: patron.toml, ``patron fit --model``,
#: the backtest and its ``backtests`` table (classes: :data:`patron.scoring.model_store.PURCHASE_MODELS`).
PURCHASE_MODEL_NAMES = ("bg_nbd", "pareto_nbd", "mbg_nbd")
#: Earlier spellings (the class names), still accepted in patron.toml and by ``--model``.
PURCHASE_MODEL_ALIASES = {"BetaGeo": "bg_nbd", "ParetoNBD": "pareto_nbd", "ModifiedBetaGeo": "mbg_nbd"}
#: How each purchase model is written in the literature, and on charts and reports.
PURCHASE_MODEL_LABELS = {"bg_nbd": "BG/NBD", "pareto_nbd": "Pareto/NBD", "mbg_nbd": "MBG/NBD"}


def purchase_model_name(name: str) -> str:
    """The purchase model's name (``bg_nbd``, ``pareto_nbd``, ``mbg_nbd``) from any accepted spelling.

    Takes the names themselves in any case, with ``-`` or ``/`` for ``_`` (``BG/NBD``), and
    the class names of :data:`PURCHASE_MODEL_ALIASES`.

    Raises
    ------
    ConfigError
        Naming the accepted spellings.
    """
    if name in PURCHASE_MODEL_ALIASES:
        return PURCHASE_MODEL_ALIASES[name]
    folded = str(name).strip().lower().replace("-", "_").replace("/", "_")
    if folded in PURCHASE_MODEL_NAMES:
        return folded
    raise ConfigError(f"purchase_model must be one of {', '.join(PURCHASE_MODEL_NAMES)} "
                      f"(or {', '.join(PURCHASE_MODEL_ALIASES)}), not {name!r}")
