"""The :class:`Plugin` registry, and loading a plugin from a target string."""

from __future__ import annotations

import importlib
import os
import sys
import types as _pytypes
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from . import decorators
from .decorators import get_spec
from .errors import DefinitionError, LoadError
from .introspect import NAME_RE, build_symbol
from .model import PluginModel, SymbolModel, Text
from .problems import Problem

__all__ = ["Plugin", "load_target"]


class Plugin:
    """A portable plugin: a name, a version, and the symbols registered on it.

    Register with ``@plugin.source``, ``@plugin.sink`` and ``@plugin.function``
    (bare or with options), with :meth:`add`, or collect module-level
    ``@source``/``@sink``/``@function`` callables with :meth:`collect`.
    """

    def __init__(
        self,
        name: str,
        version: str = "1.0.0",
        *,
        author: str = "",
        email: str = "",
        company: str = "",
        website: str = "",
        help_url: Union[str, Mapping[str, str], None] = None,
        description: Union[str, Mapping[str, str], None] = None,
        trial: bool = False,
        include: Sequence[str] = (),
        requirements: Sequence[str] = (),
        conda_env: str = "",
    ) -> None:
        self.name = name
        self.version = version
        self.author = {"name": author, "email": email, "company": company, "website": website}
        self.help_url = Text.of(help_url)
        self.description = Text.of(description)
        self.trial = trial
        self.include = tuple(include)
        self.requirements = (requirements,) if isinstance(requirements, str) else tuple(requirements)
        self.conda_env = conda_env
        self._entries: List[Callable[..., Any]] = []
        self.module = ""
        self.module_file = ""
        self.attr = ""

    def __repr__(self) -> str:
        return f"Plugin({self.name!r}, version={self.version!r}, symbols={len(self._entries)})"

    def _register(self, marked: Any) -> Any:
        if callable(marked) and get_spec(marked) is not None:
            self._remember_module(marked)
            if marked not in self._entries:
                self._entries.append(marked)
            return marked
        return lambda func: self._register(marked(func))

    def _remember_module(self, func: Callable[..., Any]) -> None:
        if not self.module:
            mod = sys.modules.get(getattr(func, "__module__", "") or "")
            self.module = getattr(mod, "__name__", "")
            self.module_file = getattr(mod, "__file__", "") or ""

    def source(self, func: Any = None, /, **options: Any) -> Any:
        """Register a source; same options as :func:`ekdsl.source`."""
        return self._register(decorators.source(func, **options))

    def sink(self, func: Any = None, /, **options: Any) -> Any:
        """Register a sink; same options as :func:`ekdsl.sink`."""
        return self._register(decorators.sink(func, **options))

    def function(self, func: Any = None, /, **options: Any) -> Any:
        """Register a SQL function; same options as :func:`ekdsl.function`."""
        return self._register(decorators.function(func, **options))

    def connection(self, func: Any = None, /, **options: Any) -> Any:
        """Declare a shared connection; same options as :func:`ekdsl.connection`. Symbols use it by annotation,
        so it needs no registration: this is the same decorator, for symmetry with the others."""
        return decorators.connection(func, **options)

    def add(self, *funcs: Callable[..., Any]) -> Plugin:
        """Register callables already marked with ``@source``, ``@sink`` or ``@function``."""
        for func in funcs:
            if get_spec(func) is None:
                raise TypeError(f"{func!r} is not marked: decorate it with @source, @sink or @function first")
            self._register(func)
        return self

    def collect(self, namespace: Union[_pytypes.ModuleType, str, Mapping[str, Any]]) -> Plugin:
        """Register every marked callable defined in a module (or a module name, or a dict)."""
        if isinstance(namespace, str):
            namespace = importlib.import_module(namespace)
        items = vars(namespace) if isinstance(namespace, _pytypes.ModuleType) else dict(namespace)
        if isinstance(namespace, _pytypes.ModuleType) and not self.module:
            self.module = namespace.__name__
            self.module_file = getattr(namespace, "__file__", "") or ""
        for value in list(items.values()):
            if callable(value) and get_spec(value) is not None:
                self._register(value)
        return self

    @classmethod
    def from_module(cls, module: Union[_pytypes.ModuleType, str], name: Optional[str] = None,
                    version: str = "1.0.0") -> Plugin:
        """A plugin holding every marked callable of ``module``, named after it by default."""
        if isinstance(module, str):
            module = importlib.import_module(module)
        plugin = cls(name or module.__name__.rsplit(".", 1)[-1], version)
        return plugin.collect(module)

    @property
    def callables(self) -> Tuple[Callable[..., Any], ...]:
        """The registered callables, in registration order."""
        return tuple(self._entries)

    def model(self, docs: bool = True) -> PluginModel:
        """Introspect and validate everything; raise :class:`DefinitionError` listing every problem.

        ``docs=False`` leaves out the texts taken from docstrings (the runtime needs none).
        """
        problems: List[Problem] = []
        if not isinstance(self.name, str) or not NAME_RE.fullmatch(self.name):
            problems.append(Problem("plugin", str(self.name), "", 0, "has a name eKuiper rejects",
                                    "use letters, digits, '_' and '-' only"))
        if self.conda_env and not NAME_RE.fullmatch(str(self.conda_env)):
            problems.append(Problem("plugin", str(self.name), "", 0,
                                    f"has conda_env {self.conda_env!r}, which is not a conda environment name",
                                    "use letters, digits, '_' and '-' only"))
        symbols: List[SymbolModel] = []
        for func in self._entries:
            spec = get_spec(func)
            assert spec is not None
            sym = build_symbol(func, spec, problems, docs)
            if sym is not None:
                symbols.append(sym)
        problems.extend(self._duplicates(symbols))
        if not self._entries:
            problems.append(Problem(
                "plugin", str(self.name), os.path.basename(self.module_file), 0,
                "declares no source, sink or function",
                "decorate at least one callable with @plugin.source, @plugin.sink or @plugin.function",
            ))
        if problems:
            raise DefinitionError(problems)
        return PluginModel(
            name=self.name, version=self.version, symbols=tuple(symbols), author=dict(self.author),
            help_url=self.help_url, description=self.description, trial=self.trial,
            module=self.module, module_file=self.module_file, attr=self.attr, include=self.include,
            requirements=self.requirements, conda_env=self.conda_env,
        )

    @staticmethod
    def _duplicates(symbols: List[SymbolModel]) -> List[Problem]:
        seen: Dict[Tuple[str, str], SymbolModel] = {}
        out = []
        for sym in symbols:
            first = seen.setdefault((sym.kind, sym.name), sym)
            if first is not sym:
                out.append(Problem(sym.kind, sym.name, sym.file, sym.line,
                                   f"is declared twice (first at {first.file}:{first.line})",
                                   "give one of them another name with name=..."))
        return out


def _import(target: str, module_name: str) -> _pytypes.ModuleType:
    try:
        return importlib.import_module(module_name)
    except SyntaxError as exc:
        where = f"{os.path.basename(exc.filename or '')}:{exc.lineno}"
        raise LoadError(target, f"SyntaxError at {where}: {exc.msg}") from exc
    except ImportError as exc:
        if isinstance(exc, ModuleNotFoundError) and exc.name == module_name:
            raise LoadError(target, f"no module named '{module_name}' "
                                    "(give a module on sys.path, 'module:attr', or a path to a .py file)") from exc
        raise LoadError(target, f"{type(exc).__name__}: {exc}") from exc
    except Exception as exc:
        raise LoadError(target, f"importing it raised {type(exc).__name__}: {exc}") from exc


def load_target(target: str) -> Plugin:
    """Import ``target`` and return its :class:`Plugin`.

    ``target`` is a module name, ``module:attr``, or a path to a ``.py`` file
    (its folder is put first on ``sys.path``). Without ``:attr`` the module's
    single ``Plugin`` object is used; a module with none but with module-level
    decorated callables becomes a plugin named after the module.
    """
    spec, _, attr = target.partition(":")
    module_name = spec
    if spec.endswith(".py") or os.sep in spec:
        path = os.path.abspath(spec)
        if not os.path.isfile(path):
            raise LoadError(target, f"no such file: {path}")
        folder, module_name = os.path.split(path[:-3] if path.endswith(".py") else path)
        if folder not in sys.path:
            sys.path.insert(0, folder)
    elif not spec:
        raise LoadError(target, "the target is empty: give a module, 'module:attr' or a .py path")
    module = _import(target, module_name)
    plugin = _resolve(target, module, attr)
    plugin.module = module.__name__
    plugin.module_file = getattr(module, "__file__", "") or ""
    plugin.attr = attr or plugin.attr
    return plugin


def _resolve(target: str, module: _pytypes.ModuleType, attr: str) -> Plugin:
    if attr:
        obj = getattr(module, attr, None)
        if obj is None:
            raise LoadError(target, f"module '{module.__name__}' has no attribute '{attr}'")
        if not isinstance(obj, Plugin):
            raise LoadError(target, f"'{attr}' is a {type(obj).__name__}, not an ekdsl.Plugin")
        return obj
    found = [(k, v) for k, v in vars(module).items() if isinstance(v, Plugin)]
    if len(found) > 1:
        names = ", ".join(k for k, _ in found)
        raise LoadError(target, f"it defines several Plugin objects ({names}): name one as 'module:attr'")
    if found:
        found[0][1].attr = found[0][0]
        return found[0][1]
    plugin = Plugin.from_module(module)
    if not plugin.callables:
        raise LoadError(target, "it defines no ekdsl.Plugin and no @source/@sink/@function callable")
    return plugin

