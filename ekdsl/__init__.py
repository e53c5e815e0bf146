"""ekdsl: write eKuiper portable plugins as decorated Python functions.

>>> from ekdsl import Plugin
>>> plugin = Plugin("demo")
>>> @plugin.function
... def double(x: float) -> float:
...     return 2 * x
>>> double(2.0)
4.0
"""

from .context import Context, Row, Stopped
from .decorators import Param, function, sink, source
from .errors import (
    ConfigError,
    DefinitionError,
    DeployError,
    EkdslError,
    LoadError,
    PackagingError,
    ProtocolError,
    StateError,
    StoreError,
    TransportError,
    UsageError,
)
from .plugin import Plugin, load_target

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Context",
    "DefinitionError",
    "DeployError",
    "EkdslError",
    "LoadError",
    "PackagingError",
    "Param",
    "Plugin",
    "ProtocolError",
    "Row",
    "StateError",
    "Stopped",
    "StoreError",
    "TransportError",
    "UsageError",
    "__version__",
    "function",
    "load_target",
    "sink",
    "source",
]
