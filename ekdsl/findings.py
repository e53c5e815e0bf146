"""What ``ekdsl check`` finds in a package: :class:`Finding` and the :class:`Report` that collects them.

Every check (:mod:`ekdsl.checks`, :mod:`ekdsl.lint`, :mod:`ekdsl.deploy.checks`) writes into a report;
this module imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List

__all__ = ["Finding", "Report"]


@dataclass(frozen=True)
class Finding:
    level: str  # "error" | "warning"
    message: str
    lint: bool = False  # False: eKuiper's installer refuses the package; True: it installs, but misbehaves

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


@dataclass
class Report:
    """The result of checking one package."""

    name: str
    findings: List[Finding] = field(default_factory=list)
    info: Dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(f.level == "error" for f in self.findings)

    def error(self, message: str, lint: bool = False) -> None:
        self.findings.append(Finding("error", message, lint))

    def warn(self, message: str) -> None:
        self.findings.append(Finding("warning", message, True))
