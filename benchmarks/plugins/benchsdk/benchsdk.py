# The official-SDK side of the benchmark (PyPI "ekuiper"): the same minimal symbols as benchek.
from ekuiper import Function, PluginConfig, Sink, Source, plugin


class Src(Source):
    def configure(self, datasource, conf):
        size = int(conf.get("size", 40))
        self.row = {"name": "bench", "value": 2021, "pad": "x" * max(0, size - 40)}
        self.running = True

    def open(self, ctx):
        row = self.row
        while self.running:
            ctx.emit(row, None)

    def close(self, ctx):
        self.running = False


class Snk(Sink):
    def configure(self, conf):
        self.ack = conf.get("requireAck") is True

    def open(self, ctx):
        pass

    def collect(self, ctx, data):
        if self.ack:
            ctx.ack_ok()

    def close(self, ctx):
        pass


class Echo(Function):
    def validate(self, args):
        return ""

    def exec(self, args, ctx):
        return args[0]

    def is_aggregate(self):
        return False


class Agg(Function):
    def validate(self, args):
        return ""

    def exec(self, args, ctx):
        return float(sum(args[0]))

    def is_aggregate(self):
        return True


echo, agg = Echo(), Agg()

if __name__ == "__main__":
    plugin.start(PluginConfig("benchsdk", {"src": lambda: Src()}, {"snk": lambda: Snk()},
                              {"echo": lambda: echo, "agg": lambda: agg}))
