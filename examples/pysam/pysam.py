"""A port of eKuiper's official Python SDK example ``pysam``.

The SDK version needs three classes, a main program, a plugin json and one
metadata file per symbol; here the functions are the plugin and
``python -m ekdsl export examples/pysam/pysam.py --zip`` writes the rest.
"""

from typing import Iterator

from ekdsl import Context, Plugin

plugin = Plugin(
    "pysam",
    version="v1.0.0",
    author="EMQ",
    email="contact@emqx.io",
    company="EMQ Technologies Co., Ltd",
    website="https://www.emqx.io",
    trial=True,
)


@plugin.source
def pyjson(ctx: Context, period: float = 0.2) -> Iterator[dict]:
    """The python source will send json data.

    Args:
        period: Seconds to wait between two rows.
    """
    while True:
        yield {"name": "pyjson", "value": 2021}
        ctx.sleep(period)


@plugin.sink(name="print", label={"en_US": "Print", "zh_CN": "打印日志"})
def print_sink(data: str, ctx: Context) -> None:
    """Example sink plugin to print with python logger."""
    ctx.logger.info("receive: %s", data)


@plugin.function(label={"en_US": "String Revert", "zh_CN": "字符串反转"})
def revert(field: str) -> str:
    """Revert the input string.

    Args:
        field: The field to revert.

    Returns:
        Reverted string.
    """
    return field[::-1]
