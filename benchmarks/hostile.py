"""Peak memory and time of check and deploy against hostile input, each case in a fresh process.

    python benchmarks/hostile.py             # a 400 MiB zip bomb, a 256 MiB endless answer, a 5 s trickle
    python benchmarks/hostile.py --quick     # smaller figures, a few seconds

Cases: ``check`` on a zip of zeros (deflated about 1000:1) with the default limits (the ratio guard stops
it) and with the ratio guard off (every byte decompressed and counted, none kept), beside reading that
member whole as a declared-size reader does; ``deploy list`` against a server that never stops answering
(cut at --max-answer) and one that sends a byte every 0.2 s (cut at --timeout). "peak RSS" is the
process's maximum resident set (``ru_maxrss``), start-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zipfile
from pathlib import Path
from typing import Callable, List, Tuple

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import sys
from ekdsl.archive import Limits
from ekdsl.checks import check_package
limits = Limits() if sys.argv[2] == "default" else Limits(ratio=10**9, entry_bytes=1 << 40, total_bytes=1 << 40)
report = check_package(sys.argv[1], limits=limits)
print([f.message[:60] for f in report.findings if f.level == "error"][:1])
"""
READ_WHOLE = """
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as zf:
    print(len(zf.read("data/zeros.bin")))
"""
DEPLOY = """
import sys
from ekdsl.cli import main
print(main(["deploy", "list", "--server", sys.argv[1], "--timeout", sys.argv[2]]))
"""


def bomb(path: Path, mib: int) -> None:
    meta = {"name": "bomb", "version": "1", "language": "python", "executable": "main.py", "functions": ["f"]}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.json", json.dumps(meta))
        zf.writestr("main.py", "")
        with zf.open("data/zeros.bin", "w", force_zip64=True) as fh:
            for _ in range(mib):
                fh.write(bytes(1 << 20))


def run(code: str, *args: str) -> Tuple[float, float, str]:
    """Seconds, peak RSS in MiB and first output line of ``python -c code args`` in a fresh process."""
    wrapped = "try:\n" + textwrap.indent(code.strip(), "    ") + (
        "\nfinally:\n    import resource, sys\n"
        "    print('peak', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", wrapped, *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    seconds = time.monotonic() - start
    peak = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("peak "))
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    return seconds, peak / 1024, lines[0][:70] if lines else ""


def serve(answer: Callable[[socket.socket], None]) -> str:
    """One connection on 127.0.0.1, answered by ``answer`` in a thread; the server's URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()

    def once() -> None:
        conn, _ = sock.accept()
        with conn, sock:
            conn.recv(65536)
            try:
                answer(conn)
            except OSError:
                pass

    threading.Thread(target=once, daemon=True).start()
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def endless(mib: int) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for _ in range(mib * 16):
            conn.sendall(b"[" * 65536)

    return answer


def trickle(seconds: float) -> Callable[[socket.socket], None]:
    def answer(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
        for _ in range(int(seconds / 0.2)):
            conn.sendall(b" ")
            time.sleep(0.2)  # the trickle's pace

    return answer


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    args = parser.parse_args(argv)
    zip_mib, answer_mib, trickle_s = (64, 64, 3.0) if args.quick else (400, 256, 10.0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bomb.zip"
        bomb(path, zip_mib)
        size = f"{zip_mib} MiB of zeros in {path.stat().st_size // 1024} KiB"
        rows.append((f"check, {size}, default limits", *run(CHECK, str(path), "default")))
        rows.append((f"check, {size}, no ratio guard", *run(CHECK, str(path), "off")))
        rows.append((f"zipfile read whole, {size}", *run(READ_WHOLE, str(path))))
    rows.append((f"deploy list, endless answer ({answer_mib} MiB sent)", *run(DEPLOY, serve(endless(answer_mib)),
                                                                              "60")))
    rows.append((f"deploy list, 1 byte / 0.2 s for {trickle_s:g} s, --timeout 1", *run(DEPLOY,
                                                                                    serve(trickle(trickle_s)), "1")))
    width = max(len(r[0]) for r in rows)
    print(f"{'case':<{width}}  {'seconds':>8}  {'peak RSS MiB':>12}  outcome")
    for name, seconds, peak, outcome in rows:
        print(f"{name:<{width}}  {seconds:>8.2f}  {peak:>12.1f}  {outcome}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main(sys.argv[1:]))
