"""ekdsl: write eKuiper portable plugins as decorated Python functions.

>>> from ekdsl import Plugin
>>> plugin = Plugin("demo")
>>> @plugin.function
... def double(x: float) -> float:
...     return 2 * x
>>> double(2.0)
4.0
"""

# The first statement, in syntax every Python reads (2.7 too: no annotations in this file): an interpreter too
# old for ekdsl (a plugin started with eKuiper's portable.pythonBin, or `python -m ekdsl`) says so in one line
# instead of failing on a newer feature.
import sys

if sys.version_info < (3, 9):  # noqa: UP036
    sys.stderr.write(
        "ekdsl needs Python 3.9 or newer, but this is Python {}.{}.{} ({}): in eKuiper, set portable.pythonBin "
        "in etc/kuiper.yaml (or KUIPER__PORTABLE__PYTHONBIN) to a Python 3.9+ interpreter\n".format(
            sys.version_info[0], sys.version_info[1], sys.version_info[2], sys.executable or "python"))
    raise SystemExit(1)

# Everything else is imported when first used (PEP 562): the plugin process imports ekdsl.runtime, which
# needs none of the decorators, introspection or templates before its handshake.
import importlib

TYPE_CHECKING = False  # typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any, List  # noqa: F401  (in type comments)

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


_ERRORS = ("ConfigError", "ConnectionFailed", "DefinitionError", "DeployError", "EkdslError", "LoadError",
           "PackagingError", "ProtocolError", "RenderError", "StateError", "StoreError", "TemplateError",
           "TransportError", "UsageError")
_HOME = dict([(n, "errors") for n in _ERRORS] + [(n, "context") for n in ("Context", "Row", "Stopped")]
             + [(n, "decorators") for n in ("Param", "connection", "function", "sink", "source")]
             + [("Plugin", "plugin"), ("load_target", "plugin"), ("Template", "template")])


def __getattr__(name):  # type: (str) -> Any
    """A public name, imported from its module when first asked for."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError("module 'ekdsl' has no attribute " + repr(name))
    value = getattr(importlib.import_module("." + home, __name__), name)
    globals()[name] = value
    return value


def __dir__():  # type: () -> List[str]
    return sorted(set(globals()) | set(__all__))
