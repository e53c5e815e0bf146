"""What user code sees at run time: the :class:`Context` and the :class:`Row` wrapper."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Optional

if TYPE_CHECKING:
    from .state import State

__all__ = ["Context", "Row", "Stopped"]


class Stopped(BaseException):
    """Raised by :meth:`Context.sleep` when the symbol is stopped while waiting.

    It derives from ``BaseException`` (like ``GeneratorExit``) so that
    ``except Exception`` in user code does not swallow it; ``finally`` runs.
    """


class Row(NamedTuple):
    """A source row with eKuiper meta: ``yield Row({"t": 1}, meta={"topic": "a"})``.

    The meta values are available in SQL through ``meta(key)``.
    """

    data: Mapping[str, Any]
    meta: Optional[Mapping[str, Any]] = None


@dataclass(frozen=True)
class Context:
    """The rule context of one symbol instance.

    Declare a parameter annotated ``Context`` (or named ``ctx``) to receive it.
    ``logger`` is a :class:`logging.Logger` whose records carry the plugin,
    symbol and rule/op/instance; :attr:`state` keeps values across restarts.
    """

    plugin: str = ""
    symbol: str = ""
    rule_id: str = ""
    op_id: str = ""
    instance_id: int = 0
    func_id: int = 0
    config: Mapping[str, Any] = field(default_factory=dict)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("ekdsl.user"))
    stop_event: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    kind: str = ""  # "source", "sink" or "function": which state scope is this instance's
    stores: Any = field(default=None, repr=False, compare=False)  # where state lives (None: the process's own)
    connections: Any = field(default=None, repr=False, compare=False)  # the instance's shared connections

    @property
    def stopped(self) -> bool:
        """True once eKuiper has stopped this instance."""
        return self.stop_event.is_set()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``, or raise :class:`Stopped` as soon as the instance is stopped."""
        if self.stop_event.wait(max(0.0, seconds)):
            raise Stopped()

    @property
    def state(self) -> State:
        """This instance's :class:`~ekdsl.state.State`, which survives restarts of the rule, the plugin and
        eKuiper; ``ctx.state.shared`` is the plugin's. Made on first use: a symbol that never uses it pays
        nothing."""
        state: Optional[State] = self.__dict__.get("_state")
        if state is None:
            from .state import state_of

            state = state_of(self)
            object.__setattr__(self, "_state", state)
        return state

    def reopen(self, client: Any) -> Any:
        """Close a shared connection's ``client``, found broken, and return a new one (opened once for everyone
        who shares it); :class:`~ekdsl.errors.ConnectionFailed` when opening fails (the next use tries again)."""
        if self.connections is None:
            raise ValueError(f"{self.kind or 'this symbol'} '{self.symbol}' uses no shared connection: only a "
                             "client received through a @connection parameter can be reopened")
        return self.connections.reopen(client)

    @property
    def key(self) -> str:
        """``<ruleId>_<opId>_<instanceId>``, the stem of this instance's socket names."""
        return f"{self.rule_id}_{self.op_id}_{self.instance_id}"
