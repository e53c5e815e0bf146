"""eKuiper's side of the portable-plugin protocol, to run and test plugins without an eKuiper server."""

from .batching import BatchedSink
from .channels import CommandError, HostError
from .emulator import Emulator
from .host import FunctionHandle, Host, SinkHandle, SourceHandle, source_config
from .inprocess import InProcess
from .planner import RateLimitedSource, RuleError
from .process import LAUNCH_ARG, PluginProcess
from .transform import MessageDropped

__all__ = [
    "LAUNCH_ARG",
    "BatchedSink",
    "CommandError",
    "Emulator",
    "FunctionHandle",
    "Host",
    "HostError",
    "InProcess",
    "MessageDropped",
    "PluginProcess",
    "RateLimitedSource",
    "RuleError",
    "SinkHandle",
    "SourceHandle",
    "source_config",
]
