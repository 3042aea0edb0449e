"""Worker sockets: each worker listens on the shared port; a port someone holds is refused."""

from __future__ import annotations

import socket

import pytest

from shoprec.serving.workers import check_port_free, listening_socket, reuse_port_supported

pytestmark = pytest.mark.skipif(not reuse_port_supported(), reason="needs SO_REUSEPORT")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_workers_share_the_port_and_connections_reach_them() -> None:
    port = _free_port()
    check_port_free("127.0.0.1", port)  # nobody holds it: no error
    a, b = listening_socket("127.0.0.1", port), listening_socket("127.0.0.1", port)
    try:
        a.setblocking(False)
        b.setblocking(False)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(32)]
        accepted = {"a": 0, "b": 0}
        for name, sock in (("a", a), ("b", b)):
            while True:
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    break
                conn.close()
                accepted[name] += 1
        for c in clients:
            c.close()
        # the kernel spread the 32 connections over both sockets
        assert accepted["a"] + accepted["b"] == 32
        assert accepted["a"] > 0 and accepted["b"] > 0
    finally:
        a.close()
        b.close()


def test_a_port_already_held_is_refused() -> None:
    port = _free_port()
    plain = socket.socket()
    plain.bind(("127.0.0.1", port))
    plain.listen()
    try:
        with pytest.raises(OSError):
            check_port_free("127.0.0.1", port)
        with pytest.raises(OSError):
            listening_socket("127.0.0.1", port)
    finally:
        plain.close()
    shared = listening_socket("127.0.0.1", port)
    try:  # another service's worker sockets also make the port "held"
        with pytest.raises(OSError):
            check_port_free("127.0.0.1", port)
    finally:
        shared.close()
