"""A local Ray cluster with Serve on a free port, for the Ray tests and benchmark; everything it started ends with
it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import tempfile
from typing import Iterator, List, NamedTuple

from .conftest import wait_for

# no token written to ~/.ray, no usage reports sent
QUIET = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


class Cluster(NamedTuple):
    port: int  # Serve's HTTP proxy, on 127.0.0.1
    address: str  # the cluster's GCS, for another driver (RAY_ADDRESS)
    temp: str  # Ray's folder: sessions, logs, sockets


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ray_processes(temp: str) -> List[str]:
    """Processes whose command line names the cluster's folder: Ray's GCS, raylet, workers ..."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if temp in line:
            found.append(f"{proc.info['pid']} {line[:120]}")
    return found


@contextlib.contextmanager
def local_cluster(num_cpus: int) -> Iterator[Cluster]:
    """Start Ray on this machine (``num_cpus`` logical CPUs) and Serve on a free port; on leaving, shut both down and
    fail if any of their processes is left after 30 s."""
    import ray
    from ray import serve

    saved = {name: os.environ.get(name) for name in QUIET}
    os.environ.update(QUIET)
    temp = tempfile.mkdtemp(prefix="ekr", dir="/tmp")  # short: Ray's socket paths live under it
    port = free_port()
    try:
        info = ray.init(num_cpus=num_cpus, include_dashboard=False, _temp_dir=temp, namespace="serve",
                        log_to_driver=False)
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        yield Cluster(port, info.address_info["gcs_address"], temp)
    finally:
        with contextlib.suppress(Exception):
            serve.shutdown()
        ray.shutdown()
        ended = wait_for(lambda: not ray_processes(temp), 30, 0.2)
        shutil.rmtree(temp, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        assert ended, f"Ray processes left running: {ray_processes(temp)}"
