"""One defect of a plugin definition (:class:`ekdsl.errors.DefinitionError` lists them); also
``ekdsl.errors.Problem``."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["Problem"]


class Problem(NamedTuple):
    """One defect of a plugin definition, located in the user's source."""

    kind: str  # "source" | "sink" | "function" | "plugin"
    symbol: str
    file: str
    line: int
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f" ({self.file}:{self.line})" if self.file else ""
        head = f"@{self.kind} '{self.symbol}'" if self.kind != "plugin" else f"plugin '{self.symbol}'"
        text = f"{head}{where} {self.message}"
        return f"{text}: {self.fix}" if self.fix else text
