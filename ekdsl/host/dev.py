"""``python -m ekdsl dev``: try a plugin against the emulator from the command line."""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from typing import Any, Dict, Iterable, List, Optional, TextIO, Tuple

from ..errors import ProtocolError, UsageError
from ..framing import encode_sink_messages
from ..session import is_source_failure
from ..transport import Timeout
from .channels import CommandError, HostError
from .emulator import Emulator
from .transform import MessageDropped

__all__ = ["add_arguments", "run"]

SAMPLE_ROW = {"name": "ekdsl", "value": 1}
_SAMPLES: Dict[str, Any] = {
    "string": "ekdsl", "int": 1, "float": 1.5, "number": 1.5, "bool": True, "boolean": True,
    "bytea": base64.b64encode(b"ekdsl").decode(), "datetime": "2024-01-01T00:00:00Z",
    "list_string": ["a", "b"], "list_int": [1, 2], "array": [1, 2], "object": {}, "list_object": [],
}

_ELEMENT = {"array": "float", "list_int": "int", "list_string": "string", "list_object": "object"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="a package (.zip or folder) or a module, module:attr or .py file")
    p.add_argument("--python", help="the python eKuiper would run (default: this one)")
    p.add_argument("--init-timeout", type=float, default=60.0,
                   help="seconds to wait for the handshake (eKuiper's initTimeout)")
    p.add_argument("--socket-dir", help="where the .ipc files go (default: a private folder for ekdsl "
                                        "plugins, /tmp for others, which hard-code it)")
    p.add_argument("-v", "--verbose", action="store_true", help="show the plugin's own output live")
    p.add_argument("--state", metavar="DIR|URL",
                   help="keep the plugin's ctx.state in this folder (or redis:// URL), so that the next run resumes "
                        "from it (default: a fresh store, removed at exit)")
    p.add_argument("--datasource", default="", help="the streams' DATASOURCE (for the tour and 'source')")
    sub = p.add_subparsers(dest="mode", metavar="MODE")
    s = sub.add_parser("source", help="run a source and print its rows")
    s.add_argument("symbol")
    s.add_argument("-n", "--rows", type=int, default=10, help="rows to read (default 10)")
    s.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                   help="override a property (as the stream's EXTRA option); VALUE is JSON or text")
    s.add_argument("--conf-key", default="", help="the stream's CONF_KEY")
    s.add_argument("--datasource", default=argparse.SUPPRESS, help="the stream's DATASOURCE")
    s.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the rows")
    s.add_argument("--connection", action="append", default=[], metavar="ID=JSON",
                   help="a named connection (POST /connections) whose props a confKey's connectionSelector takes")
    k = sub.add_parser("sink", help="feed a sink rows from a JSON Lines file or stdin")
    k.add_argument("symbol")
    k.add_argument("--input", default="-", help="JSON Lines file, one row (or one event array) per line")
    k.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="a rule action property")
    k.add_argument("--require-ack", action="store_true", help="set requireAck and show each ack")
    k.add_argument("--send-single", action="store_true", help="send each row on its own (sendSingle)")
    k.add_argument("--batch", type=int, default=0, help="group N rows per message (batchSize)")
    k.add_argument("--connection", action="append", default=[], metavar="ID=JSON",
                   help="a named connection (POST /connections) of the sink's type, for --conf connectionSelector=ID")
    f = sub.add_parser("function", help="call a function with arguments (JSON, or text)")
    f.add_argument("symbol")
    f.add_argument("args", nargs="*")
    v = sub.add_parser("serve", help="offer eKuiper's plugin test server REST API on 127.0.0.1")
    v.add_argument("--port", type=int, default=33333)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_conf(items: Iterable[str]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--conf expects KEY=VALUE, got {item!r}")
        out[key.strip()] = _value(value)
    return out


class _Out:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, text: str = "") -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def parse_connections(items: Iterable[str]) -> Dict[str, Dict[str, Any]]:
    """``--connection ID=JSON`` options: id → props."""
    out: Dict[str, Dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        props = _value(value) if sep else None
        if not key.strip() or not isinstance(props, dict):
            raise UsageError(f"--connection expects ID=JSON with a JSON object, got {item!r}")
        out[key.strip()] = props
    return out


def run(args: argparse.Namespace, stream: TextIO = sys.stdout) -> int:
    out = _Out(stream)
    mode = args.mode or "tour"
    conf = parse_conf(getattr(args, "conf", []))
    connections = parse_connections(getattr(args, "connection", []))
    echo = (lambda line: out(f"  | {line}")) if args.verbose else None
    emu = Emulator(args.target, python=args.python, socket_dir=args.socket_dir, init_timeout=args.init_timeout,
                   state=args.state, progress=out, install_echo=echo)
    for cid, props in connections.items():
        emu.create_connection(cid, args.symbol, props)
    try:
        emu.start()
        proc = emu.host.process
        assert proc is not None
        if args.verbose:
            proc.echo = stream
        meta = emu.meta
        out(f"{emu.name} {meta.get('version', '')} ({meta['language']}): handshake in "
            f"{emu.host.handshake_ms:.0f} ms, pid {proc.pid}")
        if mode == "serve":
            from .serve import serve

            return serve(emu, args.port, out)
        try:
            code = {"tour": _tour, "source": _source, "sink": _sink, "function": _function}[mode](emu, args, conf,
                                                                                                out)
        except CommandError as exc:  # the plugin refused the start: its text is the error (eKuiper's rule error)
            raise HostError(exc.reply) from None
        for finding in emu.findings:
            out(f"finding: {finding}")
        return code
    finally:
        emu.close()


def _source(emu: Emulator, args: argparse.Namespace, conf: Dict[str, Any], out: _Out) -> int:
    rows, errors, secs = _read_source(emu, args.symbol, args.rows, args.timeout, out, conf, args.conf_key,
                                      args.datasource)
    rate = len(rows) / secs if secs > 0 else 0.0
    out(f"source {args.symbol}: {len(rows)} rows in {secs:.2f} s ({rate:.1f} rows/s), {errors} errors")
    return 1 if errors else 0


def _read_source(emu: Emulator, symbol: str, n: int, timeout: float, out: _Out, conf: Dict[str, Any],
                 conf_key: str = "", datasource: str = "") -> Tuple[List[Dict[str, Any]], int, float]:
    """Up to ``n`` rows within ``timeout``, each printed; fewer is an error, printed with why, unless the source
    ended (its generator returned: a note)."""
    src = emu.start_source(symbol, conf_key=conf_key, datasource=datasource, extra=conf)
    rows: List[Dict[str, Any]] = []
    errors = 0
    t0 = time.monotonic()
    deadline = t0 + timeout
    failed = ended = False
    try:
        while len(rows) < n and not failed and time.monotonic() < deadline:
            try:
                msg, meta = src.recv(max(0.01, min(ENDED_POLL, deadline - time.monotonic())))
            except Timeout:
                if ended:
                    break
                ended = source_ended(emu, symbol)  # one more receive: its last rows may still be on the way
                continue
            except ProtocolError as exc:
                errors += 1
                out(f"  error: {exc}")
                failed = source_failed(exc, symbol)
                continue
            rows.append(msg or {})
            out("  " + json.dumps(msg) + (f"  meta={json.dumps(meta)}" if meta else ""))
    finally:
        emu.stop(src)
    secs = time.monotonic() - t0
    if ended:
        out(f"  note: source {symbol} ended after {len(rows)} rows (its generator returned)")
    elif len(rows) < n and not failed:
        errors += 1
        out(f"  error: source {symbol} sent {len(rows)} of the {n} rows asked for within {timeout:g} s: if it waits "
            f"longer between rows, give it time ('source {symbol} --timeout SECONDS') or a shorter period (--conf)")
    return rows, errors, secs


ENDED_POLL = 0.5  # seconds between looks at whether a source that sends nothing has ended


def source_ended(emu: Emulator, symbol: str) -> bool:
    """Whether the plugin logged that ``symbol``'s generator returned (an ekdsl plugin says so)."""
    tag = f"[{emu.name} source {symbol} "
    return any(tag in line and "source finished after" in line for line in emu.output.splitlines())



def source_failed(exc: ProtocolError, symbol: str) -> bool:
    """Whether an undecodable source message is the runtime's report that the source ended with an error."""
    return is_source_failure(exc.payload or b"", symbol)


def count_rows(items: List[Any]) -> int:
    """Rows in JSON Lines input: a line is a row, or an event array of rows."""
    return sum(len(r) if isinstance(r, list) else 1 for r in items)


def _feed(emu: Emulator, symbol: str, rows: List[Any], conf: Dict[str, Any], out: _Out,
          send_single: bool = False, batch: int = 0) -> Tuple[int, int, int]:
    snk = emu.start_sink(symbol, conf)
    sent = ok = failed = 0
    try:
        for payload in encode_sink_messages(rows, send_single, batch):
            sent += 1
            try:
                ack = snk.send(payload)
            except MessageDropped as exc:
                failed += 1
                out(f"  message {sent}: dropped by eKuiper before the sink: {exc}")
                continue
            if snk.require_ack:
                if ack is None:
                    ok += 1
                    out(f"  ack {sent}: ok")
                else:
                    failed += 1
                    out(f"  ack {sent}: error: {ack}")
    finally:
        emu.stop(snk)
    return sent, ok, failed


def _read_rows(path: str) -> List[Any]:
    if path == "-":
        text = sys.stdin.read()
    else:
        if not os.path.isfile(path):
            raise UsageError(f"no such input file: {path}")
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError as exc:
                raise UsageError(f"{path}:{n}: not JSON ({exc})") from None
    return rows


def _sink(emu: Emulator, args: argparse.Namespace, conf: Dict[str, Any], out: _Out) -> int:
    rows = _read_rows(args.input)
    if args.require_ack:
        conf["requireAck"] = True
    if args.send_single:
        conf["sendSingle"] = True
    if args.batch:
        conf["batchSize"] = args.batch
    sent, ok, failed = _feed(emu, args.symbol, rows, conf, out, args.send_single, args.batch)
    acks = f", {ok} acks ok, {failed} ack errors" if args.require_ack else ""
    out(f"sink {args.symbol}: {count_rows(rows)} rows in {sent} messages{acks}")
    return 1 if failed else 0


def _call(emu: Emulator, symbol: str, values: List[Any], out: _Out, aggregate: Optional[bool] = None) -> bool:
    fn = emu.function(symbol)
    ok, err = fn.validate(*(_node(i, v) for i, v in enumerate(values)))
    if not ok:
        out(f"function {symbol}: validate error: {err}")
        return False
    state, result = fn.exec(*values)
    shown = ", ".join(json.dumps(v) for v in values)
    out(f"function {symbol}({shown}) = {json.dumps(result)}" if state
        else f"function {symbol}({shown}): error: {result}")
    return state


def _node(i: int, value: Any) -> Dict[str, Any]:
    """The SQL node eKuiper's Validate sends for an argument: a literal, or a column for a list of values."""
    if isinstance(value, list):
        return {"StreamName": "$$default", "Name": f"arg{i}", "HasIndex": False, "SourceIndex": 0, "Index": 0}
    return {"Val": value}


def _function(emu: Emulator, args: argparse.Namespace, conf: Dict[str, Any], out: _Out) -> int:
    return 0 if _call(emu, args.symbol, [_value(a) for a in args.args], out) else 1


def sample_args(emu: Emulator, symbol: str) -> List[Any]:
    """Arguments for a trial call, from the function's metadata json (its arg types)."""
    path = emu.installed.etc("functions", f"{symbol}.json")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        spec = next(f for f in data["functions"] if f.get("name") == symbol)
    except (OSError, ValueError, KeyError, StopIteration, TypeError):
        return ["ekdsl"]
    values = []
    for arg in spec.get("args", []):
        if arg.get("optional"):
            continue
        choices = arg.get("values")
        kind = arg.get("type", "string")
        if spec.get("aggregate"):  # the argument is the group's values: sample one element of it
            kind = _ELEMENT.get(kind, kind)
        value = choices[0] if choices else _SAMPLES.get(kind, "ekdsl")
        values.append([value, value, value] if spec.get("aggregate") else value)
    return values


def _refused(kind: str, symbol: str, exc: CommandError, out: _Out) -> int:
    """A start the plugin refused, in the tour: the error, then the symbol's line; one error."""
    out(f"  error: {exc.reply}")
    out(f"{kind} {symbol}: not started")
    return 1


def _tour(emu: Emulator, args: argparse.Namespace, conf: Dict[str, Any], out: _Out) -> int:
    meta = emu.meta
    rows: List[Any] = []
    errors = 0
    acks = calls = received = 0
    for symbol in meta["sources"]:
        try:
            got, errs, secs = _read_source(emu, symbol, 3, 10.0, out, {}, datasource=args.datasource)
        except CommandError as exc:
            errors += _refused("source", symbol, exc, out)
            continue
        out(f"source {symbol}: {len(got)} rows in {secs:.2f} s, {errs} errors")
        received += len(got)
        rows = rows or got
        errors += errs
    for symbol in meta["sinks"]:
        try:
            sent, ok, failed = _feed(emu, symbol, rows or [SAMPLE_ROW], {"requireAck": True}, out)
        except CommandError as exc:
            errors += _refused("sink", symbol, exc, out)
            continue
        out(f"sink {symbol}: {sent} messages, {ok} acks ok, {failed} ack errors")
        acks += ok
        errors += failed
    for symbol in meta["functions"]:
        calls += 1
        try:
            errors += not _call(emu, symbol, sample_args(emu, symbol), out)
        except CommandError as exc:
            errors += _refused("function", symbol, exc, out)
    out(f"summary: {received} rows, {acks} acks, {calls} function calls, {errors} errors")
    return 1 if errors else 0

