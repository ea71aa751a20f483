"""The online store behind one interface (:mod:`.base`): embedded SQLite files or a Redis server.

:func:`open_online_store` picks the backend ``[serve] online_store`` names; only this
factory knows them all.
"""

from __future__ import annotations

from patron.config import Settings
from patron.serving.online.base import EVENT_FIELDS, KEY_FIELDS, LiveRow, OnlineStore, StaleLiveRow
from patron.serving.online.embedded import EmbeddedStore

__all__ = ["EVENT_FIELDS", "KEY_FIELDS", "EmbeddedStore", "LiveRow", "OnlineStore", "StaleLiveRow",
           "open_online_store"]


def open_online_store(settings: Settings) -> OnlineStore:
    """The online store ``settings`` configure (``[serve] online_store``)."""
    if settings.serve.online_store == "redis":
        from patron.serving.online.redis import RedisStore

        return RedisStore(settings.serve.redis_url, prefix=settings.serve.redis_prefix)
    return EmbeddedStore(settings.serving_dir)
