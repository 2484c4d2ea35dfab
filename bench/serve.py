"""``python -m bench.serve <uvicorn options>``: uvicorn, with TCP_NODELAY on every connection.

With ``--workers`` > 1, uvicorn (0.54) binds the listening socket itself as
``socket.socket(family)``, i.e. with protocol 0; asyncio only sets TCP_NODELAY on accepted
sockets whose protocol is IPPROTO_TCP, so every worker's connections keep Nagle's algorithm on.
A response written in two pieces (headers, then body) then waits for the client's delayed ACK:
measured here, p50 48 ms at any load with 2 workers, against 6-18 ms with 1 worker (which binds
through ``loop.create_server(host, port)`` and gets TCP_NODELAY). This wrapper re-wraps the
bound socket so its protocol is read from the kernel (IPPROTO_TCP), and is otherwise plain
``uvicorn``. ``hierarchy run`` serves with one worker and is not affected.
"""

from __future__ import annotations

import socket
import sys

import uvicorn
from uvicorn.config import Config

_bind_socket = Config.bind_socket


def _bind_tcp_socket(self: Config) -> socket.socket:
    sock = _bind_socket(self)
    if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
        sock = socket.socket(fileno=sock.detach())  # family, type and protocol read from the fd
        sock.set_inheritable(True)
    return sock


Config.bind_socket = _bind_tcp_socket  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(uvicorn.main())
