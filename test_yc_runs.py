"""yc_runs tests: the emulator and raw-socket servers on loopback, never the real service.

Run: python -m unittest -v test_yc_runs
"""

import asyncio
import contextlib
import io
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from unittest import mock

import yc_runs

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDED = os.path.join(HERE, "..", "shared", "api", "examples", "recorded.json")

# A self-signed certificate for localhost and 127.0.0.1, made for these tests only.
TEST_CERT = """-----BEGIN CERTIFICATE-----
MIIDJzCCAg+gAwIBAgIUY7Z5TfvaZT9Crq/zZKVXLNJk1swwDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzA2MzAwN1oYDzIxMjYx
MDMwMDYzMDA3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQC/IqUYGT5wJgy4MsnRUPqFb22wY0u90WjXX4xK0Nfg
cAwV+PAXtmIpEGDNE+1LETwH9/yymG05rMdcdjftRzwxNaicFishbcffd2jHB9ml
W7ElZc6ZdLOx14MUaBDpJRG4Nqla6h93c+OTBnpIVginfDPE7qh6GdSrO22t+IEb
YsxkBzDTLgBbrtcs78Yuh/VZMPcKnQeCqO16P0xbLfSv2EdDYeOEw2qVgHopzw4z
tzszcI5/ohYPLwBlzsHn16/FGEhDSpKOgHENycMR7VjR16XTNhd0UVP6TOjOaArV
1oPOc/w3eanLZjKoWAlZIchWpHCYQPnrNhIhmi74jOSdAgMBAAGjbzBtMB0GA1Ud
DgQWBBQq35PERHqiv19n6p1I36v/szpHTTAfBgNVHSMEGDAWgBQq35PERHqiv19n
6p1I36v/szpHTTAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGCCWxvY2FsaG9z
dIcEfwAAATANBgkqhkiG9w0BAQsFAAOCAQEAZbzFAqQBj7FerDYqPKmiE96n9D4J
U1CMf+6N4taEbatOqIJ6jzmY/2maGK1kwtOkTLuVMpLbZog4Ln1A8eaq1t8gFA6D
mCyvrTaYZedzWBfHTsjdGd7nZNbabKpQMdpCx7+qZmxxaxZWb87K51Nc517bwLSd
CHnd/OwjNKeeFNT6BEskgDxz0Im2Lx51/5Pg7JEfB3xKuOnxUFLfW0VqFaldztVP
JwHPk2GygIyEmkEVu9I1QwDnHZWPPNBlKxaddirkBHcssmQu9yNxg3mVuQAvcLcw
hdfeDis0HxJ5pxZnSsd/ZD9Wou3aDeKfq8Zj9sD7Ym1TGXjcLGGIbNuzRQ==
-----END CERTIFICATE-----"""
TEST_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQC/IqUYGT5wJgy4
MsnRUPqFb22wY0u90WjXX4xK0NfgcAwV+PAXtmIpEGDNE+1LETwH9/yymG05rMdc
djftRzwxNaicFishbcffd2jHB9mlW7ElZc6ZdLOx14MUaBDpJRG4Nqla6h93c+OT
BnpIVginfDPE7qh6GdSrO22t+IEbYsxkBzDTLgBbrtcs78Yuh/VZMPcKnQeCqO16
P0xbLfSv2EdDYeOEw2qVgHopzw4ztzszcI5/ohYPLwBlzsHn16/FGEhDSpKOgHEN
ycMR7VjR16XTNhd0UVP6TOjOaArV1oPOc/w3eanLZjKoWAlZIchWpHCYQPnrNhIh
mi74jOSdAgMBAAECggEACQNmuqiyF5LLxcHrX3oMnk8/YnKER1rBMWrZkEuh6n0O
LNkU5WFd5qbVkcYvSftxk8Sff4KNoAskSZlvkLprvbxUi6vF8+kb5E9auwwFOPWG
eIeBAx6MPMY3cbZomb38RG4bdWSWAEmQQUYsbQ3VkaRbQp2ohz2BmGOQjAQsfnCI
zZHsNkV1TDUvlhEpusBC/Oo67avRE1tWVcxZlSftXwMqbtW9WxP+v0u3zr1ZxQSm
j0y7zTpV0opDnWH0wmIPcK18lDo5ruuumQdmUqiJ3YqPhS+13+wDt/Uhunr7bXdh
cz5Ocj8tSaHXyyjSV3NkKcUrNGfq2rJ2PjA5SWbbJwKBgQD1ttdqLoOE1Lk6bkKT
a+x3ot5pkwRxWIcEYjOOyYJNCpnZNLAIwbgVKk80IXVeQIi0vgfn32LpmdfG1u2H
AueZs6uy8YTwhRNDIm8rAJmkpfjSBZoyrLMVQgQ2aUdaKFp7fpIoiVnFAIVd0SKM
wB5VmzNlGZx2J6ttHSAgsN7YhwKBgQDHIurK+djdN3solwUFCuwxh//6xoRawgRI
AtMspkulvsuVnF5spgXsJ0VkzyPYGBdTOsdyUbVVOSd/1L6tIum4+9oRuBa8PenN
ZlJn2mtPRbiNf2Ti8kl+YWcqH3zkfrLq0AwZIerApqszxM9kos9gk/wgR6v9Wvpv
SXBy9HX2uwKBgQDoMr0mzoXixNO17/RiNB7mf7cGtbQBGNOexN5MFQlZnKb+p9ei
rs4y0iS+8s9jHkER7HK0IFnsv0E12m3kpE4Q5cVf+PTUBi3Jx4Secpa/DUkxz7GE
KceiUxx//sU64d9/zIB6ZjG7BV8C5Vts/zCrXVsYMze0QJCzME7oFbzBiQKBgFz/
U4NDNyHoXR3RmUiHl1JyXvswZnM0FGfE2fYKG13mQpE2G2rGBhIJLQEtM2IhrhLy
al5bBkIslOO/6ORWX6xCAc8wl32FtIB1/pn9iQvWVZ/PFMBfwi7BMjqbxem3ubqr
OlsqWcVqkJ12lhw7ZHmH4sD4d7u0FyyNsXQd8lEtAoGBAJroVXxzd5Q0kQpEmwf1
Hvps4emiEi+jsMjeAV2cx6IkhID0YC9zx1xAJXCV+4ilrhpjDTL6y7iP3dQFl7/l
9rNNXrQRWuVr3pSu6Oi7bWRjjquhyV01xTccyUCqKwiBDWhcxlHy6kQoPh1xUmJk
5PK2NgafiUrLgYm70YQng2Sw
-----END PRIVATE KEY-----"""

_CLEAN_ENV = {k: v for k, v in os.environ.items()
              if not k.startswith("YC_") and not k.lower().endswith("_proxy")}


def clean_env(**extra: str) -> Any:
    """os.environ without YC_* credentials or proxies (plus ``extra``) for the test's duration."""
    return mock.patch.dict(os.environ, dict(_CLEAN_ENV, **extra), clear=True)


class EnvTestCase(unittest.TestCase):
    """A test whose environment has no YC_* variables and no proxies unless it sets them."""

    def setUp(self) -> None:
        patcher = clean_env()
        patcher.start()
        self.addCleanup(patcher.stop)


class EmulatorTestCase(EnvTestCase):
    """A fresh emulator and a client pointed at it, per test."""

    event_delay = 0.002

    def setUp(self) -> None:
        super().setUp()
        self.emu = yc_runs.Emulator(event_delay=self.event_delay, seed=1234).start()
        self.addCleanup(self.emu.stop)
        self.client = yc_runs.Client(base_url=self.emu.url, api_key="test-key-123456",
                                     folder_id="folder-1", timeout=5)
        self.addCleanup(self.client.close)


def read_request(conn: socket.socket, buffer: bytearray) -> Optional[bytes]:
    """One HTTP request (head and Content-Length body) from ``conn``; None at EOF."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    while len(buffer) < end + length:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    request = bytes(buffer[:end + length])
    del buffer[:end + length]
    return request


class RawServer:
    """A loopback TCP server for wire edge cases.

    ``handler(conn, request_bytes)`` is called for each request on each connection and
    writes whatever bytes it likes; returning False closes the connection. ``requests``
    keeps every request received, ``connections`` counts accepted connections.
    """

    def __init__(self, handler: Callable[[socket.socket, bytes], Any],
                 context: Optional[ssl.SSLContext] = None) -> None:
        self.handler = handler
        self.context = context
        self.requests: List[bytes] = []
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.closed = False
        self.open_conns: List[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.context is not None:
                conn = self.context.wrap_socket(conn, server_side=True)
            self.open_conns.append(conn)
            buffer = bytearray()
            while True:
                request = read_request(conn, buffer)
                if request is None:
                    break
                self.requests.append(request)
                if self.handler(conn, request) is False:
                    break
        except (OSError, ssl.SSLError):
            pass
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        for conn in self.open_conns:
            with contextlib.suppress(OSError):
                conn.close()

    def __enter__(self) -> "RawServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def http_response(status: int, body: bytes = b"", headers: Tuple[Tuple[str, str], ...] = (),
                  reason: str = "OK") -> bytes:
    """A Content-Length response."""
    head = "HTTP/1.1 %d %s\r\n" % (status, reason)
    for name, value in headers:
        head += "%s: %s\r\n" % (name, value)
    head += "Content-Length: %d\r\n\r\n" % len(body)
    return head.encode("latin-1") + body


def json_response(status: int, obj: Any, headers: Tuple[Tuple[str, str], ...] = ()) -> bytes:
    return http_response(status, json.dumps(obj).encode(),
                         (("Content-Type", "application/json"),) + headers)


def chunked(pieces: List[bytes], trailer: bytes = b"") -> bytes:
    """A chunked body made of exactly these chunks."""
    out = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces if p)
    return out + b"0\r\n" + trailer + b"\r\n"


def stream_head() -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"


def recorded() -> Dict[str, Any]:
    with open(RECORDED, encoding="utf-8") as handle:
        return json.load(handle)  # type: ignore[no-any-return]


def run_cli(*args: str, env: Optional[Dict[str, str]] = None, timeout: float = 60,
            input: Optional[str] = None) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """``python -m yc_runs ARGS`` in a subprocess with a clean environment."""
    full_env = dict(_CLEAN_ENV, PYTHONPATH=HERE, **(env or {}))
    return subprocess.run([sys.executable, "-m", "yc_runs", *args], capture_output=True,
                          text=True, env=full_env, timeout=timeout, cwd=HERE, input=input)


def tls_server_context() -> Tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context with the test certificate, client context that trusts it)."""
    tmp = tempfile.mkdtemp()
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    with open(cert, "w") as handle:
        handle.write(TEST_CERT)
    with open(key, "w") as handle:
        handle.write(TEST_KEY)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=cert)
    return server, client


# ============================================================================
# Tests
# ============================================================================


class SmokeTest(EmulatorTestCase):
    def test_create_listen_wait_against_the_emulator(self) -> None:
        run = self.client.runs.create("asst", "thread", additional_messages=["hello world"],
                                      stream=True)
        events = list(run.listen())
        self.assertEqual(events[-1].status, yc_runs.StreamEvent.DONE)
        self.assertEqual("".join(e.delta for e in events), "hello world")
        self.assertEqual(run.wait().text, "hello world")


if __name__ == "__main__":
    unittest.main()
