# A plugin written against the official eKuiper Python SDK (PyPI "ekuiper"), behaving like the SDK's
# own "pysam" example: used to check that ekdsl's host emulator drives any portable plugin as eKuiper does.
import logging
import time

from ekuiper import Context, Function, PluginConfig, Sink, Source, plugin


class PyJson(Source):
    def __init__(self):
        self.running = True

    def configure(self, datasource, conf):
        logging.info("configuring with datasource %r and conf %r", datasource, conf)

    def open(self, ctx: Context):
        while self.running:
            ctx.emit({"name": "pyjson", "value": 2021}, None)
            time.sleep(0.2)

    def close(self, ctx: Context):
        self.running = False


class PrintSink(Sink):
    def configure(self, conf):
        pass

    def open(self, ctx: Context):
        pass

    def collect(self, ctx: Context, data):
        print("receive: ", data)
        ctx.ack_ok()  # unconditionally, like the SDK example

    def close(self, ctx: Context):
        pass


class Revert(Function):
    def validate(self, args):
        return ""

    def exec(self, args, ctx: Context):
        return args[0][::-1]

    def is_aggregate(self):
        return False


revert = Revert()

if __name__ == "__main__":
    plugin.start(PluginConfig("pysam", {"pyjson": lambda: PyJson()}, {"print": lambda: PrintSink()},
                              {"revert": lambda: revert}))
