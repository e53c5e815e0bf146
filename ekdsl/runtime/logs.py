"""Logging for the plugin process: one line per record on stderr, which eKuiper copies into its log.

Every line carries the level, the plugin, and (for records about a symbol
instance) the symbol and ``rule/op/instance``.
"""

from __future__ import annotations

import logging
import sys
from typing import Optional

from ..protocol import Meta
from ..secrets import RedactFilter

__all__ = ["instance_logger", "setup_logging"]

ROOT = "ekdsl"
_FORMAT = "%(asctime)s %(levelname)s [%(ekdsl_plugin)s%(ekdsl_where)s] %(message)s"


class _Formatter(logging.Formatter):
    def __init__(self, plugin: str) -> None:
        super().__init__(_FORMAT)
        self.plugin = plugin

    def format(self, record: logging.LogRecord) -> str:
        record.ekdsl_plugin = self.plugin
        if not hasattr(record, "ekdsl_where"):
            record.ekdsl_where = ""
        return super().format(record)


class _InstanceFilter(logging.Filter):
    def __init__(self, where: str) -> None:
        super().__init__()
        self.where = where

    def filter(self, record: logging.LogRecord) -> bool:
        record.ekdsl_where = self.where
        return True


def setup_logging(plugin: str, level: int = logging.INFO) -> logging.Logger:
    """Send ekdsl's and user code's records to stderr with plugin context; return ekdsl's logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(plugin))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_ekdsl", False)]:
        root.removeHandler(old)
    handler._ekdsl = True  # type: ignore[attr-defined]
    handler.addFilter(RedactFilter())  # secret property values never reach the log, whoever writes them
    root.addHandler(handler)
    if root.level == logging.WARNING or root.level > level:
        root.setLevel(level)
    return logging.getLogger(ROOT)


def instance_logger(symbol: str, kind: str, meta: Optional[Meta] = None) -> logging.Logger:
    """A real :class:`logging.Logger` for one symbol instance; not cached, so instances leave no trace."""
    where = f" {kind} {symbol}"
    if meta is not None and (meta.rule_id or meta.op_id):
        where += f" rule={meta.rule_id} op={meta.op_id} instance={meta.instance_id}"
    logger = logging.Logger(f"{ROOT}.{kind}.{symbol}")
    logger.parent = logging.getLogger(f"{ROOT}.user")
    logger.addFilter(_InstanceFilter(where))
    logger.addFilter(RedactFilter())  # also where the process's handler is not ekdsl's (InProcess)
    return logger
