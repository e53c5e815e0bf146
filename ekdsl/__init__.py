"""ekdsl: write eKuiper portable plugins as decorated Python functions.

>>> from ekdsl import Plugin
>>> plugin = Plugin("demo")
>>> @plugin.function
... def double(x: float) -> float:
...     return 2 * x
>>> double(2.0)
4.0
"""

from typing import TYPE_CHECKING, Any

from .context import Context, Row, Stopped
from .decorators import Param, connection, function, sink, source
from .errors import (
    ConfigError,
    ConnectionFailed,
    DefinitionError,
    DeployError,
    EkdslError,
    LoadError,
    PackagingError,
    ProtocolError,
    RenderError,
    StateError,
    StoreError,
    TemplateError,
    TransportError,
    UsageError,
)
from .plugin import Plugin, load_target

if TYPE_CHECKING:
    from .template import Template

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ConnectionFailed",
    "Context",
    "DefinitionError",
    "DeployError",
    "EkdslError",
    "LoadError",
    "PackagingError",
    "Param",
    "Plugin",
    "ProtocolError",
    "RenderError",
    "Row",
    "StateError",
    "Stopped",
    "StoreError",
    "Template",
    "TemplateError",
    "TransportError",
    "UsageError",
    "__version__",
    "connection",
    "function",
    "load_target",
    "sink",
    "source",
]


def __getattr__(name: str) -> Any:
    """``Template`` is imported when first asked for: a plugin without templates never loads the parser."""
    if name == "Template":
        from .template import Template

        return Template
    raise AttributeError(f"module 'ekdsl' has no attribute {name!r}")
