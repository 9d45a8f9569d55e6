"""Fault injection for real servers: a TCP proxy on 127.0.0.1 that can be cut and restored."""

from __future__ import annotations

import socket
import threading
from contextlib import suppress


class CuttableProxy:
    """Forwards 127.0.0.1:port -> 127.0.0.1:upstream. `cut_after(n)` drops every connection
    once n more bytes went downstream and refuses new ones until `restore()`: the server
    "stops" mid-transfer while keeping its state."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._budget: int | None = None  # bytes left before the cut; None: unlimited
        self._down = False
        self._open: set[socket.socket] = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, nbytes: int) -> None:
        with self._lock:
            self._budget = nbytes

    def restore(self) -> None:
        with self._lock:
            self._budget, self._down = None, False

    @property
    def was_cut(self) -> bool:
        return self._down

    def close(self) -> None:
        self._listener.close()
        self._drop_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._down:
                client.close()
                continue
            server = socket.create_connection(("127.0.0.1", self.upstream))
            with self._lock:
                self._open |= {client, server}
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, downstream: bool) -> None:
        with suppress(OSError):
            while chunk := source.recv(65536):
                if downstream and not self._spend(len(chunk)):
                    self._drop_all()
                    return
                sink.sendall(chunk)
        for sock in (source, sink):
            with suppress(OSError):
                sock.close()

    def _spend(self, nbytes: int) -> bool:
        with self._lock:
            if self._down:
                return False
            if self._budget is None:
                return True
            self._budget -= nbytes
            if self._budget < 0:
                self._down = True
                return False
            return True

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, set()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
