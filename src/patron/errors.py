"""patron's exception family: every error a user can meet derives from ``PatronError``."""

from __future__ import annotations


class PatronError(Exception):
    """Base of every error patron raises on purpose."""


class ConfigError(PatronError):
    """``patron.toml`` is missing, unreadable or holds an invalid setting."""


class DataContractError(PatronError):
    """Input data break the data contract (a missing column, an unreadable file, a bad value)."""


class EngineError(PatronError):
    """A query failed on the engine; carries the table or step it was for."""

    def __init__(self, message: str, *, table: str | None = None, query: str | None = None) -> None:
        context = f" (table {table})" if table else ""
        super().__init__(f"{message}{context}")
        self.table = table
        self.query = query


class NotFittedError(PatronError, AttributeError):
    """A model was asked for predictions before ``fit``."""


class ConvergenceError(PatronError):
    """A model fit did not converge, or the data cannot identify the model."""


class QualityError(PatronError):
    """A blocking data-quality check failed."""


class AccessDenied(PatronError):
    """The caller's role does not allow this action."""
