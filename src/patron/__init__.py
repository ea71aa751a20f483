"""patron: customer-value platform. One customer view, profit CLV, segments, audiences.

Importing patron opens nothing and imports no engine; see ``patron.engine.connect``.
"""

__version__ = "0.1.0"
