"""Several service processes on one port, each with its own listening socket.

uvicorn's own `--workers` shares one listening socket between the processes, and a process
that wakes up first accepts every connection waiting (asyncio accepts up to the backlog in
one go), so a burst of keep-alive connections can all land on one worker while the other
idles (measured on the service benchmark: 2 workers served 580-650 requests/s at 8-16
connections but 1,116 at 24, with the same CPU per request). Here every worker binds its own
socket with SO_REUSEPORT, and the kernel spreads new connections over them by a hash of the
connection.

The parent first binds the port without SO_REUSEPORT and lets it go, so a port already held by
another server is refused instead of silently shared. It restarts a worker that dies and
stops all of them on SIGINT / SIGTERM.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from typing import Any

log = logging.getLogger(__name__)

APP = "shoprec.serving.app:app_from_env"
BACKLOG = 2048


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def check_port_free(host: str, port: int) -> None:
    """OSError when `host:port` is already bound by anyone (SO_REUSEPORT or not)."""
    probe = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        probe.bind((host, port))
    finally:
        probe.close()


def listening_socket(host: str, port: int) -> socket.socket:
    """A listening socket on `host:port` that other workers of this service may share."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def _worker(host: str, port: int, options: dict[str, Any]) -> None:
    """One worker process: its own socket, the app built from the settings file."""
    import uvicorn

    logging.basicConfig(
        level=str(options.get("log_level", "info")).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    sock = listening_socket(host, port)
    config = uvicorn.Config(APP, factory=True, **{**options, "workers": 1})
    uvicorn.Server(config).run(sockets=[sock])


def serve_workers(host: str, port: int, workers: int, options: dict[str, Any]) -> None:
    """Run `workers` processes serving `APP` on `host:port` until SIGINT / SIGTERM.

    `options` are `uvicorn.Config` keyword arguments (host, port, log level...). The app
    factory reads its settings from the file named by SHOPREC_SETTINGS_FILE.
    """
    check_port_free(host, port)
    ctx = multiprocessing.get_context("spawn")
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def start() -> Any:
        p = ctx.Process(target=_worker, args=(host, port, options), name="shoprec-worker")
        p.start()
        return p

    procs = [start() for _ in range(workers)]
    try:
        while not stopping:
            for i, p in enumerate(procs):
                if not p.is_alive() and not stopping:
                    log.warning("worker %d exited with %s; starting another", p.pid, p.exitcode)
                    time.sleep(1.0)  # no tight loop when a worker cannot start at all
                    procs[i] = start()
            time.sleep(0.2)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
        for s, handler in previous.items():
            signal.signal(s, handler)
