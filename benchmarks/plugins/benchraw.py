"""A plugin written directly on pynng, no SDK: the same sockets as the SDK, pre-encoded payloads."""

import json
import os
import sys
import threading

import pynng

DIR = os.environ.get("EKDSL_SOCKET_DIR", "/tmp")


def url(name):
    return f"ipc://{DIR}/{name}.ipc"


def dial(sock, u):
    sock.recv_max_size = 0
    sock.dial(u, block=True)
    return sock


def source(meta, config, stop):
    size = int(config.get("size", 40))
    payload = json.dumps({"message": {"name": "bench", "value": 2021, "pad": "x" * max(0, size - 40)},
                          "meta": None}).encode()
    sock = dial(pynng.Push0(send_timeout=1000), url(f"{meta['ruleId']}_{meta['opId']}_{meta['instanceId']}"))
    while not stop.is_set():
        try:
            sock.send(payload)
        except pynng.Timeout:
            pass
    sock.close()


def sink(meta, config, stop, ready):
    key = f"{meta['ruleId']}_{meta['opId']}_{meta['instanceId']}"
    data = pynng.Pull0(recv_timeout=500)
    data.recv_max_size = 0
    data.listen(url(key))
    ack = dial(pynng.Push0(send_timeout=1000), url(key + "_ack"))
    ready.set()
    need_ack = config.get("requireAck") is True
    while not stop.is_set():
        try:
            data.recv()
        except pynng.Timeout:
            continue
        if need_ack:
            ack.send(b"{}")
    data.close()
    ack.close()


def function(name):
    sock = dial(pynng.Req0(resend_time=0), url(f"func_{name}"))
    sock.send(b"handshake")
    while True:
        req = json.loads(sock.recv())
        if req["func"] == "Exec":
            args = req["arg"]
            result = args[0] if name == "echo" else float(sum(args[0]))
            sock.send(json.dumps({"state": True, "result": result}).encode())
        elif req["func"] == "IsAggregate":
            sock.send(b'{"state":true,"result":%s}' % (b"true" if name == "agg" else b"false"))
        else:
            sock.send(b'{"state":true,"result":""}')


def main():
    ctl = dial(pynng.Req0(resend_time=0), url("plugin_benchraw"))
    ctl.send(b"handshake")
    running = {}
    functions = set()
    while True:
        cmd = json.loads(ctl.recv())
        ctrl = json.loads(cmd["arg"])
        meta, kind, key = ctrl["meta"], ctrl["pluginType"], json.dumps(ctrl["meta"]) + ctrl["symbolName"]
        if cmd["cmd"] == "stop":
            if key in running:
                running.pop(key).set()
        elif kind == "source":
            stop = running[key] = threading.Event()
            threading.Thread(target=source, args=(meta, ctrl.get("config", {}), stop), daemon=True).start()
        elif kind == "sink":
            stop, ready = threading.Event(), threading.Event()
            running[key] = stop
            threading.Thread(target=sink, args=(meta, ctrl.get("config", {}), stop, ready), daemon=True).start()
            ready.wait(5)
        elif ctrl["symbolName"] not in functions:
            functions.add(ctrl["symbolName"])
            threading.Thread(target=function, args=(ctrl["symbolName"],), daemon=True).start()
        ctl.send(b"ok")


if __name__ == "__main__":
    sys.exit(main())
