"""State that survives: ``ctx.state`` for sources, sinks and functions (see docs/state.md).

:class:`State` is what user code calls; it computes its :class:`Scope` once and hands keys and bytes to a
:class:`Store`, whose backend is SQLite (:mod:`.sqlite_backend`) or Redis (:mod:`.redis_backend`), chosen where
eKuiper keeps its own state (:mod:`.locate`).
"""

from .api import State, Transaction, scope_of, state_of
from .locate import Location, find_location, parse_location
from .scope import Scope
from .store import Store, Stores, default_stores

__all__ = ["Location", "Scope", "State", "Store", "Stores", "Transaction", "default_stores", "find_location",
           "parse_location", "scope_of", "state_of"]
