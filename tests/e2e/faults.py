"""Fault injection: moto's S3 on 127.0.0.1, a TCP proxy in front of it that can be cut and
restored, and Ctrl-C sent to a running nbenv command."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path


@contextmanager
def moto_s3(bucket: str) -> Iterator[int]:
    """moto's S3 server on a free 127.0.0.1 port (exact PID kept and stopped), with `bucket` made."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "moto_server did not start"
            time.sleep(0.2)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=bucket)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


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


def interrupt(process: subprocess.Popen[str], *, timeout: float) -> tuple[str, str]:
    """Ctrl-C (SIGINT) to a running nbenv: it must exit 130 with the one line "interrupted" last.
    Returns (stdout, stderr). The caller `reap`s the process if this fails."""
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 130, err
    assert err.rstrip().splitlines()[-1] == "interrupted"
    return out, err


def reap(process: subprocess.Popen[str]) -> None:
    """Kill `process` if it still runs (a test failed before it ended), wait for it and close its pipes,
    so no later test meets a "subprocess is still running" warning or an open pipe from this one."""
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            stream.close()
