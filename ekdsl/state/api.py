"""``ctx.state``: what user code calls. Keys are ``str``; values JSON values; every call goes to the store at once
(a ``put`` is durable when it returns: see docs/state.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple, Union

from .scope import Scope
from .store import Store, Stores, default_stores
from .values import add, check_key, decode, encode

if TYPE_CHECKING:
    from ..context import Context

__all__ = ["State", "Transaction", "scope_of", "state_of"]

Number = Union[int, float]


class State:
    """The state of one scope: a symbol instance (the default: its plugin, symbol, rule, operator, instance and,
    for a function, call site), or the plugin as a whole (:attr:`shared`). Thread-safe."""

    __slots__ = ("_prefix", "_store", "scope")

    def __init__(self, store: Store, scope: Scope) -> None:
        self._store = store
        self.scope = scope
        self._prefix = scope.prefix

    def __repr__(self) -> str:
        return f"<State of plugin {self._store.plugin!r}: {self.scope.describe()}>"

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        key = check_key(key, "get")
        data = self._store.get(self._prefix + key)
        return default if data is None else decode(data, key)

    def put(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key``; when this returns, the value is in the store."""
        key = check_key(key, "put")
        self._store.write([(self._prefix + key, encode(value, key))])

    def delete(self, key: str) -> bool:
        """Remove ``key``; ``True`` if it was there."""
        return self._store.delete(self._prefix + check_key(key, "delete"))

    def incr(self, key: str, by: Number = 1) -> Number:
        """Add ``by`` to the number under ``key`` (0 when missing) and return the sum; atomic, also between
        processes."""
        key = check_key(key, "incr")
        add(None, by, key)  # a wrong ``by`` fails here, before the store is touched
        data = self._store.update(self._prefix + key, lambda current: add(current, by, key)[1])
        result: Number = decode(data, key)
        return result

    def items(self) -> List[Tuple[str, Any]]:
        """Every ``(key, value)`` of this scope, in key order."""
        n = len(self._prefix)
        return [(k[n:], decode(v, k[n:])) for k, v in self._store.scan(self._prefix)]

    def transaction(self) -> Transaction:
        """``with state.transaction() as tx:`` writes everything ``tx`` was given at once when the block ends, or
        nothing if it raises."""
        return Transaction(self)

    @property
    def shared(self) -> State:
        """The state of the plugin as a whole, the same for every symbol, rule and instance."""
        return self if self.scope.kind == "shared" else State(self._store, Scope("shared"))


class Transaction:
    """Writes collected in memory and applied together (all or none); reads see them. It is a batch, not a lock:
    another writer of the same keys (only possible in the shared scope) may write in between."""

    def __init__(self, state: State) -> None:
        self._state = state
        self._changes: Dict[str, Optional[bytes]] = {}
        self._done = False

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        self._done = True
        if exc_type is None:
            prefix = self._state._prefix
            self._state._store.write([(prefix + k, v) for k, v in self._changes.items()])

    def _check(self, key: Any, operation: str) -> str:
        if self._done:
            from ..errors import StateError

            raise StateError(f"state.{operation}: the transaction has ended; start a new one", operation=operation,
                             key=key)
        return check_key(key, operation)

    def get(self, key: str, default: Any = None) -> Any:
        key = self._check(key, "get")
        if key in self._changes:
            data = self._changes[key]
            return default if data is None else decode(data, key)
        return self._state.get(key, default)

    def put(self, key: str, value: Any) -> None:
        key = self._check(key, "put")
        self._changes[key] = encode(value, key)

    def delete(self, key: str) -> bool:
        key = self._check(key, "delete")
        existed = self.get(key, _MISSING) is not _MISSING
        self._changes[key] = None
        return existed

    def incr(self, key: str, by: Number = 1) -> Number:
        key = self._check(key, "incr")
        current = self._changes[key] if key in self._changes else self._state._store.get(self._state._prefix + key)
        result, data = add(current, by, key)
        self._changes[key] = data
        return result

    def items(self) -> List[Tuple[str, Any]]:
        merged = dict(self._state.items())
        for key, data in self._changes.items():
            if data is None:
                merged.pop(key, None)
            else:
                merged[key] = decode(data, key)
        return sorted(merged.items())


_MISSING = object()


def scope_of(ctx: Context) -> Scope:
    """The scope a context's ``state`` has: its symbol instance (with its call site, for a function)."""
    if ctx.kind not in ("source", "sink", "function"):
        from ..errors import StateError

        raise StateError("ctx.state needs the symbol's kind: this Context has none (use the Context the runtime "
                         "passes, or InProcess)")
    func_id = ctx.func_id if ctx.kind == "function" else 0
    return Scope(ctx.kind, ctx.symbol, ctx.rule_id, ctx.op_id, ctx.instance_id, func_id)


def state_of(ctx: Context, scope: Optional[Scope] = None) -> State:
    """A context's :class:`State` (or another ``scope`` of its plugin), in the stores the context names (the
    process's own by default)."""
    stores: Stores = ctx.stores if ctx.stores is not None else default_stores()
    return State(stores.store(ctx.plugin), scope or scope_of(ctx))
