"""yc_runs tests: the emulator and raw-socket servers on loopback, never the real service.

Run: python -m unittest -v test_yc_runs
"""

import asyncio
import contextlib
import io
import itertools
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

import base64
import copy
import dataclasses
import re
import types
from datetime import datetime
from datetime import timedelta
from datetime import timezone
import gc
import signal
import warnings
from typing import Literal
from typing import Set
from typing import Union

import http.client
import random
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote
from urllib.parse import urlsplit

import yc_runs


# ============================================================================
# Helpers: servers, fakes and fixtures the tests share
# ============================================================================


HERE = os.path.dirname(os.path.abspath(__file__))


# Responses recorded from the real service: the project's shared copy when it sits beside
# this checkout (it may have grown), else the copy kept in testdata/.
RECORDED = os.path.join(HERE, "..", "shared", "api", "examples", "recorded.json")


if not os.path.exists(RECORDED):
    RECORDED = os.path.join(HERE, "testdata", "recorded.json")


# A self-signed certificate for localhost, 127.0.0.1 and proxied.test (a name only the
# tests' CONNECT proxy knows), made for these tests only.
TEST_CERT = """-----BEGIN CERTIFICATE-----
MIIDNTCCAh2gAwIBAgIUD02YUMl0pAARNuDR8OzSqexeEc8wDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyMzA3MzUxMVoYDzIxMjYx
MDMwMDczNTExWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQC1PlBigNf2t1dS7HG8BzHetT6lzYycF0J116KE80WZ
/GM2CzNJoWo2p+84SYHrK0Soozy7Y4bCHKOKoF5xo2EU86/sG+ayOlUJeGKOvz8G
j55ep08crjmWYnmHUx2jLrb/ZBXkl5A6xELH7IvDzePgUGBmUVVF1YziCyA6i9Yz
dSeHtO3uyaYfo2KS7wXz8ytmwaObhtOQUMNlCBnCPaX2R/3Sm/EcqAJs0Lq6xbjX
Mv9/pYyRbtNfGLYriX158bUOlgzyfKH0GgyYYJ8RUvv9MNfUvFL3Y1/55oVNNaM9
0J47qeoZAONC+5BEXG0uzskX/JipSW+PzyGlT56cxjATAgMBAAGjfTB7MB0GA1Ud
DgQWBBSMiGSvk13XkZ0Q9l8b5Yr9bSHh2DAfBgNVHSMEGDAWgBSMiGSvk13XkZ0Q
9l8b5Yr9bSHh2DAPBgNVHRMBAf8EBTADAQH/MCgGA1UdEQQhMB+CCWxvY2FsaG9z
dIIMcHJveGllZC50ZXN0hwR/AAABMA0GCSqGSIb3DQEBCwUAA4IBAQBBg/vD0vK3
zh9+OewTd/YuKjEFrm3SP7qsnAimnyY986MD9JxhptvyLkXi0L8Vi9o5j1iszqaW
D7u65zQ+dZIoHNHKaf3BCbgiamEgW4dOHcwI5KrzOfk3eJSIEvg+LAgvja2LqoHu
hL31W8o5kkKjq69dasy8dRo/V9/kNQe7TRJFXyGh+8cl5RzsGEAalI8S03APBI95
KvcktHiDgJPwVMErGtAb0htOv549KSEDJ7+95Ostlc1zcTsPyHCy6BVhaBkJyBHv
NNp9HOs/KqbHwR0WIVJGgJTy2M+DFAeC0LnSx+/9pc2O5tcdTu4f5nw33J/E4fGl
rDE32XihXqzD
-----END CERTIFICATE-----"""


TEST_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQC1PlBigNf2t1dS
7HG8BzHetT6lzYycF0J116KE80WZ/GM2CzNJoWo2p+84SYHrK0Soozy7Y4bCHKOK
oF5xo2EU86/sG+ayOlUJeGKOvz8Gj55ep08crjmWYnmHUx2jLrb/ZBXkl5A6xELH
7IvDzePgUGBmUVVF1YziCyA6i9YzdSeHtO3uyaYfo2KS7wXz8ytmwaObhtOQUMNl
CBnCPaX2R/3Sm/EcqAJs0Lq6xbjXMv9/pYyRbtNfGLYriX158bUOlgzyfKH0GgyY
YJ8RUvv9MNfUvFL3Y1/55oVNNaM90J47qeoZAONC+5BEXG0uzskX/JipSW+PzyGl
T56cxjATAgMBAAECggEAHQFwVe4EIgeCIdLrT3SLUPa1TvhQD3moI48zWDmiovEs
Y4LJXiLyCks3/UxuTqzpsQoRdx/cz4X2eldjUKZyrAAP4HvaoMgLF0KSlgEaB2Uc
AE6gWkOxEwCG2IG/FYAtaJP47lDUk+3C45dXYCpm1LL9qoJLtlW7KpXYk5C7jW0Q
W0W1CgrWe74+igSKgBFN/NEV8sta5/10sADdyM8a65x/SLIWWKfuzzM9WoTiW/dz
hI36iB6uIM66588oWkym3nTQQ5jVJ6AaY9/0f9pUdo51AUW0/7ovSc2PSDHZlF+L
6sgV9DypBegGQ4RypoHqdEYDgxyOQg6cLeK4lwZrgQKBgQD53g3XyuCsFdl3jpH+
0sZrZkhASqgzCd5Od0c4BnAuaTS83JQ8pQuR8sJ1Sp9FD8VzHziWiroKkLX8AavW
IYfJ/RfTBXOHHpz9GHOtF2w3Gpst3BTT7s3T3un1RuXD6hDITqmWdKUzN1gG3u6L
JNDQgiaDN5980frzUMHoEuC9QQKBgQC5sRZjSLZZhD4X9DxfnDqSXz+5vVsqEpCk
IYBV8sfJWXVNtJt+q4MZvlcXZveK/JGk6i5Jge3ileJpr2J0PW9AWPWjK/DhvYvJ
T45+PN+LcpHd82ngIFpn+UAMgPFtQTAhTmGbhBNgYUTxcVbampJZQL8WpSOKSuT5
4arN0m/UUwKBgQCponyJbV3c1rSeO3eYpeY5keYpZ8YLaH65jLcYLR7KE3jPY31s
MqzJOCOW18OLcmqdfqu/YI1vkNFMNqI/rOHwWthq1j+Zk0oHditKbyVzv6dsmga1
32Fzntn9QFXLDUS5iNYPpD9npwInIACZDLSLamDVItUvO6uAtun+MZrMQQKBgQCQ
WNG/cimWIo+mTUyVQjvhxrsh5sm0ReQ8QnKh3W1i3vCp7AioCimKXIUVAwzQ9Q8+
tHAw4hiK99qeLyEInS0bR0wDgMfqo07Dud1Z0nYvz2sGrw6RlHTSuFYKoj2KoY8J
hQWpP51UYaiXS3Sp0FiNmyAwOUUMXrXqbXs6LiiSUwKBgQD0HMCsDqGZZFuGamk9
DHevIjZVCK13sxzNjdmQNdeCYOqho3gq6f+lh76/f7zSTbZ/Quab6bn85Yq4Ycgy
su97jSxsh6DaVaGzQXwRZxeXhwjSTtCahRmNt65AKqcTzldxM08VoXUbFSJEnzi4
+tWkAEqLY69SuX3j2Jc6Fmo33Q==
-----END PRIVATE KEY-----"""


# The suite's tests written for the Assistant API run on it; tests of the Responses wire
# (the default) say api="responses".
os.environ["YC_RUNS_API"] = "assistants"


_CLEAN_ENV = {k: v for k, v in os.environ.items()
              if not k.startswith("YC_") and not k.lower().endswith("_proxy")}


_CLEAN_ENV["YC_RUNS_API"] = "assistants"


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
        self.emu = yc_runs.Emulator(event_delay=self.event_delay, seed=1234, implicit=True).start()
        self.addCleanup(self.emu.stop)
        self.client = yc_runs.Client(base_url=self.emu.url, api_key="test-key-123456",
                                     folder_id="folder-1", timeout=5, retry_delay=0)
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


def run_process(*args: str, env: Optional[Dict[str, str]] = None, timeout: float = 60,
            **popen: Any) -> "subprocess.CompletedProcess[str]":
    """``python -m yc_runs ARGS`` as a process, in ``command_line_env``'s environment (plus ``env``):
    only for what a process alone shows (its exit status, signals, a closed or full stdout);
    the commands themselves are tested in this process with ``run_main``. ``popen`` may give
    the process's stdout."""
    popen.setdefault("stdout", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "yc_runs", *args], stderr=subprocess.PIPE,
                          text=True, env=command_line_env(**(env or {})), timeout=timeout, cwd=HERE, **popen)


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


API_KEY = "test-key-123456"


TEST_SECRET = "sk-SECRET-abc123xyz"  # the credential no output may show


UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")


RUN_JSON: Dict[str, Any] = {
    "id": "fvt-run-1", "assistantId": "fvt-asst", "threadId": "fvt-thread",
    "createdBy": "aje-user", "createdAt": "2025-04-02T17:36:56.264287721Z",
    "state": {"status": "PENDING"},
}


UTC = timezone.utc


def recorded_run(status: str) -> Dict[str, Any]:
    return copy.deepcopy(recorded()["get_run"][status])


def decode_run(obj: Any) -> "yc_runs.Run":
    return yc_runs._decode_run(obj, yc_runs.Run, None)


def decode_event(obj: Dict[str, Any], previous_text: str = "") -> "yc_runs.RunStreamEvent":
    return yc_runs._decode_stream_event(obj, previous_text)


def decode_lines(lines: List[bytes], step: Optional[int] = None) -> List["yc_runs.RunStreamEvent"]:
    """Events of a Listen body made of ``lines``, fed whole or ``step`` bytes at a time."""
    state = yc_runs._ListenState("run-1", 0)
    data = b"".join(line + b"\n" for line in lines)
    pieces = [data] if step is None else [data[i:i + step] for i in range(0, len(data), step)]
    events: List[yc_runs.RunStreamEvent] = []
    for piece in pieces:
        events.extend(state.feed(piece))
    return events


def listen_line(event_type: Any, idx: Optional[int] = None, text: Optional[str] = None,
                    wrap: bool = True, **extra: Any) -> bytes:
    """One Listen line: a StreamEvent (wrapped in {"result": ...} unless ``wrap`` is False)."""
    event: Dict[str, Any] = {"eventType": event_type,
                             "streamCursor": {} if idx is None else {"currentEventIdx": str(idx)}}
    if text is not None:
        content = {"content": [{"text": {"content": text}}]}
        if event_type == "DONE":
            event["completedMessage"] = {"id": "msg-1", "content": content,
                                         "author": {"id": "fvt-asst", "role": "ASSISTANT"},
                                         "status": "COMPLETED"}
        else:
            event["partialMessage"] = content
    event.update(extra)
    return json.dumps({"result": event} if wrap else event, ensure_ascii=False).encode("utf-8")


def one_chunk(data: bytes, extension: bytes = b"") -> bytes:
    return b"%x%s\r\n%s\r\n" % (len(data), extension, data)


def request_head(request: bytes) -> Tuple[str, Dict[str, str]]:
    """(request line, lower-cased headers) of a raw request."""
    head = request.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    lines = head.split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return lines[0], headers


def request_target(request: bytes) -> str:
    return request_head(request)[0].split(" ")[1]


def request_header(request: bytes, name: str) -> Optional[str]:
    return request_head(request)[1].get(name.lower())


def request_body(request: bytes) -> Any:
    return json.loads(request.split(b"\r\n\r\n", 1)[1])


def fake_api(conn: socket.socket, request: bytes) -> None:
    """A well-behaved Runs API: a DONE stream for Listen, a page for List, {} for Submit, else a Run."""
    target = request_target(request)
    if target.startswith("/assistants/v1/runs/listen"):
        conn.sendall(stream_head() + one_chunk(listen_line("DONE", 0, "ok") + b"\n") + b"0\r\n\r\n")
    elif target.startswith("/assistants/v1/runs?"):
        conn.sendall(json_response(200, {"runs": [RUN_JSON], "nextPageToken": ""}))
    elif target.startswith("/assistants/v1/runs/submit"):
        conn.sendall(json_response(200, {}))
    else:
        conn.sendall(json_response(200, RUN_JSON))


def raw_server(*responses: Any, context: Optional[ssl.SSLContext] = None) -> RawServer:
    """A RawServer answering successive requests with ``responses`` (bytes, or handlers called
    as handler(conn, request)), the last one repeated; fake_api when none are given."""
    queue = list(responses) or [fake_api]
    lock = threading.Lock()

    def handler(conn: socket.socket, request: bytes) -> Any:
        with lock:
            item = queue.pop(0) if len(queue) > 1 else queue[0]
        if callable(item):
            return item(conn, request)
        conn.sendall(item)
        return None

    return RawServer(handler, context=context)


def error_response(status: int, obj: Any, *headers: Tuple[str, str]) -> bytes:
    return json_response(status, obj, tuple(headers))


def stream_handler(*pieces: bytes, head: Optional[bytes] = None) -> Callable[..., Any]:
    """A handler that writes the head and then each piece with its own send, then closes."""
    def handler(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(stream_head() if head is None else head)
        for piece in pieces:
            conn.sendall(piece)
        return False

    return handler


def stalling_stream(line: bytes, release: threading.Event) -> Callable[..., Any]:
    """A handler that sends a stream head and one event line, then goes silent until released."""
    def handler(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(stream_head() + one_chunk(line + b"\n"))
        release.wait(10)
        return False

    return handler


def parse_response(data: bytes, method: str = "GET", step: int = 1, eof: bool = True) -> Tuple[
        Optional["yc_runs._Head"], bytes, Optional["yc_runs._End"]]:
    """Feed ``data`` to a _ResponseParser ``step`` bytes at a time; (head, body, end)."""
    parser = yc_runs._ResponseParser(method)
    head, body, end = None, bytearray(), None
    pieces = [data[i:i + step] for i in range(0, len(data), step)] + ([b""] if eof else [])
    for piece in pieces:
        parser.feed(piece)
        while end is None:
            event = parser.next_event()
            if event is None:
                break
            if isinstance(event, yc_runs._Head):
                head = event
            elif isinstance(event, yc_runs._End):
                end = event
            else:
                body += event
        if end is not None:
            break
    return head, bytes(body), end


def outcome(decode: Callable[..., Any], *args: Any) -> Tuple[str, Any]:
    """("ok", what ``decode`` returns), or the name and text of the yc_runs error it raises:
    two decoders compared, value or error."""
    try:
        return "ok", decode(*args)
    except yc_runs.YCRunsError as exc:
        return type(exc).__name__, str(exc)


def json_paths(obj: Any, path: Tuple[Any, ...] = ()) -> Iterator[Tuple[Any, ...]]:
    """Every path into a JSON value, the root included."""
    yield path
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from json_paths(value, (*path, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from json_paths(value, (*path, index))


def with_value_at(obj: Any, path: Tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    result = copy.deepcopy(obj)
    target = result
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return result


def rfc3339(stamp: datetime) -> str:
    return stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def proxied_url(server: RawServer) -> str:
    """The server's URL under a name only connect_proxy resolves (not loopback, so
    the client must tunnel)."""
    return "http://proxied.test:%d" % server.port


def connect_proxy(refuse: bool = False) -> types.SimpleNamespace:
    """A CONNECT proxy on loopback that tunnels to loopback only; records each CONNECT head."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    proxy = types.SimpleNamespace(port=listener.getsockname()[1], requests=[], connections=0,
                                  close=listener.close)
    proxy.url = "http://127.0.0.1:%d" % proxy.port

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def serve(conn: socket.socket) -> None:
        upstream = None
        try:
            buffer = bytearray()
            head = read_request(conn, buffer)
            if head is None:
                return
            proxy.requests.append(head)
            host, _, port = request_target(head).rpartition(":")
            if refuse or host.strip("[]") not in ("127.0.0.1", "localhost", "proxied.test"):
                conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                             b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
            upstream = socket.create_connection(("127.0.0.1", int(port)), 5)
            upstream.settimeout(None)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if buffer:
                upstream.sendall(bytes(buffer))
            other = threading.Thread(target=pipe, args=(conn, upstream), daemon=True)
            other.start()
            pipe(upstream, conn)
            other.join(10)
        except OSError:
            pass
        finally:
            for sock in (conn, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            proxy.connections += 1
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return proxy


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    sock.close()
    return port


def decode_enum(cls: Any, value: Any, path: Tuple[str, ...]) -> Any:
    """Decode ``value`` placed at ``path`` of a Run (or of a StreamEvent for eventType)."""
    if path == ("eventType",):
        return decode_event({"eventType": value}).status
    obj: Dict[str, Any] = {"id": "r"}
    target = obj
    for key in path[:-1]:
        target = target.setdefault(key, {})
    target[path[-1]] = value
    result = decode_run(obj).result
    if cls is yc_runs.MessageStatus:
        assert result.completed_message is not None
        return result.completed_message.status
    return result.status


class RawServerTestCase(EnvTestCase):
    """Base for tests against RawServers: clean environment, servers and clients closed after."""

    def serve(self, *responses: Any, context: Optional[ssl.SSLContext] = None) -> RawServer:
        server = raw_server(*responses, context=context)
        self.addCleanup(server.close)
        return server

    def client_for(self, server: Any, **kwargs: Any) -> "yc_runs.Client":
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("folder_id", "folder-1")
        kwargs.setdefault("timeout", 5)
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("retry_delay", 0)  # tests of the backoff step plans on a fake clock
        url = server if isinstance(server, str) else server.url
        client = yc_runs.Client(base_url=url, **kwargs)
        self.addCleanup(client.close)
        return client

    def release_event(self) -> threading.Event:
        """An event the test's stalling handlers wait on; set when the test ends."""
        event = threading.Event()
        self.addCleanup(event.set)
        return event


# The captures from the live Responses API: the shared copy beside this checkout, else ours.
RESPONSES_EXAMPLES = os.path.join(HERE, "..", "shared", "api", "examples", "responses")


if not os.path.exists(RESPONSES_EXAMPLES):
    RESPONSES_EXAMPLES = os.path.join(HERE, "testdata", "responses")


def capture_bytes(name: str) -> bytes:
    with open(os.path.join(RESPONSES_EXAMPLES, name), "rb") as handle:
        return handle.read()


def sse_events(pieces: List[bytes], offset: int = 0
                     ) -> Tuple[List[yc_runs.RunStreamEvent], "yc_runs._ResponsesStreamState"]:
    state = yc_runs._ResponsesStreamState(offset=offset)
    events: List[yc_runs.RunStreamEvent] = []
    for piece in pieces:
        events.extend(state.feed(piece))
    events.extend(state.end())
    return events, state


def sse_bytes(*events: Dict[str, Any]) -> bytes:
    """Events framed as the service frames them: data line first, no space, LF."""
    return b"".join(b"data:" + json.dumps(e, ensure_ascii=False).encode() + b"\nevent:"
                    + e["type"].encode() + b"\n\n" for e in events)


def response_object(**fields: Any) -> Dict[str, Any]:
    obj: Dict[str, Any] = {"id": "resp-1", "object": "response", "created_at": 1.790262606E9,
                           "status": "completed", "model": "gpt://b1g/yandexgpt/latest",
                           "output": [], "usage": None, "error": None, "conversation": None}
    obj.update(fields)
    return obj


def text_item(*texts: str, annotations: Any = ()) -> Dict[str, Any]:
    return {"type": "message", "id": "msg-1", "role": "assistant", "status": "completed",
            "content": [{"type": "output_text", "text": t, "annotations": list(annotations)}
                        for t in texts]}


def call_item(name: str, arguments: str, call_id: Optional[str] = None) -> Dict[str, Any]:
    return {"type": "function_call", "id": "fc-" + name, "name": name, "arguments": arguments,
            "call_id": call_id or name, "status": "completed"}


def respelled(data: bytes, rng: random.Random) -> bytes:
    """The capture's events re-spelled: field order, spaces, line ends, comments, ids, retry,
    multi-line data, a BOM, all chosen by ``rng``; the JSON values stay the same."""
    blocks = [b for b in data.decode("utf-8").split("\n\n") if b.strip()]
    out = ["\ufeff"] if rng.random() < 0.5 else []
    for block in blocks:
        fields = dict(line.split(":", 1) for line in block.split("\n"))
        obj = json.loads(fields["data"])
        if rng.random() < 0.3:
            data_lines = json.dumps(obj, ensure_ascii=False, indent=1).split("\n")
        else:
            data_lines = [fields["data"]]
        sep = rng.choice([":", ": "])
        lines = ["data" + sep + part for part in data_lines]
        event_line = "event" + rng.choice([":", ": "]) + fields["event"]
        lines.insert(rng.choice([0, len(lines)]), event_line)
        if rng.random() < 0.3:
            lines.insert(rng.randrange(len(lines) + 1), ": keep-alive")
        if rng.random() < 0.2:
            lines.insert(rng.randrange(len(lines) + 1), "id: %d" % rng.randrange(1000))
        if rng.random() < 0.2:
            lines.insert(rng.randrange(len(lines) + 1), "retry: 3000")
        if rng.random() < 0.2:
            lines.insert(0, ":")
        eol = rng.choice(["\n", "\r\n", "\r"])
        out.append(eol.join(lines) + eol + eol)
    return "".join(out).encode("utf-8")


def random_split(data: bytes, rng: random.Random, cuts: int) -> List[bytes]:
    points = sorted(rng.sample(range(1, len(data)), min(cuts, len(data) - 1)))
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


PLANTED = '''\
import yc_runs

client = yc_runs.Client(api_key="k", folder_id="f", timeout="slow")  # planted: timeout is a float
run = client.runs.create("a", "t", stream="yes")  # planted: stream is a bool
result = client.runs.create_and_wait("a", "t", custom_temperature="hot")  # planted: spelled out
count: int = result.text  # planted: text is Optional[str]
run.no_such_method()  # planted: Run has no such attribute
status: yc_runs.RunStatus = yc_runs.StreamEvent.DONE  # planted: another enum
fine: str = yc_runs.__version__
'''


def tool_missing(*modules: str) -> Optional[str]:
    """Why the packaging test cannot run here (a module it needs is missing), or None."""
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            return "%s is not importable in %s (.ci/run installs it)" % (module, sys.executable)
    return None


def isolated_env() -> Dict[str, str]:
    """The environment without anything that would make a subprocess find this checkout."""
    return {k: v for k, v in command_line_env().items() if k not in ("PYTHONPATH", "MYPYPATH")}


PASSWORD = "hunter2-Pa55word"


def nested_json(depth: int) -> Dict[str, Any]:
    nested: Dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        nested = {"a": nested}
    return nested


def json_depth(value: Any) -> int:
    depth = 0
    while isinstance(value, dict) and value:
        value = next(iter(value.values()))
        depth += 1
    return depth


PIECES = ["one ", "two ", "three ", "four ", "five ", "six"]


PIECES_TEXT = "".join(PIECES)


# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def summary(events: List[yc_runs.RunStreamEvent]) -> List[Tuple[Any, ...]]:
    """What a caller sees of each event: index, type, delta, reset flag, text so far."""
    return [(e.stream_cursor.current_event_idx, e.status, e.delta, e.delta_reset, e.text)
            for e in events]


def listen_starts(emu: yc_runs.Emulator) -> List[str]:
    """eventsStartIdx of every Listen request the emulator got, in order."""
    return [r.query.get("eventsStartIdx", "") for r in emu.requests
            if r.method == "GET" and r.path.endswith("/listen")]


def line_lengths(emu: yc_runs.Emulator, run_id: str) -> List[int]:
    """Bytes of each Listen line of the run, as the emulator frames them."""
    return [len(json.dumps({"result": event}, ensure_ascii=False).encode("utf-8")) + 1
            for _, event in emu.runs[run_id].events]


def submits_of(emu: yc_runs.Emulator) -> List[Any]:
    """The toolResults of every Submit request, in order."""
    return [r.json["toolResultList"]["toolResults"] for r in emu.requests if r.method == "PATCH"]


def scripted_server(body: bytes, piece: int = 7) -> RawServer:
    """Serves run "run-raw" (Get) and its Listen body cut into ``piece``-byte chunks."""
    run = {"id": "run-raw", "assistantId": "a", "threadId": "t", "state": {"status": "IN_PROGRESS"}}

    def handler(conn: Any, request: bytes) -> Any:
        if b"/listen?" in request.split(b"\r\n", 1)[0]:
            pieces = [body[i:i + piece] for i in range(0, len(body), piece)]
            conn.sendall(stream_head() + chunked(pieces))
            return False
        conn.sendall(json_response(200, run))
        return None

    return RawServer(handler)


# "Hello wor" -> "Hello world" -> rewritten to "Привет" -> DONE "Привет!"
REWRITE_BODY = b"".join([
    listen_line("PARTIAL_MESSAGE", 0, "Hello wor") + b"\n",
    listen_line("PARTIAL_MESSAGE", 1, "Hello world") + b"\n",
    listen_line("PARTIAL_MESSAGE", 2, "Привет") + b"\n",
    listen_line("DONE", 3, "Привет!") + b"\n",
])


def check_rewrite(case: unittest.TestCase, events: List[yc_runs.RunStreamEvent]) -> None:
    case.assertEqual([(e.delta, e.delta_reset) for e in events],
                     [("Hello wor", False), ("ld", False), ("Привет", True), ("!", False)])
    case.assertEqual(events[-1].text, "Привет!")


def hold_server() -> Tuple[RawServer, threading.Event]:
    """A Listen that sends one event and then holds the connection open.

    Returns (server, eof): ``eof`` is set when the client has closed its end.
    """
    eof = threading.Event()

    def handler(conn: Any, request: bytes) -> Any:
        line = listen_line("PARTIAL_MESSAGE", 0, "Hi") + b"\n"
        conn.sendall(stream_head() + b"%x\r\n%s\r\n" % (len(line), line))  # and no last chunk
        conn.settimeout(15)
        try:
            while conn.recv(4096):
                pass
        except OSError:
            return False
        eof.set()
        return False

    return RawServer(handler), eof


class WarmUpOrder:
    """A request plan with a warm-up, and a server whose answer waits for that warm-up: the
    warm-up notes whether the request was out when the driver ran it."""

    def __init__(self) -> None:
        self.received, self.answer = threading.Event(), threading.Event()
        self.seen: List[bool] = []

    def handler(self, conn: socket.socket, request: bytes) -> bool:
        self.received.set()
        self.answer.wait(10)  # the head waits for the warm-up: it ran while the answer was due
        conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
        return False

    def warm(self) -> None:
        self.seen.append(self.received.wait(5))  # the request is out
        self.answer.set()

    def plan(self) -> Any:
        head, _request_id = yield yc_runs._Open(yc_runs._get_request("r"),
                                                time.monotonic() + 5, self.warm)
        return head.status


def slow_caller_stream(asked: threading.Event) -> Callable[..., Any]:
    """A stream that sends its first event, waits until the caller has been slower over it
    than its timeout (``asked``), then sends the final event: a slow caller is no stall."""
    def handler(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(stream_head() + one_chunk(listen_line("PARTIAL_MESSAGE", 0, "a") + b"\n"))
        asked.wait(10)
        conn.sendall(one_chunk(listen_line("DONE", 1, "ab") + b"\n") + b"0\r\n\r\n")
        return False

    return handler


def silent_server(first_line: Optional[bytes] = None) -> Tuple[RawServer, threading.Event]:
    """A server that answers nothing (or a stream head and ``first_line``), until released."""
    release = threading.Event()

    def handler(conn: Any, request: bytes) -> Any:
        if first_line is not None:
            conn.sendall(stream_head() + b"%x\r\n%s\r\n" % (len(first_line), first_line))
        release.wait(15)
        return False

    return RawServer(handler), release


async def wait_for_flag(flag: threading.Event, limit: float) -> float:
    """Seconds until ``flag`` is set, letting the loop run meanwhile; fails after ``limit``."""
    started = time.monotonic()
    while not flag.is_set():
        if time.monotonic() - started > limit:
            raise AssertionError("not set within %.1f s" % limit)
        await asyncio.sleep(0.005)
    return time.monotonic() - started


@contextlib.contextmanager
def closes_its_streams(case: unittest.TestCase) -> Iterator[None]:
    """Fails when a stream writer was left for the garbage collector to close."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    case.assertEqual([str(w.message) for w in caught if issubclass(w.category, ResourceWarning)
                      and "unclosed" in str(w.message)], [])


def quiet_loop() -> None:
    """The test loop runs in debug mode; on a busy CI machine its slow-callback warnings are noise."""
    asyncio.get_running_loop().slow_callback_duration = 10.0


class AsyncEmulatorTestCase(unittest.IsolatedAsyncioTestCase):
    """A fresh in-process emulator and an AsyncClient pointed at it, per test."""

    event_delay = 0.002

    def setUp(self) -> None:
        patcher = clean_env()
        patcher.start()
        self.addCleanup(patcher.stop)
        self.emu = yc_runs.Emulator(event_delay=self.event_delay, seed=1234, implicit=True).start()
        self.addCleanup(self.emu.stop)

    async def asyncSetUp(self) -> None:
        quiet_loop()
        self.client = self.async_client()

    def async_client(self, **options: Any) -> yc_runs.AsyncClient:
        settings: Dict[str, Any] = dict(base_url=self.emu.url, api_key=API_KEY,
                                        folder_id="folder-1", timeout=5, retry_delay=0)
        settings.update(options)
        client = yc_runs.AsyncClient(**settings)
        self.addAsyncCleanup(client.close)
        return client


class AsyncEnvTestCase(unittest.IsolatedAsyncioTestCase):
    """An async test with no YC_* variables and no proxies in the environment."""

    def setUp(self) -> None:
        patcher = clean_env()
        patcher.start()
        self.addCleanup(patcher.stop)

    async def asyncSetUp(self) -> None:
        quiet_loop()

    def raw_client(self, server: RawServer, **options: Any) -> yc_runs.AsyncClient:
        settings: Dict[str, Any] = dict(base_url=server.url, api_key=API_KEY, timeout=5,
                                        retry_delay=0)
        settings.update(options)
        client = yc_runs.AsyncClient(**settings)
        self.addAsyncCleanup(client.close)
        return client


# the review's race ran 20 s under serve: YC_RUNS_RACE_SECONDS=20 repeats it
RACE_SECONDS = float(os.environ.get("YC_RUNS_RACE_SECONDS") or 0.2)


AUTH_HEADERS = b"Authorization: Api-Key k\r\nx-folder-id: folder-1\r\n"


ID_PATTERN = r"\A[0-9a-v]{20}\Z"


STAMP_PATTERN = r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z\Z"


def exchange(emu: yc_runs.Emulator, request: bytes
                      ) -> Tuple[int, Dict[str, str], Any, bytes]:
    """Send raw ``request`` bytes on a new loopback connection: (status, headers, JSON body
    or None, raw body)."""
    sock = socket.create_connection(("127.0.0.1", urlsplit(emu.url).port), timeout=10)
    try:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock, method=request.split(b" ", 1)[0].decode())
        response.begin()
        raw = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        return response.status, headers, body, raw
    finally:
        sock.close()


def raw_request(method: str, target: str, body: Any = None, auth: bool = True,
                     head: bytes = b"") -> bytes:
    """An HTTP/1.1 request; ``body`` is bytes as they are, or an object sent as JSON."""
    data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    length = b"Content-Length: %d\r\n" % len(data) if data and b"content-length" not in \
        head.lower() and b"transfer-encoding" not in head.lower() else b""
    return b"%s %s HTTP/1.1\r\nHost: emulator\r\n%s%s%s\r\n%s" % (
        method.encode(), target.encode(), AUTH_HEADERS if auth else b"", length, head, data)


def grpc_refusal(body: Any) -> Tuple[int, str]:
    """(gRPC code, message) from either of the service's error shapes."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"]["grpcCode"], body["error"]["message"]
    assert isinstance(body, dict) and set(body) == {"code", "message", "details"}, body
    return body["code"], body["message"]


def ndjson_lines(raw: bytes) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


class EmulatorWireTestCase(EnvTestCase):
    """A strict emulator (the default) with an assistant, a thread and runs to aim at."""

    def setUp(self) -> None:
        super().setUp()
        self.emu = yc_runs.Emulator(event_delay=0.001, seed=13).start()
        self.addCleanup(self.emu.stop)
        self.emu.script("asst")
        self.emu.script("tools", tool_calls=[{"name": "f", "arguments": {"x": 1}},
                                             {"name": "g", "arguments": {}}], replies=["done"])
        self.thread = self.emu.threads.create("thr-1", folder_id="folder-1")
        self.client = yc_runs.Client(base_url=self.emu.url, api_key="k", folder_id="folder-1",
                                     timeout=5)
        self.addCleanup(self.client.close)

    def call(self, method: str, target: str, body: Any = None, **options: Any
             ) -> Tuple[int, Dict[str, str], Any, bytes]:
        return exchange(self.emu, raw_request(method, target, body, **options))

    def create(self, **fields: Any) -> Dict[str, Any]:
        status, _, run, _ = self.call("POST", "/assistants/v1/runs", dict(
            {"assistantId": "asst", "threadId": "thr-1"}, **fields))
        self.assertEqual(status, 200, run)
        return run  # type: ignore[no-any-return]


def message_json(text: Any) -> Dict[str, Any]:
    return {"content": {"content": [{"text": {"content": text}}]}}


RUNS = "/assistants/v1/runs"


THREADS = "/assistants/v1/threads"


MESSAGES = "/assistants/v1/messages"


MINIMAL_RUN = {"assistantId": "asst", "threadId": "thr-1"}


# (what, method, target, body, extra head, status, gRPC code, the field the message names);
# "{tool}" and "{done}" stand for a run waiting for f and g, and a finished run.
MALFORMED_ASSISTANT_API_REQUESTS: List[Tuple[str, str, str, Any, bytes, int, int, str]] = [
    ("body not JSON", "POST", RUNS, b"not json", b"", 400, 3, "not JSON"),
    ("body not UTF-8", "POST", RUNS, b"\xff\xfe", b"", 400, 3, "not JSON"),
    ("body a list", "POST", RUNS, [1], b"", 400, 3, "CreateRunRequest"),
    ("no body", "POST", RUNS, None, b"", 400, 3, "CreateRunRequest"),
    ("no assistantId", "POST", RUNS, {"threadId": "thr-1"}, b"", 400, 3, "assistantId"),
    ("no threadId", "POST", RUNS, {"assistantId": "asst"}, b"", 400, 3, "threadId"),
    ("assistantId a number", "POST", RUNS, dict(MINIMAL_RUN, assistantId=5), b"", 400, 3,
     "assistantId"),
    ("a field twice", "POST", RUNS, dict(MINIMAL_RUN, assistant_id="asst"), b"", 400, 3, "assistantId"),
    ("message a number", "POST", RUNS, dict(MINIMAL_RUN, additionalMessages=[5]), b"", 400, 3,
     "additionalMessages[0]"),
    ("message a string", "POST", RUNS, dict(MINIMAL_RUN, additionalMessages=["hi"]), b"", 400, 3,
     "additionalMessages[0]"),
    ("messages a string", "POST", RUNS, dict(MINIMAL_RUN, additionalMessages="x"), b"", 400, 3,
     "additionalMessages"),
    ("message null", "POST", RUNS, dict(MINIMAL_RUN, additionalMessages=[None]), b"", 400, 3,
     "additionalMessages[0]"),
    ("message text a number", "POST", RUNS,
     dict(MINIMAL_RUN, additionalMessages=[message_json(5)]), b"",
     400, 3, "additionalMessages[0].content.content[0].text.content"),
    ("tools a number", "POST", RUNS, dict(MINIMAL_RUN, tools=5), b"", 400, 3, "tools"),
    ("tool a number", "POST", RUNS, dict(MINIMAL_RUN, tools=[1]), b"", 400, 3, "tools[0]"),
    ("tool without a name", "POST", RUNS, dict(MINIMAL_RUN, tools=[{"function": {}}]), b"", 400, 3,
     "tools[0].function.name"),
    ("tool parameters a number", "POST", RUNS, dict(MINIMAL_RUN, tools=[{"function": {
        "name": "f", "parameters": 5}}]), b"", 400, 3, "tools[0].function.parameters"),
    ("tool two kinds", "POST", RUNS, dict(MINIMAL_RUN, tools=[{"function": {"name": "f"},
                                                   "genSearch": {}}]), b"", 400, 3,
     "tools[0].genSearch"),
    ("labels a string", "POST", RUNS, dict(MINIMAL_RUN, labels="x"), b"", 400, 3, "labels"),
    ("label a number", "POST", RUNS, dict(MINIMAL_RUN, labels={"k": 5}), b"", 400, 3, 'labels["k"]'),
    ("stream a string", "POST", RUNS, dict(MINIMAL_RUN, stream="false"), b"", 400, 3, "stream"),
    ("stream a number", "POST", RUNS, dict(MINIMAL_RUN, stream=1), b"", 400, 3, "stream"),
    ("temperature a word", "POST", RUNS,
     dict(MINIMAL_RUN, customCompletionOptions={"temperature": "hot"}),
     b"", 400, 3, "customCompletionOptions.temperature"),
    ("maxTokens a fraction", "POST", RUNS,
     dict(MINIMAL_RUN, customCompletionOptions={"maxTokens": 1.5}),
     b"", 400, 3, "customCompletionOptions.maxTokens"),
    ("maxTokens not digits", "POST", RUNS,
     dict(MINIMAL_RUN, customCompletionOptions={"maxTokens": "12x"}),
     b"", 400, 3, "customCompletionOptions.maxTokens"),
    ("maxTokens past int64", "POST", RUNS,
     dict(MINIMAL_RUN, customCompletionOptions={"maxTokens": 2**63}),
     b"", 400, 3, "customCompletionOptions.maxTokens"),
    ("two strategies", "POST", RUNS, dict(MINIMAL_RUN, customPromptTruncationOptions={
        "autoStrategy": {}, "lastMessagesStrategy": {}}), b"", 400, 3, "lastMessagesStrategy"),
    ("jsonObject a string", "POST", RUNS, dict(MINIMAL_RUN, customResponseFormat={"jsonObject": "yes"}),
     b"", 400, 3, "customResponseFormat.jsonObject"),
    ("unknown assistant", "POST", RUNS, dict(MINIMAL_RUN, assistantId="nobody"), b"", 404, 5,
     "assistantId"),
    ("unknown thread", "POST", RUNS, dict(MINIMAL_RUN, threadId="nowhere"), b"", 404, 5, "threadId"),
    ("Content-Length abc", "POST", RUNS, b"{}", b"Content-Length: abc\r\n", 400, 3,
     "Content-Length"),
    ("Content-Length -1", "POST", RUNS, b"{}", b"Content-Length: -1\r\n", 400, 3, "Content-Length"),
    ("chunked request body", "POST", RUNS, b"2\r\n{}\r\n0\r\n\r\n",
     b"Transfer-Encoding: chunked\r\n", 411, 3, "Transfer-Encoding"),
    ("submit empty", "PATCH", RUNS + "/submit", {}, b"", 400, 3, "runId"),
    ("submit no results", "PATCH", RUNS + "/submit", {"runId": "{tool}"}, b"", 400, 3,
     "toolResultList"),
    ("submit results a list", "PATCH", RUNS + "/submit", {"runId": "{tool}", "toolResultList": [1]},
     b"", 400, 3, "toolResultList"),
    ("submit result a number", "PATCH", RUNS + "/submit", {"runId": "{tool}", "toolResultList": {
        "toolResults": [1]}}, b"", 400, 3, "toolResultList.toolResults[0]"),
    ("submit result without a name", "PATCH", RUNS + "/submit", {"runId": "{tool}", "toolResultList": {
        "toolResults": [{"functionResult": {"content": "1"}}]}}, b"", 400, 3,
     "toolResultList.toolResults[0].functionResult.name"),
    ("submit content a number", "PATCH", RUNS + "/submit", {"runId": "{tool}", "toolResultList": {
        "toolResults": [{"functionResult": {"name": "f", "content": 1}}]}}, b"", 400, 3,
     "toolResultList.toolResults[0].functionResult.content"),
    ("submit an extra name", "PATCH", RUNS + "/submit", {"runId": "{tool}", "toolResultList": {
        "toolResults": [{"functionResult": {"name": "f"}}, {"functionResult": {"name": "h"}}]}},
     b"", 400, 3, "toolResultList.toolResults[1].functionResult.name"),
    ("submit a name twice", "PATCH", RUNS + "/submit", {"runId": "{tool}", "toolResultList": {
        "toolResults": [{"functionResult": {"name": "f"}}, {"functionResult": {"name": "f"}}]}},
     b"", 400, 3, "toolResultList.toolResults[1].functionResult.name"),
    ("submit a name missing", "PATCH", RUNS + "/submit", {"runId": "{tool}", "toolResultList": {
        "toolResults": [{"functionResult": {"name": "f"}}]}}, b"", 400, 3,
     "toolResultList.toolResults: no result for the function call g"),
    ("submit to a finished run", "PATCH", RUNS + "/submit", {"runId": "{done}", "toolResultList": {
        "toolResults": [{"functionResult": {"name": "f"}}]}}, b"", 400, 9, "{done}"),
    ("submit to no run", "PATCH", RUNS + "/submit", {"runId": "nope", "toolResultList": {
        "toolResults": [{"functionResult": {"name": "f"}}]}}, b"", 404, 5, "nope"),
    ("listen without runId", "GET", RUNS + "/listen", None, b"", 400, 3, "runId"),
    ("listen from -2", "GET", RUNS + "/listen?runId={done}&eventsStartIdx=-2", None, b"", 400, 3,
     "eventsStartIdx"),
    ("listen from a word", "GET", RUNS + "/listen?runId={done}&eventsStartIdx=abc", None, b"", 400,
     3, "eventsStartIdx"),
    ("listen past the end", "GET", RUNS + "/listen?runId={done}&eventsStartIdx=99", None, b"", 400,
     11, "eventsStartIdx"),
    ("listen to no run", "GET", RUNS + "/listen?runId=nope", None, b"", 404, 5, "nope"),
    ("get no run", "GET", RUNS + "/nope%2Fx", None, b"", 404, 5, "nope/x"),
    ("list without folderId", "GET", RUNS, None, b"", 400, 3, "folderId"),
    ("list a negative pageToken", "GET", RUNS + "?folderId=folder-1&pageToken=-1", None, b"", 400,
     3, "pageToken"),
    ("list a forged pageToken", "GET", RUNS + "?folderId=folder-1&pageToken=MTA", None, b"", 400, 3,
     "pageToken"),
    ("list a negative pageSize", "GET", RUNS + "?folderId=folder-1&pageSize=-1", None, b"", 400, 3,
     "pageSize"),
    ("list a word pageSize", "GET", RUNS + "?folderId=folder-1&pageSize=ten", None, b"", 400, 3,
     "pageSize"),
    ("last without threadId", "GET", RUNS + ":getByThread", None, b"", 400, 3, "threadId"),
    ("last of no thread", "GET", RUNS + ":getByThread?threadId=nowhere", None, b"", 404, 5,
     "threadId"),
    ("DELETE runs", "DELETE", RUNS, None, b"", 405, 12, "DELETE"),
    ("PUT a run", "PUT", RUNS + "/x", None, b"", 405, 12, "PUT"),
    ("an invented method", "BREW", RUNS, None, b"", 405, 12, "BREW"),
    ("HEAD a run", "HEAD", RUNS + "/x", None, b"", 405, 12, ""),
    ("no such path", "GET", "/assistants/v1/nope", None, b"", 404, 5, "/assistants/v1/nope"),
    ("another version", "POST", "/assistants/v2/runs", MINIMAL_RUN, b"", 404, 5, "/assistants/v2/runs"),
    ("no Authorization", "GET", RUNS + "/{done}", None, b"", 401, 16, "Authorization"),
    ("thread without folderId", "POST", THREADS, {}, b"", 400, 3, "folderId"),
    ("thread message a number", "POST", THREADS, {"folderId": "f", "messages": [5]}, b"", 400, 3,
     "messages[0]"),
    ("thread expiration unknown", "POST", THREADS, {"folderId": "f", "expirationConfig": {
        "expirationPolicy": "SOMETIMES"}}, b"", 400, 3, "expirationConfig.expirationPolicy"),
    ("thread ttlDays a word", "POST", THREADS, {"folderId": "f", "expirationConfig": {
        "ttlDays": "week"}}, b"", 400, 3, "expirationConfig.ttlDays"),
    ("thread ttlDays past a century", "POST", THREADS, {"folderId": "f", "expirationConfig": {
        "ttlDays": "99999999999"}}, b"", 400, 3, "expirationConfig.ttlDays"),
    ("thread ttlDays negative", "POST", THREADS, {"folderId": "f", "expirationConfig": {
        "ttlDays": -1}}, b"", 400, 3, "expirationConfig.ttlDays"),
    ("get no thread", "GET", THREADS + "/nope", None, b"", 404, 5, "nope"),
    ("delete no thread", "DELETE", THREADS + "/nope", None, b"", 404, 5, "nope"),
    ("update without a mask", "PATCH", THREADS + "/thr-1", {"name": "x"}, b"", 400, 3, "updateMask"),
    ("update an unknown path", "PATCH", THREADS + "/thr-1", {"updateMask": "colour"}, b"", 400, 3,
     "updateMask"),
    ("threads without folderId", "GET", THREADS, None, b"", 400, 3, "folderId"),
    ("message without threadId", "POST", MESSAGES, {"content": message_json("x")["content"]}, b"", 400,
     3, "threadId"),
    ("message without content", "POST", MESSAGES, {"threadId": "thr-1"}, b"", 400, 3, "content"),
    ("message to no thread", "POST", MESSAGES, {"threadId": "nowhere", "content": message_json("x")[
        "content"]}, b"", 404, 5, "threadId"),
    ("messages without threadId", "GET", MESSAGES, None, b"", 400, 3, "threadId"),
    ("no such message", "GET", MESSAGES + "/nope?threadId=thr-1", None, b"", 404, 5, "nope"),
]


def assert_same_shape(test: unittest.TestCase, recorded: Any, emitted: Any, path: str) -> None:
    """``emitted`` has every key of ``recorded``, no other, each typed the same (recursively)."""
    test.assertIs(type(emitted), type(recorded), "%s: %r vs %r" % (path, emitted, recorded))
    if isinstance(recorded, dict):
        test.assertEqual(sorted(emitted), sorted(recorded), path)
        for key in recorded:
            assert_same_shape(test, recorded[key], emitted[key], path + "." + key)
    elif isinstance(recorded, list) and recorded:
        test.assertTrue(emitted, path)
        for i, item in enumerate(emitted):
            assert_same_shape(test, recorded[min(i, len(recorded) - 1)], item, "%s[%d]" % (path, i))


CHUNKINGS: List[Tuple[List[str], str]] = [
    (["Hel", "lo, ", "world"], "Hello, world"),
    (["only the final event carries this"], "only the final event carries this"),
    (["При", "вет, ", "мир ", "🌍"], "Привет, мир 🌍"),
    (["a", "", "b", "\n", "c"], "ab\nc"),
]


class ResumeScenarios:
    """Shared expectations of the resume tests; ``self.emu`` is the emulator."""

    emu: yc_runs.Emulator
    assertEqual: Callable[..., None]

    def cut_after_two_events(self, run_id: str) -> None:
        lengths = line_lengths(self.emu, run_id)
        self.emu.inject(yc_runs.Fault.cut(after_bytes=lengths[0] + lengths[1] + 5), on="listen")

    def assert_same_events(self, events: List[yc_runs.RunStreamEvent],
                           reference: List[yc_runs.RunStreamEvent]) -> None:
        self.assertEqual([e.stream_cursor.current_event_idx for e in events], list(range(6)))
        self.assertEqual(summary(events), summary(reference))
        self.assertEqual("".join(e.delta for e in events), PIECES_TEXT)

    def arm_spent_retries(self, run_id: str) -> None:
        """Two events, then every reconnection is cut inside its first line."""
        self.cut_after_two_events(run_id)
        self.emu.inject(yc_runs.Fault.cut(after_bytes=5), on="listen", times=None)


def add_tool(a: int, b: int) -> int:
    """Add two numbers."""
    if type(a) is not int or type(b) is not int:
        raise TypeError("ints expected, got %r and %r" % (a, b))
    return a + b


def city_tool(city: str) -> Dict[str, Any]:
    """Facts about a city."""
    return {"city": city, "population": "≈ 700 000"}


def broken_tool(reason: str) -> str:
    raise ValueError("broken: %s" % reason)


FUNCTIONS: Dict[str, Callable[..., Any]] = {
    "add": add_tool, "city": city_tool, "broken": broken_tool}


CALLS = [
    {"name": "add", "arguments": {"a": 2.0, "b": 3.0}},
    {"name": "city", "arguments": {"city": "Oslo"}},
    {"name": "broken", "arguments": {"reason": "disk full"}},
    {"name": "missing", "arguments": {}},
]


class ToolScenarios:
    emu: yc_runs.Emulator
    assertEqual: Callable[..., None]
    assertIn: Callable[..., None]

    def assert_one_submit_with_all_results(self) -> None:
        submits = submits_of(self.emu)
        self.assertEqual(len(submits), 1)
        results = [item["functionResult"] for item in submits[0]]
        self.assertEqual([r["name"] for r in results], ["add", "city", "broken", "missing"])
        self.assertEqual(results[0]["content"], "5")
        self.assertEqual(json.loads(results[1]["content"]),
                         {"city": "Oslo", "population": "≈ 700 000"})
        self.assertEqual(json.loads(results[2]["content"]),
                         {"error": "ValueError: broken: disk full"})
        self.assertEqual(list(json.loads(results[3]["content"])), ["error"])
        self.assertIn("missing", json.loads(results[3]["content"])["error"])


def search_tool(query: str, limit: int, rows: list,  # type: ignore[type-arg]
                    exact: bool = False, tags: Optional[List[str]] = None,
                    mode: Literal["fast", "deep"] = "fast", ids: Optional[List[int]] = None,
                    weights: Optional[dict] = None, score: float = 0.5,  # type: ignore[type-arg]
                    pair: tuple = ()) -> str:  # type: ignore[type-arg]
    """Search the knowledge base.

    Longer notes that are not part of the description.
    """
    return query


class Recorder:
    """A listen_with handler that records its calls."""

    def __init__(self) -> None:
        self.calls: List[Tuple[Any, ...]] = []

    def on_event(self, event: yc_runs.RunStreamEvent) -> None:
        self.calls.append(("event", event.stream_cursor.current_event_idx))

    def on_text_delta(self, delta: str, snapshot: str) -> None:
        self.calls.append(("delta", delta, snapshot))

    def on_message_done(self, message: yc_runs.Message) -> None:
        self.calls.append(("done", message.text))

    def on_tool_calls(self, tool_calls: Tuple[yc_runs.ToolCall, ...]) -> None:
        self.calls.append(("tools", [c.name for c in tool_calls]))

    def on_error(self, error: yc_runs.RunError) -> None:
        self.calls.append(("error", error.message))


class AsyncRecorder(Recorder):
    """The same callbacks as coroutines (on_event stays sync: both kinds are allowed)."""

    async def on_text_delta(self, delta: str, snapshot: str) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().on_text_delta(delta, snapshot)

    async def on_message_done(self, message: yc_runs.Message) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().on_message_done(message)

    async def on_tool_calls(self, tool_calls: Any) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().on_tool_calls(tool_calls)

    async def on_error(self, error: yc_runs.RunError) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().on_error(error)


def final_event(event: Optional[yc_runs.RunStreamEvent]) -> yc_runs.RunStreamEvent:
    """listen_with's final event, which a finished run always has."""
    if event is None:
        raise AssertionError("listen_with returned no final event")
    return event


HANDLER_CALLS = [
    ("event", 0), ("delta", "Hel", "Hel"),
    ("event", 1), ("delta", "lo, ", "Hello, "),
    ("event", 2), ("delta", "world", "Hello, world"), ("done", "Hello, world"),
]


COMMANDS = ("create", "get", "last", "list", "listen", "wait", "submit", "serve", "demo")


def command_line_env(**extra: str) -> Dict[str, str]:
    """The command line's environment (``run_main``, ``run_process``, ``start_process``): no YC_*
    variables but YC_RUNS_API=assistants, no proxies."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("YC_") and not k.lower().endswith("_proxy")}
    env.update(PYTHONPATH=HERE, YC_RUNS_API="assistants")
    env.update(extra)
    return env


def start_process(*args: str) -> "subprocess.Popen[bytes]":
    """``python -m yc_runs ARGS`` started in the background, Ctrl-C working in it."""
    ignored = signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:  # run as a background job: the child would inherit an ignored SIGINT
        signal.signal(signal.SIGINT, signal.default_int_handler)  # exec resets it to default
    try:
        return subprocess.Popen([sys.executable, "-m", "yc_runs", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=command_line_env(), cwd=HERE)
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessOutput:
    """A subprocess's pipe, read by a daemon thread as bytes arrive (and closed at its end);
    waits have deadlines."""

    def __init__(self, pipe: Any) -> None:
        self.data = b""
        self.closed = False
        self.changed = threading.Condition()
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe: Any) -> None:
        with pipe:
            while True:
                try:
                    chunk = os.read(pipe.fileno(), 65536)
                except OSError:
                    chunk = b""
                with self.changed:
                    self.data += chunk
                    self.closed = not chunk
                    self.changed.notify_all()
                if not chunk:
                    return

    def wait_for(self, done: Callable[[bytes], bool], timeout: float = 30) -> bytes:
        """The output so far, once ``done(output)`` is true; fails the test at the deadline."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not done(self.data):
                remaining = deadline - time.monotonic()
                if self.closed or remaining <= 0:
                    raise AssertionError("the output never got there: %r" % self.data[-500:])
                self.changed.wait(remaining)
            return self.data

    def lines(self, count: int, timeout: float = 30) -> List[bytes]:
        return self.wait_for(lambda data: data.count(b"\n") >= count, timeout).splitlines(True)[:count]

    def everything(self, timeout: float = 30) -> bytes:
        """All the output, up to the end of the pipe."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not self.closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("the pipe never closed: %r" % self.data[-500:])
                self.changed.wait(remaining)
            return self.data


def stop_process(proc: "subprocess.Popen[bytes]") -> None:
    """Kill the process if it still runs; its ProcessOutput readers close the pipes."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(30)


class MainResult:
    """A command line's exit code and output, named as subprocess.CompletedProcess names
    them, so one set of assertions checks a run in this process and a process alike."""

    def __init__(self, args: List[str], returncode: int, stdout: str, stderr: str) -> None:
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    def __iter__(self) -> Iterator[Any]:
        """(exit code, stdout, stderr): ``code, out, err = run_main(...)``."""
        return iter((self.returncode, self.stdout, self.stderr))

    def __repr__(self) -> str:
        return "MainResult(args=%r, returncode=%r, stdout=%r, stderr=%r)" % (
            self.args, self.returncode, self.stdout, self.stderr)


class FailingStdout(io.RawIOBase):
    """A stdout for ``run_main`` that takes ``ok`` writes, then raises ``error`` on each
    write (a closed pipe: BrokenPipeError; a full disk: OSError ENOSPC), or on the next write
    only when ``once`` (a Ctrl-C: KeyboardInterrupt). It has no file descriptor."""

    def __init__(self, error: BaseException, ok: int = 0, once: bool = False) -> None:
        super().__init__()
        self.error: Optional[BaseException] = error
        self.ok = ok
        self.once = once
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.ok <= 0 and self.error is not None:
            error = self.error
            if self.once:
                self.error = None
            raise error
        self.ok -= 1
        self.data += bytes(data)
        return len(data)

    def getvalue(self) -> bytes:
        return bytes(self.data)


def fd_identity(fd: int) -> Optional[Tuple[int, int]]:
    """(device, inode) of what file descriptor ``fd`` points at; None when it is closed."""
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def run_main(*argv: str, env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None,
             argv0: Optional[str] = None, stdout: Optional[Any] = None,
             stderr: Optional[Any] = None) -> MainResult:
    """``yc_runs.main(argv)`` in this process, as ``python -m yc_runs ARGV`` runs it: in
    ``command_line_env``'s environment (plus ``env``) and in ``cwd``, with sys.argv[0] the script's
    path (or ``argv0``), an empty stdin, and stdout and stderr captured by UTF-8 text streams
    over binary sinks (BytesIO, or the ``stdout``/``stderr`` given, a FailingStdout say) that are
    no terminal and have no file descriptor, so nothing the command line does can reach the
    test runner's own stdout. SystemExit becomes the exit code, and a stdout that fails to
    flush when main returns is exit 120, as the interpreter's exit makes it. The root
    logger's handlers are taken away for the call (a fresh process has none, so --debug's
    basicConfig adds its own) and put back, level too. One call at a time: it swaps the process's
    sys.stdout, sys.stderr, sys.argv and os.environ."""
    import logging

    out_sink = io.BytesIO() if stdout is None else stdout
    err_sink = io.BytesIO() if stderr is None else stderr
    out = io.TextIOWrapper(out_sink, encoding="utf-8")
    err = io.TextIOWrapper(err_sink, encoding="utf-8", errors="backslashreplace",
                           line_buffering=True)
    stdin = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    runner_stdout, here = fd_identity(1), os.getcwd()
    with mock.patch.dict(os.environ, command_line_env(**(env or {})), clear=True), \
            mock.patch.object(sys, "argv", [argv0 or yc_runs.__file__, *argv]), \
            mock.patch.multiple(sys, stdin=stdin, stdout=out, stderr=err):
        root.handlers[:] = []
        try:
            if cwd is not None:
                os.chdir(cwd)
            try:
                code = yc_runs.main(list(argv))
            except SystemExit as exc:
                if exc.code is None or isinstance(exc.code, int):
                    code = exc.code or 0
                else:
                    err.write("%s\n" % exc.code)
                    code = 1
            try:
                out.flush()
            except OSError as exc:
                err.write("Exception ignored flushing sys.stdout at exit: %r\n" % exc)
                code = 120
            err.flush()
        finally:
            os.chdir(here)
            added = [h for h in root.handlers if h not in handlers]
            root.handlers[:] = handlers
            root.setLevel(level)
            for handler in added:
                handler.close()
            for stream in (out, err, stdin):
                with contextlib.suppress(Exception):
                    stream.detach()  # the sinks stay open to be read
    if fd_identity(1) != runner_stdout:
        raise AssertionError("the command line pointed the test runner's stdout elsewhere")
    return MainResult(list(argv), code, out_sink.getvalue().decode("utf-8", "replace"),
                      err_sink.getvalue().decode("utf-8", "replace"))


def run_serve(*argv: str, work: Callable[[str, Callable[[int], List[str]]], None]) -> MainResult:
    """``serve ARGV`` run by ``run_main`` on this thread (the main one) and stopped by a
    real SIGINT, as Ctrl-C stops it. A worker waits for the URL serve prints, runs
    ``work(url, lines)`` (``lines(n)``: the first n lines of serve's request log, waited
    for) and then interrupts this thread; its failure is raised here. While serve runs, a
    SIGINT raises KeyboardInterrupt only inside it, never in the test runner after it."""
    out, err = io.BytesIO(), io.BytesIO()
    serving, failure = threading.Event(), []  # type: ignore[var-annotated]

    def lines(count: int) -> List[str]:
        deadline = time.monotonic() + 30
        while err.getvalue().count(b"\n") < count:
            if time.monotonic() > deadline or not serving.is_set():
                raise AssertionError("serve never logged %d lines: %r" % (count, err.getvalue()))
            time.sleep(0.002)
        return err.getvalue().decode().splitlines(True)[:count]

    def worker() -> None:
        try:
            deadline = time.monotonic() + 30
            while True:
                found = re.search(rb"http://127\.0\.0\.1:\d+", out.getvalue())
                if found is not None:
                    break
                if time.monotonic() > deadline or not serving.is_set():
                    raise AssertionError("serve printed no URL: %r" % out.getvalue())
                time.sleep(0.002)
            work(found.group().decode(), lines)
        except BaseException as exc:  # re-raised on the main thread
            failure.append(exc)
        finally:
            if serving.is_set():
                signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    def interrupt(signum: int, frame: Any) -> None:
        if serving.is_set():
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, interrupt)
    serving.set()
    thread = threading.Thread(target=worker, name="run_serve", daemon=True)
    thread.start()
    try:
        result = run_main("serve", *argv, stdout=out, stderr=err)
    finally:
        serving.clear()
        thread.join(30)
        signal.signal(signal.SIGINT, previous)
    if failure:
        raise failure[0]
    return result


def json_lines(test: unittest.TestCase, text: str) -> List[Dict[str, Any]]:
    """Each non-blank line of ``text`` parsed as one JSON object."""
    objects = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            test.fail("--json printed a line that is not JSON: %r" % line)
        test.assertIsInstance(obj, dict, line)
        objects.append(obj)
    return objects


def write_json_file(test: unittest.TestCase, obj: Any) -> str:
    handle, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(obj, out)
    test.addCleanup(os.unlink, path)
    return path


class CliCase(EmulatorTestCase):
    """The emulator and client of EmulatorTestCase, and ``cli()`` running the command line
    against them in this process (``process()``: as ``python -m yc_runs``, for what only a
    process shows)."""

    def cli(self, *args: str, api_key: str = "k", **options: Any) -> MainResult:
        return run_main(*args, "--base-url", self.emu.url, "--api-key", api_key,
                        "--folder-id", "folder-1", **options)

    def process(self, *args: str, **options: Any) -> "subprocess.CompletedProcess[str]":
        return run_process(*args, "--base-url", self.emu.url, "--api-key", "k",
                           "--folder-id", "folder-1", **options)

    def assertQuiet(self, result: MainResult, code: int) -> None:
        self.assertEqual(result.returncode, code, "stdout: %s\nstderr: %s"
                         % (result.stdout, result.stderr))
        self.assertNotIn("Traceback", result.stderr)

    def assertExit(self, result: "Union[MainResult, subprocess.CompletedProcess[str]]",
                   code: int) -> None:
        self.assertEqual(result.returncode, code,
                         "exit %d, wanted %d\nstdout: %s\nstderr: %s"
                         % (result.returncode, code, result.stdout, result.stderr))
        self.assertNotIn("Traceback", result.stderr)

    def assertErrorLine(self, result: "Union[MainResult, subprocess.CompletedProcess[str]]",
                        code: int) -> str:
        """Exit ``code`` with exactly one 'error: ...' line on stderr; returns that line."""
        self.assertExit(result, code)
        lines = result.stderr.splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertTrue(lines[0].startswith("error: "), lines[0])
        return lines[0]

    def finished(self, run: yc_runs.Run) -> yc_runs.RunResult:
        return run.wait(poll_interval=0.01, poll_timeout=30)

    def requests_to(self, method: str, path: str) -> List[yc_runs.RecordedRequest]:
        return [r for r in self.emu.requests if r.method == method and r.path == path]


def raw_get(emu: yc_runs.Emulator, path: str, headers: Optional[Dict[str, str]] = None,
                method: str = "GET", body: Optional[bytes] = None) -> Tuple[int, Dict[str, str], Any]:
    """(status, headers, JSON body) of one request made with http.client."""
    conn = http.client.HTTPConnection("127.0.0.1", urlsplit(emu.url).port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, \
            json.loads(response.read())
    finally:
        conn.close()


SOAK_RUNS = 500 if os.environ.get("YC_RUNS_SOAK") == "full" else 100


SOAK_TRICKLING_RUNS = 100 if os.environ.get("YC_RUNS_SOAK") == "full" else 12


SOAK_SEED = int(os.environ.get("YC_RUNS_SOAK_SEED") or 1560392229)  # fixed unless given


SOAK_LISTEN_TIMEOUT = 0.2


# the real schedule under YC_RUNS_SOAK=full; the suite's soak retries at once (its faults
# test what is delivered, the schedule is stepped on a fake clock in PlanTest/RetryTest)
SOAK_RETRY_DELAY = 0.5 if os.environ.get("YC_RUNS_SOAK") == "full" else 0.0


SOAK_BATCH = 25


SOAK_SCRIPTS: Dict[str, List[List[str]]] = {
    "soak-one": [["ok"]],
    "soak-three": [["one ", "two ", "three"]],
    "soak-five": [["alpha ", "beta ", "gamma ", "delta ", "epsilon"]],
    "soak-utf8": [["\u043f\u0440\u0438\u0432\u0435\u0442, ", "\u4e16\u754c ", "\U0001f30d ", "!"]],
}


class LogSink:
    """The emulator's request log, one line per request, kept in memory."""

    def __init__(self) -> None:
        self.lines: List[str] = []
        self.lock = threading.Condition()

    def write(self, text: str) -> None:
        with self.lock:
            self.lines.extend(line for line in text.splitlines() if line.strip())
            self.lock.notify_all()

    def wait_for(self, count: int, timeout: float = 10) -> None:
        """Until ``count`` lines are in (those of answered requests trail a little)."""
        with self.lock:
            self.lock.wait_for(lambda: len(self.lines) >= count, timeout)

    def flush(self) -> None:
        pass

    def statuses(self) -> Dict[str, int]:
        with self.lock:
            lines = list(self.lines)
        counts: Dict[str, int] = {}
        for line in lines:
            status = line.split()[2]
            counts[status] = counts.get(status, 0) + 1
        return counts


def assistant_of_run(i: int) -> str:
    return sorted(SOAK_SCRIPTS)[i % len(SOAK_SCRIPTS)]


def emulator_for_soak(seed: int, log: Any = None) -> yc_runs.Emulator:
    emu = yc_runs.Emulator(event_delay=0.001, seed=seed, log=log, implicit=True).start()
    for name, replies in SOAK_SCRIPTS.items():
        emu.script(name, replies=replies)
    return emu


def arm_faults(emu: yc_runs.Emulator) -> None:
    """The misbehaviour, each request drawing from the seeded generator."""
    fault = yc_runs.Fault
    emu.inject(fault.http_status(429, retry_after=0), probability=0.04, times=None)
    emu.inject(fault.http_status(503, retry_after=0), on="get", probability=0.05, times=None)
    emu.inject(fault.http_status(503, retry_after=0), on="listen", probability=0.05, times=None)
    for after in (57, 190, 333):  # inside the first, second and third lines
        emu.inject(fault.cut(after_bytes=after), on="listen", probability=0.025, times=None)
    emu.inject(fault.malformed_line(after_events=1), on="listen", probability=0.03, times=None)
    emu.inject(fault.stall(2 * SOAK_LISTEN_TIMEOUT, after_events=1), on="listen",
               probability=0.015, times=None)


def reference_events() -> Dict[str, List[Tuple[int, str, str]]]:
    """The events of each scripted assistant from a fault-free emulator."""
    expected = {}
    with emulator_for_soak(1) as emu, yc_runs.Client(base_url=emu.url, api_key="k") as client:
        for name in SOAK_SCRIPTS:
            run = client.runs.create(name, "reference", stream=True)
            expected[name] = [(e.stream_cursor.current_event_idx, e.status.name, e.text or "")
                              for e in run.listen()]
    return expected


def endpoint_of(request: yc_runs.RecordedRequest) -> str:
    if request.method == "POST":
        return "create"
    return "listen" if request.path.endswith("/listen") else "get"


FORBIDDEN_ERRORS = (KeyError, AttributeError, IndexError, UnicodeError, AssertionError,
                     RecursionError)


HOSTILE_IDS = ["a/b", "a?b=c", "a#frag", "..", "../x", "a/../../b", ".", "with space", "tab\tid",
               "\u65e5\u672c\u8a9e", "emoji-\U0001f600", "caf\u00e9", "%2F", "a%20b", "x:getByThread",
               "?runId=x", "a&b", "a+b", "line\r\nbreak", "nul\x00", "semi;colon", "back\\slash",
               "'quote\"", "<html>"]


FULL_RUN_JSON: Dict[str, Any] = {
    "id": "fvt-run", "assistantId": "fvt-asst", "threadId": "fvt-thread", "createdBy": "user",
    "createdAt": "2025-04-02T17:39:12.040224550Z", "labels": {"team": "ml"},
    "state": {
        "status": "COMPLETED",
        "error": {"code": 3, "message": "none"},
        "toolCallList": {"toolCalls": [{"functionCall": {"name": "f", "arguments": {"x": 1.0}}}]},
        "completedMessage": {
            "id": "m", "threadId": "t", "createdBy": "a", "createdAt": "2025-04-02T17:39:16Z",
            "author": {"id": "a", "role": "ASSISTANT"}, "labels": {"k": "v"},
            "content": {"content": [{"text": {"content": "hi"}}]}, "status": "COMPLETED",
            "citations": [{"sources": [{"chunk": {
                "searchIndex": {"id": "si", "name": "idx"},
                "sourceFile": {"id": "sf", "name": "f.txt", "mimeType": "text/plain"},
                "content": {"content": [{"text": {"content": "chunk"}}]}}}]}]}},
    "usage": {"promptTokens": "1", "completionTokens": "2", "totalTokens": "3"},
    "customCompletionOptions": {"maxTokens": "5", "temperature": 0.5},
    "customPromptTruncationOptions": {"maxPromptTokens": "9",
                                      "lastMessagesStrategy": {"numMessages": "2"}},
    "tools": [{"function": {"name": "f"}}],
    "customResponseFormat": {"jsonObject": True},
}


EVENT_JSON: Dict[str, Any] = {
    "eventType": "DONE", "streamCursor": {"currentEventIdx": "0", "numUserEventsReceived": "0"},
    "error": {"code": 3, "message": "m"},
    "partialMessage": {"content": [{"text": {"content": "hi"}}]},
    "completedMessage": {"id": "m", "author": {"id": "a", "role": "ASSISTANT"},
                         "content": {"content": [{"text": {"content": "hi"}}]}, "status": "COMPLETED"},
    "toolCallList": {"toolCalls": [{"functionCall": {"name": "f", "arguments": {"x": 1.0}}}]},
    "usage": {"promptTokens": "1", "completionTokens": "2", "totalTokens": "3"},
}


# free-form JSON the decoder passes through as it is: nothing inside is the client's to check
FREE_FORM_KEYS = ("arguments", "customResponseFormat", "tools")


WRONG_VALUES = (None, [], {}, 12345, "text", True, 1.5)


HOSTILE_EVENT_ERRORS = 140  # of 150 wrong values in a stream event that raise today: more than this must


def mutable_paths(obj: Any, path: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
    """The path of every value inside ``obj`` (keys and list indexes)."""
    found = []
    items = list(obj.items()) if isinstance(obj, dict) else list(enumerate(obj)) \
        if isinstance(obj, list) else []
    for key, value in items:
        found.append(path + (key,))
        if key not in FREE_FORM_KEYS:
            found.extend(mutable_paths(value, path + (key,)))
    return found


def dotted(root: str, path: Tuple[Any, ...]) -> str:
    return root + "".join("[%d]" % k if isinstance(k, int) else "." + k for k in path)


def listen_all(client: Any, run_id: str = "r", **options: Any) -> List[yc_runs.RunStreamEvent]:
    return list(yc_runs.Run(run_id, _runs=client.runs).listen(**options))


def run_json(run_id: str, status: str = "COMPLETED", **state: Any) -> Dict[str, Any]:
    return {"id": run_id, "assistantId": "a", "threadId": "t", "state": dict(state, status=status)}


def trickle(head: bytes, body: bytes, pause: float, release: threading.Event) -> Callable[..., Any]:
    """A handler that sends ``head`` and then ``body`` one byte per ``pause`` until released."""
    def handler(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(head)
        for byte in body:
            if release.wait(pause):
                break
            conn.sendall(bytes([byte]))
        return False

    return handler


def done_then(extra: bytes, pause: float, release: threading.Event) -> Callable[..., Any]:
    """A stream whose final event is followed by ``extra`` every ``pause`` s until released."""
    def handler(conn: socket.socket, request: bytes) -> bool:
        conn.sendall(stream_head() + one_chunk(listen_line("PARTIAL_MESSAGE", 0, "Hel") + b"\n")
                     + one_chunk(listen_line("DONE", 1, "Hello") + b"\n"))
        while not release.wait(pause):
            conn.sendall(one_chunk(extra))
        return False

    return handler


def open_fds(baseline: Optional[int] = None) -> int:
    """Open file descriptors; with ``baseline``, once the count is back to it or 3 s have
    passed (the test server's end of a connection closes in its own thread)."""
    deadline = time.monotonic() + 3
    while True:
        count = len(os.listdir("/proc/self/fd"))
        if baseline is None or count <= baseline or time.monotonic() > deadline:
            return count
        time.sleep(0.01)


def secret_leaks(exc: BaseException, secret: str) -> List[str]:
    """Where ``secret`` can be found from ``exc``: its text, its chain and the locals of the
    frames of every traceback in the chain, as traceback's capture_locals shows them."""
    import traceback

    found = []
    text = "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())
    if secret in text:
        found.append("a traceback printed with locals")
    seen: Set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for name, value in vars(current).items():
            if secret in repr(value) or (isinstance(value, (str, bytes)) and secret in str(value)):
                found.append("%s.%s" % (type(current).__name__, name))
        tb = current.__traceback__
        while tb is not None:
            for name, value in tb.tb_frame.f_locals.items():
                raw = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value
                if secret in repr(value) or (isinstance(raw, str) and secret in raw):
                    found.append("%s() local %s" % (tb.tb_frame.f_code.co_name, name))
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return found


class LaggingService:
    """A Runs API whose Get shows the old TOOL_CALLS state to the first ``stale`` Gets after
    a submit (a lag counted in answers, not in seconds: no test waits for it)."""

    def __init__(self, stale: int) -> None:
        self.stale = stale
        self.submitted = False
        self.stale_left = stale
        self.submits = 0
        self.lock = threading.Lock()

    def __call__(self, conn: socket.socket, request: bytes) -> None:
        target = request_target(request)
        with self.lock:
            if target.endswith("/submit"):
                self.submits += 1
                self.submitted, self.stale_left = True, self.stale
                conn.sendall(json_response(200, {}))
                return
            calls = {"toolCalls": [{"functionCall": {"name": "add", "arguments": {"a": 2.0, "b": 3.0}}}]}
            lagging = self.submitted and self.stale_left > 0
            self.stale_left -= lagging
            if not self.submitted or lagging:
                run = run_json("r", "TOOL_CALLS", toolCallList=calls)
            else:
                run = run_json("r", completedMessage={"content": {"content": [{"text": {"content": "5"}}]}})
        conn.sendall(json_response(200, run))


def echo_id(conn: socket.socket, request: bytes) -> None:
    """A Get answered with the run id it asked for (keep-alive)."""
    run_id = unquote(request_target(request).rsplit("/", 1)[1])
    conn.sendall(json_response(200, run_json(run_id)))


def capture_events(name: str) -> List[Tuple[int, bytes]]:
    """(sequence_number, the event's bytes) of a captured stream."""
    events = []
    for block in capture_bytes(name).split(b"\n\n"):
        if block.strip():
            data = next(line for line in block.split(b"\n") if line.startswith(b"data:"))
            events.append((json.loads(data[5:])["sequence_number"], block + b"\n\n"))
    return events


def capture_final(name: str) -> Dict[str, Any]:
    """The Response object of a capture's terminal event."""
    last = capture_events(name)[-1][1]
    data = next(line for line in last.split(b"\n") if line.startswith(b"data:"))
    return json.loads(data[5:])["response"]  # type: ignore[no-any-return]


class ResponsesService:
    """A Responses API: POST answers a queued background response (the captured function
    call first, the captured text answer for a follow-up); a streaming Get replays the
    capture after ``starting_after``, cut mid-event on the first ``cuts`` connections; a
    plain Get answers the final Response. ``refuse_streams`` answers streaming Gets 400."""

    def __init__(self, cuts: int = 0, refuse_streams: bool = False) -> None:
        self.func, self.plain = capture_final("func.sse"), capture_final("plain.sse")
        self.cuts = cuts
        self.refuse_streams = refuse_streams
        self.bodies: List[Dict[str, Any]] = []
        self.targets: List[str] = []
        self.lock = threading.Lock()

    def capture_of(self, response_id: str) -> str:
        return "func.sse" if response_id == self.func["id"] else "plain.sse"

    def __call__(self, conn: socket.socket, request: bytes) -> Any:
        line, _ = request_head(request)
        method, target = line.split(" ")[:2]
        with self.lock:
            self.targets.append(target)
        path, _, query = target.partition("?")
        if method == "POST" and path == "/v1/responses":
            body = request_body(request)
            with self.lock:
                self.bodies.append(body)
            followup = any(item.get("type") == "function_call_output"
                           for item in body.get("input", []) if isinstance(item, dict))
            answer = dict(self.plain if followup else self.func, status="queued", output=[])
            conn.sendall(json_response(200, answer))
            return None
        if method == "POST" and path.endswith("/cancel"):
            conn.sendall(json_response(200, dict(self.func, status="cancelled")))
            return None
        response_id = path.rsplit("/", 1)[1]
        name = self.capture_of(response_id)
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        if params.get("stream") != "true":
            conn.sendall(json_response(200, capture_final(name)))
            return None
        if self.refuse_streams:
            conn.sendall(json_response(400, {"code": 3, "message": "stream is not supported"}))
            return None
        after = int(params.get("starting_after", "0"))
        data = b"".join(raw for number, raw in capture_events(name) if number > after)
        with self.lock:
            cut = self.cuts > 0
            self.cuts -= cut
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        if cut:  # inside the second event on this connection
            first = data.index(b"\n\n") + 2
            conn.sendall(head + one_chunk(data[:first + 40]))
            return False
        conn.sendall(head + one_chunk(data) + b"0\r\n\r\n")
        return None


MODEL = "gpt://b1gxxxxxxxxxxxxxxxxx/yandexgpt/latest"


RESPONSES = "/v1/responses"


CONVERSATIONS = "/v1/conversations"


MINIMAL_RESPONSE = {"model": MODEL, "input": "hi"}


WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather now",
                  "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                 "required": ["city"]}}


def openai_refusal(body: Any) -> Tuple[str, str, Optional[str]]:
    """(code, message, param) from OpenAI's error shape or the bare one of Yandex's 404s."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        assert set(error) == {"message", "type", "code", "param"}, error
        return error["code"], error["message"], error["param"]
    assert isinstance(body, dict) and set(body) == {"code", "message", "param", "type"}, body
    return body["code"], body["message"], body["param"]


def input_message(content: Any, role: str = "user") -> Dict[str, Any]:
    return {"role": role, "content": content}


# (what, method, target, body, status, code, param); "{bg}" a finished background response,
# "{fg}" a finished foreground one, "{conv}" a conversation.
MALFORMED_RESPONSES_REQUESTS: List[Tuple[str, str, str, Any, int, str, Optional[str]]] = [
    ("body not JSON", "POST", RESPONSES, b"not json", 400, "invalid_value", None),
    ("body a list", "POST", RESPONSES, [1], 400, "invalid_type", None),
    ("no model and no prompt", "POST", RESPONSES, {"input": "hi"}, 400,
     "missing_required_parameter", "model"),
    ("model a number", "POST", RESPONSES, dict(MINIMAL_RESPONSE, model=5), 400, "invalid_type", "model"),
    ("model not a URI", "POST", RESPONSES, dict(MINIMAL_RESPONSE, model="yandexgpt"), 400, "invalid_value",
     "model"),
    ("an unknown agent", "POST", RESPONSES, {"prompt": {"id": "nobody"}}, 404, "not_found",
     "prompt.id"),
    ("prompt without an id", "POST", RESPONSES, {"prompt": {}}, 400, "missing_required_parameter",
     "prompt.id"),
    ("input a number", "POST", RESPONSES, dict(MINIMAL_RESPONSE, input=5), 400, "invalid_type", "input"),
    ("input item a number", "POST", RESPONSES, dict(MINIMAL_RESPONSE, input=[5]), 400, "invalid_type",
     "input[0]"),
    ("input item of no type", "POST", RESPONSES, dict(MINIMAL_RESPONSE, input=[{"type": "banana"}]), 400,
     "invalid_value", "input[0].type"),
    ("input role unknown", "POST", RESPONSES, dict(MINIMAL_RESPONSE, input=[input_message("x", "robot")]),
     400, "invalid_value", "input[0].role"),
    ("input role a number", "POST", RESPONSES, dict(MINIMAL_RESPONSE, input=[input_message("x", 0)]),
     400, "invalid_value", "input[0].role"),
    ("input content a number", "POST", RESPONSES, dict(MINIMAL_RESPONSE, input=[input_message(5)]), 400,
     "invalid_type", "input[0].content"),
    ("input part text a number", "POST", RESPONSES, dict(MINIMAL_RESPONSE, input=[input_message(
        [{"type": "input_text", "text": 5}])]), 400, "invalid_type", "input[0].content[0].text"),
    ("output without call_id", "POST", RESPONSES, dict(MINIMAL_RESPONSE, input=[
        {"type": "function_call_output", "output": "1"}]), 400, "missing_required_parameter",
     "input[0].call_id"),
    ("output for no pending call", "POST", RESPONSES, dict(MINIMAL_RESPONSE, previous_response_id="{fg}",
                                                        input=[{"type": "function_call_output",
                                                                "call_id": "f", "output": "1"}]),
     400, "invalid_value", "input[0].call_id"),
    ("tools an object", "POST", RESPONSES, dict(MINIMAL_RESPONSE, tools={}), 400, "invalid_type", "tools"),
    ("a tool in the Assistant API's shape", "POST", RESPONSES, dict(MINIMAL_RESPONSE, tools=[
        {"function": {"name": "f"}}]), 400, "invalid_value", "tools[0].type"),
    ("a function tool without a name", "POST", RESPONSES, dict(MINIMAL_RESPONSE, tools=[
        {"type": "function"}]), 400, "missing_required_parameter", "tools[0].name"),
    ("tool parameters a string", "POST", RESPONSES, dict(MINIMAL_RESPONSE, tools=[
        {"type": "function", "name": "f", "parameters": "{}"}]), 400, "invalid_type",
     "tools[0].parameters"),
    ("two tools of one name", "POST", RESPONSES, dict(MINIMAL_RESPONSE, tools=[WEATHER_TOOL] * 2), 400,
     "invalid_value", "tools"),
    ("temperature a word", "POST", RESPONSES, dict(MINIMAL_RESPONSE, temperature="hot"), 400,
     "invalid_type", "temperature"),
    ("temperature a number in a string", "POST", RESPONSES, dict(MINIMAL_RESPONSE, temperature="0.5"), 400,
     "invalid_type", "temperature"),
    ("temperature past 1", "POST", RESPONSES, dict(MINIMAL_RESPONSE, temperature=1.5), 400,
     "invalid_value", "temperature"),
    ("max_output_tokens a string", "POST", RESPONSES, dict(MINIMAL_RESPONSE, max_output_tokens="100"), 400,
     "invalid_type", "max_output_tokens"),
    ("max_output_tokens a fraction", "POST", RESPONSES, dict(MINIMAL_RESPONSE, max_output_tokens=1.5), 400,
     "invalid_type", "max_output_tokens"),
    ("max_output_tokens 0", "POST", RESPONSES, dict(MINIMAL_RESPONSE, max_output_tokens=0), 400,
     "invalid_value", "max_output_tokens"),
    ("stream a string", "POST", RESPONSES, dict(MINIMAL_RESPONSE, stream="false"), 400, "invalid_type",
     "stream"),
    ("background a number", "POST", RESPONSES, dict(MINIMAL_RESPONSE, background=1), 400, "invalid_type",
     "background"),
    ("background not stored", "POST", RESPONSES, dict(MINIMAL_RESPONSE, background=True, store=False), 400,
     "invalid_value", "store"),
    ("text format unknown", "POST", RESPONSES, dict(MINIMAL_RESPONSE, text={"format": {"type": "xml"}}),
     400, "invalid_value", "text.format.type"),
    ("json_schema without a schema", "POST", RESPONSES, dict(MINIMAL_RESPONSE, text={"format": {
        "type": "json_schema", "name": "x"}}), 400, "missing_required_parameter",
     "text.format.schema"),
    ("previous response and conversation", "POST", RESPONSES, dict(
        MINIMAL_RESPONSE, previous_response_id="{fg}", conversation="{conv}"), 400,
     "mutually_exclusive_parameters", "conversation"),
    ("an unknown previous response", "POST", RESPONSES, dict(MINIMAL_RESPONSE, previous_response_id="nope"),
     404, "not_found", "previous_response_id"),
    ("an unknown conversation", "POST", RESPONSES, dict(MINIMAL_RESPONSE, conversation="nope"), 404,
     "not_found", "conversation"),
    ("conversation a number", "POST", RESPONSES, dict(MINIMAL_RESPONSE, conversation=5), 400,
     "invalid_type", "conversation"),
    ("get no response", "GET", RESPONSES + "/nope", None, 404, "not_found", "id"),
    ("get stream=yes", "GET", RESPONSES + "/{bg}?stream=yes", None, 400, "invalid_value", "stream"),
    ("stream after -1", "GET", RESPONSES + "/{bg}?stream=true&starting_after=-1", None, 400,
     "invalid_value", "starting_after"),
    ("stream after a word", "GET", RESPONSES + "/{bg}?stream=true&starting_after=abc", None, 400,
     "invalid_value", "starting_after"),
    ("stream after the end", "GET", RESPONSES + "/{bg}?stream=true&starting_after=99", None, 400,
     "invalid_value", "starting_after"),
    ("stream a foreground response", "GET", RESPONSES + "/{fg}?stream=true", None, 400,
     "invalid_value", "stream"),
    ("stream no response", "GET", RESPONSES + "/nope?stream=true", None, 404, "not_found", "id"),
    ("cancel a foreground response", "POST", RESPONSES + "/{fg}/cancel", None, 400,
     "invalid_value", "background"),
    ("cancel no response", "POST", RESPONSES + "/nope/cancel", None, 404, "not_found", "id"),
    ("delete no response", "DELETE", RESPONSES + "/nope", None, 404, "not_found", "id"),
    ("input items limit 0", "GET", RESPONSES + "/{bg}/input_items?limit=0", None, 400,
     "invalid_value", "limit"),
    ("input items limit 101", "GET", RESPONSES + "/{bg}/input_items?limit=101", None, 400,
     "invalid_value", "limit"),
    ("input items order up", "GET", RESPONSES + "/{bg}/input_items?order=up", None, 400,
     "invalid_value", "order"),
    ("input items after no item", "GET", RESPONSES + "/{bg}/input_items?after=nope", None, 400,
     "invalid_value", "after"),
    ("conversation items a string", "POST", CONVERSATIONS, {"items": "hi"}, 400, "invalid_type",
     "items"),
    ("conversation metadata a number", "POST", CONVERSATIONS, {"metadata": {"k": 5}}, 400,
     "invalid_type", 'metadata["k"]'),
    ("conversation metadata of 17 keys", "POST", CONVERSATIONS, {"metadata": {
        "k%d" % i: "v" for i in range(17)}}, 400, "invalid_value", "metadata"),
    ("conversation of 21 items", "POST", CONVERSATIONS, {"items": [input_message("x")] * 21}, 400,
     "invalid_value", "items"),
    ("get no conversation", "GET", CONVERSATIONS + "/nope", None, 404, "not_found", "conversation_id"),
    ("add no items", "POST", CONVERSATIONS + "/{conv}/items", {}, 400, "missing_required_parameter",
     "items"),
    ("add an item of no role", "POST", CONVERSATIONS + "/{conv}/items", {"items": [{"content": "x"}]},
     400, "missing_required_parameter", "items[0].role"),
    ("add items to no conversation", "POST", CONVERSATIONS + "/nope/items", {"items": [input_message("x")]},
     404, "not_found", "conversation_id"),
    ("list items of no conversation", "GET", CONVERSATIONS + "/nope/items", None, 404, "not_found",
     "conversation_id"),
    ("list items limit a word", "GET", CONVERSATIONS + "/{conv}/items?limit=ten", None, 400,
     "invalid_value", "limit"),
    ("update a conversation", "POST", CONVERSATIONS + "/{conv}", {"metadata": {}}, 501,
     "not_implemented", None),
    ("delete a conversation", "DELETE", CONVERSATIONS + "/{conv}", None, 501, "not_implemented", None),
    ("get an item", "GET", CONVERSATIONS + "/{conv}/items/x", None, 501, "not_implemented", None),
    ("delete an item", "DELETE", CONVERSATIONS + "/{conv}/items/x", None, 501, "not_implemented", None),
    ("list responses", "GET", RESPONSES, None, 405, "method_not_allowed", None),
    ("list conversations", "GET", CONVERSATIONS, None, 405, "method_not_allowed", None),
    ("no such path", "GET", "/v1/nope", None, 404, "not_found", None),
    ("no Authorization", "GET", RESPONSES + "/{bg}", None, 401, "invalid_api_key", None),
]


class EmulatorResponsesTestCase(EnvTestCase):
    """A strict emulator (the default) with a finished background response, a finished
    foreground one and a conversation to aim at."""

    def setUp(self) -> None:
        super().setUp()
        self.emu = yc_runs.Emulator(event_delay=0.001, seed=12).start()
        self.addCleanup(self.emu.stop)

    def call(self, method: str, target: str, body: Any = None, **options: Any
             ) -> Tuple[int, Dict[str, str], Any, bytes]:
        return exchange(self.emu, raw_request(method, target, body, **options))

    def post(self, target: str, body: Any) -> Dict[str, Any]:
        status, _, answer, _ = self.call("POST", target, body)
        self.assertEqual(status, 200, answer)
        return answer  # type: ignore[no-any-return]

    def finished(self, response_id: str) -> Dict[str, Any]:
        for _ in range(500):
            answer = self.call("GET", RESPONSES + "/" + response_id)[2]
            if answer["status"] not in ("queued", "in_progress"):
                return answer  # type: ignore[no-any-return]
            time.sleep(0.005)
        self.fail("response %s does not finish" % response_id)


def typed_paths(value: Any, path: str = "") -> Iterator[Tuple[str, str]]:
    """(key path, JSON type) of every value in ``value``; list items are ``[]``."""
    yield path, type(value).__name__
    if isinstance(value, dict):
        for key, item in value.items():
            yield from typed_paths(item, path + "." + key)
    elif isinstance(value, list):
        for item in value:
            yield from typed_paths(item, path + "[]")


def shapes_of(raw: bytes) -> Tuple[List[str], List[int], Dict[str, Dict[str, Set[str]]]]:
    """A stream's event types, sequence numbers, and per event type its key paths' types."""
    kinds, numbers, shapes = [], [], {}  # type: Tuple[List[str], List[int], Dict[str, Dict[str, Set[str]]]]
    for block in raw.split(b"\n\n"):
        if not block:
            continue
        data, event = block.split(b"\n")
        event_json = json.loads(data[len(b"data:"):])
        assert event == b"event:" + event_json["type"].encode(), block
        kinds.append(event_json["type"])
        numbers.append(event_json["sequence_number"])
        shape = shapes.setdefault(event_json["type"], {})
        for key, kind in typed_paths(event_json):
            shape.setdefault(key, set()).add(kind)
    return kinds, numbers, shapes


def collapse(kinds: List[str]) -> List[str]:
    """Event types with runs of deltas as one."""
    return [k for i, k in enumerate(kinds) if not (k.endswith(".delta") and i and kinds[i - 1] == k)]


class ResponsesLifecycleScenarios:
    """A run on Responses through the client against the emulator: created, streamed, cut
    mid-event three times, tool-called, submitted, streamed again, finished."""

    assertEqual: Any
    assertTrue: Any
    emu: yc_runs.Emulator

    def arm(self) -> None:
        self.emu.script(MODEL, tool_calls=[{"name": "get_weather",
                                                   "arguments": {"city": "Казань"}}],
                        replies=[["Солнечно ", "и ", "+21 в Казани."]])
        for after in (1700, 3100):  # inside the second event, then inside a later one
            self.emu.inject(yc_runs.Fault.cut(after_bytes=after), on="listenResponse")

    def check(self, events: List[yc_runs.RunStreamEvent], run_id: str, status: Any,
              first_id: str) -> None:
        indices = [e.stream_cursor.current_event_idx for e in events]
        self.assertEqual(indices, sorted(set(indices)))  # each once, monotonic over the round
        names = [e.status.name for e in events]
        self.assertEqual(names, ["TOOL_CALLS"] + ["PARTIAL_MESSAGE"] * 3 + ["DONE"])
        self.assertEqual(events[0].tool_calls[0].arguments, {"city": "Казань"})
        self.assertEqual(events[-1].text, "Солнечно и +21 в Казани.")
        self.assertEqual("".join(e.delta for e in events), "Солнечно и +21 в Казани.")
        self.assertEqual(status, yc_runs.RunStatus.COMPLETED)
        self.assertTrue(run_id != first_id and run_id in self.emu.responses)
        listens = [r for r in self.emu.requests if r.query.get("stream") == "true"]
        self.assertEqual(len(listens), 5)  # two listens and three resumes
        self.assertTrue(any(r.query.get("starting_after") for r in listens))


RESPONSES_SOAK_SCRIPTS = {"agent-" + name: replies for name, replies in SOAK_SCRIPTS.items()}


def agent_of_run(i: int) -> str:
    return sorted(RESPONSES_SOAK_SCRIPTS)[i % len(RESPONSES_SOAK_SCRIPTS)]


def emulator_for_responses_soak(seed: int, log: Any = None) -> yc_runs.Emulator:
    emu = yc_runs.Emulator(event_delay=0.001, seed=seed, log=log).start()
    for name, replies in RESPONSES_SOAK_SCRIPTS.items():
        emu.script(name, replies=replies)
    return emu


def arm_responses_faults(emu: yc_runs.Emulator) -> None:
    fault = yc_runs.Fault
    emu.inject(fault.http_status(429, retry_after=0), probability=0.04, times=None)
    emu.inject(fault.http_status(503, retry_after=0), on="getResponse", probability=0.05,
               times=None)
    emu.inject(fault.http_status(503, retry_after=0), on="listenResponse", probability=0.05,
               times=None)
    for after in (57, 1500, 3000):  # inside the first, second and a later event
        emu.inject(fault.cut(after_bytes=after), on="listenResponse", probability=0.03, times=None)
    emu.inject(fault.malformed_line(after_events=1), on="listenResponse", probability=0.03,
               times=None)
    emu.inject(fault.stall(2 * SOAK_LISTEN_TIMEOUT, after_events=1), on="listenResponse",
               probability=0.015, times=None)


def conversations_service(conn: socket.socket, request: bytes) -> None:
    """A Conversations API: create, get, add items, list items (two pages)."""
    line, _ = request_head(request)
    method, target = line.split(" ")[:2]
    if method == "POST" and target == "/v1/conversations":
        body = request_body(request)
        conn.sendall(json_response(200, {"id": "conv-1", "object": "conversation",
                                         "metadata": body.get("metadata", {}), "created_at": 1790262606}))
    elif method == "GET" and target == "/v1/conversations/conv-1":
        conn.sendall(json_response(200, {"id": "conv-1", "object": "conversation",
                                         "metadata": {"name": "support"}, "created_at": 1790262606}))
    elif method == "POST" and target == "/v1/conversations/conv-1/items":
        text = request_body(request)["items"][0]["content"]
        conn.sendall(json_response(200, {"object": "list", "data": [
            {"type": "message", "id": "msg-9", "role": "user", "status": "completed",
             "content": [{"type": "input_text", "text": text}]}], "has_more": False}))
    elif target.startswith("/v1/conversations/conv-1/items"):
        second = "after=msg-2" in target
        item = {"type": "message", "id": "msg-3" if second else "msg-2", "role": "user",
                "content": [{"type": "input_text", "text": "three" if second else "two"}]}
        conn.sendall(json_response(200, {"object": "list", "data": [item], "has_more": not second,
                                         "first_id": item["id"], "last_id": item["id"]}))
    else:
        conn.sendall(error_response(404, {"code": 5, "message": "no such conversation"}))


def response_json(response_id: str, status: str = "completed", calls: int = 0, text: str = "",
                  usage: Any = None, **extra: Any) -> Dict[str, Any]:
    """A Response object: ``calls`` function calls of get_weather (call_id = the name, as on
    Yandex), or a message with ``text``."""
    output: List[Dict[str, Any]] = [
        {"type": "function_call", "id": "fc-%d" % i, "call_id": "get_weather", "name": "get_weather",
         "arguments": json.dumps({"city": "c%d" % i}), "status": "completed"} for i in range(calls)]
    if text:
        output.append({"type": "message", "id": "m-" + response_id, "role": "assistant",
                       "status": "completed", "content": [{"type": "output_text", "text": text,
                                                           "annotations": []}]})
    return dict({"id": response_id, "object": "response", "status": status, "output": output,
                 "model": "gpt://b1g/m/latest", "usage": usage, "created_at": 1.79e9}, **extra)


class ResponsesChain:
    """A Responses API whose Gets answer ``gets[id]`` (the last one repeated) and whose POSTs
    answer the next of ``posts``; streaming Gets answer ``stream`` (bytes) when given."""

    def __init__(self, gets: Dict[str, List[Dict[str, Any]]], posts: List[Dict[str, Any]],
                 stream: Optional[Callable[[socket.socket, str], Any]] = None) -> None:
        self.gets, self.posts, self.stream = gets, posts, stream
        self.bodies: List[Dict[str, Any]] = []
        self.targets: List[str] = []

    def __call__(self, conn: socket.socket, request: bytes) -> Any:
        method, target = request_head(request)[0].split(" ")[:2]
        self.targets.append(target)
        if method == "POST":
            self.bodies.append(request_body(request))
            conn.sendall(json_response(200, self.posts.pop(0)))
            return None
        if "stream=true" in target and self.stream is not None:
            return self.stream(conn, target)
        answers = self.gets[target.split("?")[0].rsplit("/", 1)[1]]
        conn.sendall(json_response(200, answers.pop(0) if len(answers) > 1 else answers[0]))
        return None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def options_on_a_fake_clock(**kwargs: Any) -> Tuple[Any, FakeClock]:
    """A client's options with a fake clock; nothing is ever connected."""
    kwargs.setdefault("api", "assistants")
    kwargs.setdefault("api_key", "k")
    client = yc_runs.Client(base_url="http://127.0.0.1:9", **kwargs)
    clock = FakeClock()
    client._config.clock = clock
    return client._config, clock


def answer_head(status: int = 200, **headers: str) -> Any:
    return yc_runs._Head(status, "", {k.replace("_", "-"): v for k, v in headers.items()})


def run_json_bytes(status: str, **state: Any) -> bytes:
    return json.dumps(run_json("r", status, **state)).encode()


def pytest_approx(value: float) -> Any:
    class Approx:
        def __eq__(self, other: Any) -> bool:
            return abs(other - value) < 1e-9

        def __repr__(self) -> str:
            return "~%r" % value

    return Approx()


# ============================================================================
# Decoding and encoding (sans-IO): the wires' JSON, requests, error bodies
# ============================================================================


class AssistantAPIDecodingTest(unittest.TestCase):
    def test_recorded_pending_run_decodes(self) -> None:
        run = decode_run(recorded_run("PENDING"))
        self.assertIsInstance(run, yc_runs.Run)
        self.assertEqual(run.id, "fvt1jopi4ku4t9va6svn")
        self.assertEqual(run.assistant_id, "fvtjsq7buqkesoklj31o")
        self.assertEqual(run.thread_id, "fvtrdjop7ce7uinc9vtp")
        self.assertEqual(run.created_by, "aje6euqn63oa635coh28")
        self.assertEqual(run.created_at, datetime(2025, 4, 2, 17, 36, 56, 264287, tzinfo=UTC))
        self.assertIs(run.status, yc_runs.RunStatus.PENDING)
        self.assertIs(run.result.status, yc_runs.RunStatus.PENDING)
        self.assertIsNone(run.usage)
        self.assertEqual(run.labels, {})
        self.assertEqual(run.result.tool_calls, ())
        self.assertIsNone(run.result.error)
        self.assertIsNone(run.result.text)
        self.assertTrue(run.result.is_running)

    def test_recorded_tool_calls_run_decodes(self) -> None:
        run = decode_run(recorded_run("TOOL_CALLS"))
        self.assertIs(run.status, yc_runs.RunStatus.TOOL_CALLS)
        (call,) = run.result.tool_calls
        self.assertEqual(call.name, "special_operation")
        self.assertEqual(call.function.name, "special_operation")
        self.assertEqual(call.arguments, {"numbers": [5.0, 4.0, 1.0]})
        self.assertTrue(all(isinstance(n, float) for n in call.arguments["numbers"]))
        self.assertEqual(run.usage, yc_runs.Usage(100, 14, 114))
        self.assertTrue(run.result.is_succeeded)
        self.assertIsNone(run.result.completed_message)

    def test_recorded_completed_run_decodes(self) -> None:
        sample = recorded_run("COMPLETED")
        expected_text = sample["state"]["completedMessage"]["content"]["content"][0]["text"]["content"]
        run = decode_run(sample)
        self.assertIs(run.status, yc_runs.RunStatus.COMPLETED)
        message = run.result.message
        assert message is not None
        self.assertEqual(message.id, "fvt2lu0haaop56o4rt3e")
        self.assertEqual(message.thread_id, "fvtje692d37062si1dqo")
        self.assertEqual(message.created_by, "aje6euqn63oa635coh28")
        self.assertEqual(message.created_at, datetime(2025, 4, 2, 17, 39, 16, 84751, tzinfo=UTC))
        self.assertEqual(message.author, yc_runs.Author("fvt1amecrr14suhq40tq", "ASSISTANT"))
        self.assertIs(message.status, yc_runs.MessageStatus.COMPLETED)
        self.assertEqual(message.parts, (expected_text,))
        self.assertEqual(run.result.text, expected_text)
        self.assertEqual(run.usage, yc_runs.Usage(234, 53, 287))
        self.assertTrue(run.result.is_succeeded and run.result.is_finished)

    def test_recorded_failed_run_decodes(self) -> None:
        run = decode_run(recorded_run("FAILED"))
        self.assertIs(run.status, yc_runs.RunStatus.FAILED)
        error = run.result.error
        assert error is not None
        self.assertIn("maximum prompt tokens limit of 1 tokens", error.message)
        self.assertIsNone(error.code)
        self.assertEqual(str(error), error.message)
        self.assertEqual(run.custom_temperature, 0.0)
        self.assertIsNotNone(run.custom_temperature)
        self.assertTrue(run.result.is_failed and run.result.is_finished)
        self.assertIsNone(run.result.text)
        self.assertEqual(run.result.parts, ())

    def test_recorded_listen_lines_decode_into_events(self) -> None:
        lines = [line.encode("utf-8") for line in recorded()["listen_lines"]]
        events = decode_lines(lines)
        S = yc_runs.StreamEvent
        self.assertEqual([e.status for e in events], [S.PARTIAL_MESSAGE, S.PARTIAL_MESSAGE, S.DONE])
        self.assertEqual([e.stream_cursor.current_event_idx for e in events], [0, 1, 2])
        self.assertEqual([e.delta for e in events], ["Hello", "! How can I help you?", ""])
        self.assertEqual([e.text for e in events], ["Hello", "Hello! How can I help you?",
                                                    "Hello! How can I help you?"])
        done = events[-1]
        assert done.completed_message is not None
        self.assertEqual(done.completed_message.id, "fvtohl14hdcl7se3i9m4")
        self.assertEqual(done.completed_message.created_at,
                         datetime(2025, 4, 7, 14, 42, 57, 152722, tzinfo=UTC))
        self.assertEqual(done.completed_message.author.role, "ASSISTANT")
        self.assertTrue(done.is_succeeded)
        self.assertTrue(events[0].is_running)
        self.assertEqual("".join(e.delta for e in events), done.text)

    def test_snake_case_run_fields_decode(self) -> None:
        run = decode_run({
            "id": "r1", "assistant_id": "a1", "thread_id": "t1", "created_by": "u1",
            "created_at": "2025-01-02T03:04:05Z", "labels": {"k": "v"},
            "state": {"status": "TOOL_CALLS", "tool_call_list": {"tool_calls": [
                {"function_call": {"name": "f", "arguments": {"x": 1.0}}}]}},
            "usage": {"prompt_tokens": "1", "completion_tokens": 2, "total_tokens": "3"},
            "custom_completion_options": {"max_tokens": "7", "temperature": 0.5},
            "custom_prompt_truncation_options": {"max_prompt_tokens": "100",
                                                 "last_messages_strategy": {"num_messages": "4"}},
        })
        self.assertEqual((run.id, run.assistant_id, run.thread_id, run.created_by),
                         ("r1", "a1", "t1", "u1"))
        self.assertEqual(run.created_at, datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC))
        self.assertEqual(run.labels, {"k": "v"})
        self.assertEqual(run.result.tool_calls[0].arguments, {"x": 1.0})
        self.assertEqual(run.usage, yc_runs.Usage(1, 2, 3))
        self.assertEqual((run.custom_max_tokens, run.custom_temperature), (7, 0.5))
        self.assertEqual(run.custom_prompt_truncation_options,
                         yc_runs.PromptTruncationOptions(100, {"last_messages": 4}))
        self.assertEqual(run.custom_max_prompt_tokens, 100)

    def test_snake_case_stream_event_decodes(self) -> None:
        event = decode_event({
            "event_type": "DONE",
            "stream_cursor": {"current_event_idx": "5", "num_user_events_received": "1"},
            "completed_message": {"thread_id": "t", "created_at": "2025-01-02T03:04:05.5Z",
                                  "content": {"content": [{"text": {"content": "hi"}}]}},
        })
        self.assertIs(event.status, yc_runs.StreamEvent.DONE)
        self.assertEqual(event.stream_cursor, yc_runs.StreamCursor(5, 1))
        assert event.completed_message is not None
        self.assertEqual(event.completed_message.thread_id, "t")
        self.assertEqual(event.completed_message.created_at.microsecond, 500000)  # type: ignore[union-attr]
        self.assertEqual(event.text, "hi")

    def test_enums_decode_by_name_or_number(self) -> None:
        for cls, path in ((yc_runs.RunStatus, ("state", "status")),
                          (yc_runs.StreamEvent, ("eventType",)),
                          (yc_runs.MessageStatus, ("state", "completedMessage", "status"))):
            for member in cls:
                if member.value < 0:
                    continue
                for value in (member.name, member.value, str(member.value)):
                    with self.subTest(cls=cls.__name__, value=value):
                        self.assertIs(decode_enum(cls, value, path), member)

    def test_unknown_enum_names_and_numbers_become_unknown(self) -> None:
        for cls, path in ((yc_runs.RunStatus, ("state", "status")),
                          (yc_runs.StreamEvent, ("eventType",)),
                          (yc_runs.MessageStatus, ("state", "completedMessage", "status"))):
            for value in ("PAUSED", "done", 99, "99", -7, "-7", "\u00b2", "--3", "3x"):
                with self.subTest(cls=cls.__name__, value=value):
                    member = decode_enum(cls, value, path)
                    self.assertIs(member, cls.UNKNOWN)
                    self.assertEqual(member.value, -1)
                    self.assertFalse(member.is_finished or member.is_running)

    def test_unknown_event_type_does_not_end_or_break_the_stream(self) -> None:
        events = decode_lines([listen_line("SOMETHING_NEW", 0),
                                    listen_line(17, 1), listen_line("DONE", 2, "ok")])
        self.assertEqual([e.status for e in events], [yc_runs.StreamEvent.UNKNOWN,
                                                      yc_runs.StreamEvent.UNKNOWN,
                                                      yc_runs.StreamEvent.DONE])

    def test_int64_as_string_or_number(self) -> None:
        for value in ("20", 20, 20.0, " 20 "):
            with self.subTest(value=value):
                run = decode_run({"id": "r", "usage": {"promptTokens": value,
                                                            "completionTokens": value,
                                                            "totalTokens": value},
                                       "customCompletionOptions": {"maxTokens": value}})
                self.assertEqual(run.usage, yc_runs.Usage(20, 20, 20))
                self.assertEqual(run.custom_max_tokens, 20)
                event = decode_event({"eventType": "DONE", "streamCursor": {
                    "currentEventIdx": value, "numUserEventsReceived": value}})
                self.assertEqual(event.stream_cursor, yc_runs.StreamCursor(20, 20))

    def test_missing_fields_take_default_values(self) -> None:
        run = decode_run({"id": "r"})
        self.assertEqual((run.assistant_id, run.thread_id, run.created_by), ("", "", ""))
        self.assertIsNone(run.created_at)
        self.assertEqual(run.labels, {})
        self.assertIs(run.status, yc_runs.RunStatus.RUN_STATUS_UNSPECIFIED)
        self.assertIsNone(run.usage)
        self.assertIsNone(run.custom_temperature)
        self.assertIsNone(run.custom_max_tokens)
        self.assertIsNone(run.custom_prompt_truncation_options)
        self.assertIsNone(run.custom_max_prompt_tokens)
        self.assertIsNone(run.custom_response_format)
        self.assertEqual(run.tools, ())
        self.assertEqual(run.result.tool_calls, ())
        self.assertIsNone(run.result.text)
        event = decode_event({})
        self.assertIs(event.status, yc_runs.StreamEvent.EVENT_TYPE_UNSPECIFIED)
        self.assertEqual(event.stream_cursor, yc_runs.StreamCursor(0, 0))
        self.assertEqual((event.delta, event.text, event.usage), ("", None, None))
        message = decode_run({"id": "r", "state": {"completedMessage": {}}}).result.completed_message
        self.assertEqual(message, yc_runs.Message())

    def test_json_null_is_a_missing_field(self) -> None:
        run = decode_run({"id": "r", "labels": None, "usage": None, "createdAt": None,
                               "state": {"status": None, "error": None, "toolCallList": None}})
        self.assertEqual(run.labels, {})
        self.assertIsNone(run.usage)
        self.assertIsNone(run.created_at)
        self.assertIs(run.status, yc_runs.RunStatus.RUN_STATUS_UNSPECIFIED)
        self.assertIsNone(run.result.error)

    def test_empty_stream_cursor_is_index_zero(self) -> None:
        for cursor in ({}, None):
            event = decode_event({"eventType": "PARTIAL_MESSAGE", "streamCursor": cursor})
            self.assertEqual(event.stream_cursor.current_event_idx, 0)
            self.assertEqual(event.stream_cursor.num_user_events_received, 0)

    def test_unknown_fields_are_ignored(self) -> None:
        sample = recorded_run("COMPLETED")
        sample["brandNewField"] = {"nested": [1, 2]}
        sample["state"]["futureState"] = "x"
        sample["state"]["completedMessage"]["reactions"] = [{"emoji": "+1"}]
        sample["usage"]["reasoningTokens"] = "9"
        run = decode_run(sample)
        self.assertEqual(run, decode_run(recorded_run("COMPLETED")))
        event = decode_event({"eventType": "DONE", "newThing": 1, "streamCursor": {"x": 1}})
        self.assertIs(event.status, yc_runs.StreamEvent.DONE)

    def test_timestamps_with_0_to_9_fractional_digits_keep_microseconds(self) -> None:
        digits = "123456789"
        for count in range(10):
            fraction = digits[:count]
            stamp = "2025-04-07T14:42:56%sZ" % ("." + fraction if fraction else "")
            with self.subTest(stamp=stamp):
                micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
                self.assertEqual(decode_run({"id": "r", "createdAt": stamp}).created_at,
                                 datetime(2025, 4, 7, 14, 42, 56, micro, tzinfo=UTC))
        real = decode_run({"id": "r", "createdAt": "2025-04-07T14:42:56.643453404Z"})
        self.assertEqual(real.created_at, datetime(2025, 4, 7, 14, 42, 56, 643453, tzinfo=UTC))

    def test_timestamp_offsets_are_converted_to_utc(self) -> None:
        cases = {
            "2025-04-07T17:42:56.5+03:00": datetime(2025, 4, 7, 14, 42, 56, 500000, tzinfo=UTC),
            "2025-04-07T09:12:56-05:30": datetime(2025, 4, 7, 14, 42, 56, tzinfo=UTC),
            "2025-04-07T17:42:56+0300": datetime(2025, 4, 7, 14, 42, 56, tzinfo=UTC),
            "2025-01-01T01:00:00.000001+03:00": datetime(2024, 12, 31, 22, 0, 0, 1, tzinfo=UTC),
            "2025-04-07t14:42:56z": datetime(2025, 4, 7, 14, 42, 56, tzinfo=UTC),
        }
        for stamp, expected in cases.items():
            with self.subTest(stamp=stamp):
                value = decode_run({"id": "r", "createdAt": stamp}).created_at
                self.assertEqual(value, expected)
                assert value is not None
                self.assertEqual(value.utcoffset(), timedelta(0))

    def test_bad_timestamps_raise_malformed_naming_the_field(self) -> None:
        for stamp in ("yesterday", 1712500000, "2025-02-30T00:00:00Z", "2025-04-07T14:42:56",
                      "2025-04-07T14:42:56.1234567890Z", ["2025"], {"seconds": "99999999999999"},
                      {"seconds": 10 ** 30}, {"seconds": 0, "nanos": 10 ** 30}):
            with self.subTest(stamp=stamp):
                with self.assertRaises(yc_runs.MalformedResponseError) as caught:
                    decode_run({"id": "r", "createdAt": stamp})
                self.assertIn("Run.createdAt", str(caught.exception))

    def test_timestamp_object_form_is_accepted(self) -> None:
        run = decode_run({"id": "r", "createdAt": {"seconds": "1743615416", "nanos": 264287721}})
        self.assertEqual(run.created_at, datetime(2025, 4, 2, 17, 36, 56, 264287, tzinfo=UTC))

    def test_function_call_arguments_keep_json_types(self) -> None:
        run = decode_run({"id": "r", "state": {"status": 5, "toolCallList": {"toolCalls": [
            {"functionCall": {"name": "f", "arguments": {"n": 5.0, "s": "x", "l": [1.5, {"k": True}]}}},
            {"functionCall": {"name": "g", "arguments": '{"n": 2.0}'}},
            {"functionCall": {"name": "h"}},
        ]}}})
        calls = run.result.tool_calls
        self.assertEqual([c.name for c in calls], ["f", "g", "h"])
        self.assertEqual(calls[0].arguments, {"n": 5.0, "s": "x", "l": [1.5, {"k": True}]})
        self.assertIsInstance(calls[0].arguments["n"], float)
        self.assertEqual(calls[1].arguments, {"n": 2.0})
        self.assertEqual(calls[2].arguments, {})

    def test_run_echoes_custom_options_back(self) -> None:
        run = decode_run({"id": "r", "customPromptTruncationOptions": {"autoStrategy": {}},
                               "customResponseFormat": {"jsonObject": True},
                               "tools": [{"function": {"name": "f"}}]})
        assert run.custom_prompt_truncation_options is not None
        self.assertEqual(run.custom_prompt_truncation_options.strategy, "auto")
        self.assertEqual(run.custom_response_format, {"jsonObject": True})
        self.assertEqual(run.tools, ({"function": {"name": "f"}},))


class StatusHelpersTest(unittest.TestCase):
    def check_helpers(self, status: Any, name: str) -> None:
        self.assertEqual(status.status_name, name)
        self.assertEqual(status.is_running, name == "running")
        self.assertEqual(status.is_succeeded, name == "success")
        self.assertEqual(status.is_failed, name == "failed")
        self.assertEqual(status.is_finished, name in ("success", "failed"))

    def test_run_status_helpers_match_the_official_sdk(self) -> None:
        R = yc_runs.RunStatus
        table = {R.PENDING: "running", R.IN_PROGRESS: "running", R.COMPLETED: "success",
                 R.TOOL_CALLS: "success", R.FAILED: "failed",
                 R.RUN_STATUS_UNSPECIFIED: "unknown", R.UNKNOWN: "unknown"}
        self.assertEqual(set(table), set(R))
        for status, name in table.items():
            with self.subTest(status=status.name):
                self.check_helpers(status, name)
                self.check_helpers(yc_runs.RunResult(status), name)

    def test_stream_event_helpers_match_the_official_sdk(self) -> None:
        S = yc_runs.StreamEvent
        table = {S.PARTIAL_MESSAGE: "running", S.DONE: "success", S.TOOL_CALLS: "success",
                 S.ERROR: "failed", S.EVENT_TYPE_UNSPECIFIED: "unknown", S.UNKNOWN: "unknown"}
        self.assertEqual(set(table), set(S))
        for status, name in table.items():
            with self.subTest(status=status.name):
                self.check_helpers(status, name)
                self.check_helpers(yc_runs.RunStreamEvent(status), name)

    def test_message_raises_value_error_when_the_run_failed(self) -> None:
        failed = yc_runs.RunResult(yc_runs.RunStatus.FAILED, error=yc_runs.RunError("quota gone", 8))
        with self.assertRaises(ValueError) as caught:
            failed.message  # noqa: B018
        self.assertIn("quota gone", str(caught.exception))
        self.assertIsNone(failed.text)
        self.assertEqual((failed.parts, failed.citations), ((), ()))
        event = yc_runs.RunStreamEvent(yc_runs.StreamEvent.ERROR, error=yc_runs.RunError("bad"))
        with self.assertRaises(ValueError):
            event.message  # noqa: B018

    def test_result_without_a_message_has_no_text_parts_or_citations(self) -> None:
        for status in (yc_runs.RunStatus.PENDING, yc_runs.RunStatus.TOOL_CALLS):
            result = yc_runs.RunResult(status)
            self.assertIsNone(result.message)
            self.assertIsNone(result.text)
            self.assertEqual(result.parts, ())
            self.assertEqual(result.citations, ())

    def test_text_joins_parts_with_a_newline(self) -> None:
        run = decode_run({"id": "r", "state": {"status": "COMPLETED", "completedMessage": {
            "content": {"content": [{"text": {"content": "first"}}, {"imageUrl": "ignored"},
                                    {"text": {"content": "second"}}]}}}})
        self.assertEqual(run.result.parts, ("first", "second"))
        self.assertEqual(run.result.text, "first\nsecond")
        event = decode_event({"eventType": "PARTIAL_MESSAGE", "partialMessage": {
            "content": [{"text": {"content": "a"}}, {"text": {"content": "b"}}]}})
        self.assertEqual(event.text, "a\nb")
        self.assertEqual(event.delta, "a\nb")

    def test_usage_fields_are_ints_and_input_text_tokens_aliases_prompt_tokens(self) -> None:
        usage = decode_run({"id": "r", "usage": {"promptTokens": "12", "completionTokens": 3,
                                                      "totalTokens": "15"}}).usage
        assert usage is not None
        self.assertEqual((usage.prompt_tokens, usage.completion_tokens, usage.total_tokens),
                         (12, 3, 15))
        self.assertTrue(all(type(v) is int for v in (usage.prompt_tokens, usage.completion_tokens,
                                                      usage.total_tokens)))
        self.assertEqual(usage.input_text_tokens, 12)
        partial = decode_run({"id": "r", "usage": {"totalTokens": "4"}}).usage
        self.assertEqual(partial, yc_runs.Usage(0, 0, 4))

    def test_citations_decode_into_sources(self) -> None:
        run = decode_run({"id": "r", "state": {"status": "COMPLETED", "completedMessage": {
            "content": {"content": [{"text": {"content": "answer"}}]},
            "citations": [{"sources": [
                {"chunk": {"searchIndex": {"id": "idx1", "name": "Docs", "type": "TEXT"},
                           "sourceFile": {"id": "file1", "name": "guide.pdf",
                                          "mimeType": "application/pdf", "labels": {}},
                           "content": {"content": [{"text": {"content": "chunk one"}},
                                                   {"text": {"content": "chunk two"}}]}}},
                {"chunk": {"source_file": {"id": "file2", "mime_type": "text/plain"}}},
            ]}, {}]}}})
        citations = run.result.citations
        self.assertEqual(len(citations), 2)
        self.assertEqual(citations[0].sources[0], yc_runs.Source(
            text="chunk one\nchunk two", file_id="file1", file_name="guide.pdf",
            mime_type="application/pdf", search_index_id="idx1", search_index_name="Docs"))
        self.assertEqual(citations[0].sources[1], yc_runs.Source(file_id="file2",
                                                                 mime_type="text/plain"))
        self.assertEqual(citations[1].sources, ())

    def test_stream_event_delta_resets_when_text_does_not_extend(self) -> None:
        events = decode_lines([listen_line("PARTIAL_MESSAGE", 0, "Hello"),
                                    listen_line("PARTIAL_MESSAGE", 1, "Goodbye"),
                                    listen_line("DONE", 2, "Goodbye!")])
        self.assertEqual([(e.delta, e.delta_reset) for e in events],
                         [("Hello", False), ("Goodbye", True), ("!", False)])


class ResponsesDecodeTest(unittest.TestCase):
    def test_statuses_map_to_run_statuses(self) -> None:
        cases = {"queued": yc_runs.RunStatus.PENDING, "in_progress": yc_runs.RunStatus.IN_PROGRESS,
                 "completed": yc_runs.RunStatus.COMPLETED, "failed": yc_runs.RunStatus.FAILED,
                 "cancelled": yc_runs.RunStatus.FAILED, "incomplete": yc_runs.RunStatus.COMPLETED,
                 "paused": yc_runs.RunStatus.UNKNOWN}
        for name, status in cases.items():
            with self.subTest(status=name):
                fields = yc_runs._decode_response(response_object(status=name))
                self.assertIs(fields.status, status)
                self.assertIs(fields.result.status, status)
        cancelled = yc_runs._decode_response(response_object(status="cancelled"))
        self.assertEqual(str(cancelled.result.error), "the response was cancelled")
        calls = yc_runs._decode_response(response_object(
            output=[call_item("f", '{"x": 1}')]))
        self.assertIs(calls.status, yc_runs.RunStatus.TOOL_CALLS)

    def test_a_response_becomes_a_run(self) -> None:
        obj = response_object(conversation={"id": "conv-1"}, temperature=0.3, max_output_tokens=50,
                               text={"format": {"type": "json_object"}},
                               output=[text_item("hi")],
                               tools=[{"type": "function", "name": "f", "parameters": {}}])
        run = yc_runs._decode_response_run(obj, yc_runs.Run, None)
        self.assertEqual((run.id, run.thread_id, run.assistant_id), ("resp-1", "conv-1",
                                                                     "gpt://b1g/yandexgpt/latest"))
        self.assertEqual((run.custom_temperature, run.custom_max_tokens), (0.3, 50))
        self.assertEqual(run.custom_response_format, {"type": "json_object"})
        self.assertEqual(run.tools[0]["name"], "f")
        self.assertEqual(run.result.text, "hi")
        assert run.result.completed_message is not None
        self.assertEqual(run.result.completed_message.thread_id, "conv-1")
        agent = yc_runs._decode_response(response_object(model=None, prompt={"id": "fvt-agent"}))
        self.assertEqual(agent.assistant_id, "fvt-agent")

    def test_created_at_in_seconds_or_milliseconds(self) -> None:
        expected = datetime(2025, 9, 22, 15, 49, 17, 206000, tzinfo=timezone.utc)
        for value in (1758556157.206, 1758556157206.0, 1.758556157206E9, "1758556157.206"):
            with self.subTest(value=value):
                self.assertEqual(yc_runs._decode_response(
                    response_object(created_at=value)).created_at, expected)
        with self.assertRaisesRegex(yc_runs.MalformedResponseError, r"Response\.created_at"):
            yc_runs._decode_response(response_object(created_at=[1]))
        # the time of the response decoded last is kept: each time still its own
        times = [1758556157.206, 1758556157.206, 1758556158, 1758556158.0, 1758556157206.0,
                 1758556157.206, 17585561572060.0]
        got = [yc_runs._decode_response(response_object(created_at=t)).created_at
               for t in times]
        self.assertEqual(got, [expected, expected, expected.replace(second=18, microsecond=0),
                               expected.replace(second=18, microsecond=0), expected, expected,
                               datetime.fromtimestamp(17585561572.06, timezone.utc)])

    def test_citations_refusals_and_usage(self) -> None:
        notes = [{"type": "url_citation", "url": "https://ya.ru", "title": "Яндекс",
                  "start_index": 0, "end_index": 0},
                 {"type": "file_citation", "file_id": "file-1", "filename": "a.pdf", "index": 3},
                 {"type": "container_file_citation"}]
        obj = response_object(output=[
            {"type": "web_search_call", "id": "ws", "status": "completed"},
            text_item("answer", annotations=notes)],
            usage={"input_tokens": 5, "input_tokens_details": {"tool_tokens": 1},
                   "output_tokens": 6, "total_tokens": 12})
        result = yc_runs._decode_response(obj).result
        self.assertEqual(result.citations, (
            yc_runs.Citation((yc_runs.Source(url="https://ya.ru", title="Яндекс"),)),
            yc_runs.Citation((yc_runs.Source(file_id="file-1", file_name="a.pdf"),))))
        self.assertEqual(result.usage, yc_runs.Usage(5, 6, 12))
        refusal = {"type": "message", "id": "m", "role": "assistant",
                   "content": [{"type": "refusal", "refusal": "I can't help with that."}]}
        refused = yc_runs._decode_response(response_object(output=[refusal])).result
        self.assertEqual(refused.text, "I can't help with that.")
        assert refused.completed_message is not None
        self.assertIs(refused.completed_message.status, yc_runs.MessageStatus.FILTERED_CONTENT)

    def test_malformed_fields_are_named_by_their_path(self) -> None:
        cases = ((response_object(id=None), "Response: the response has no id"),
                 (response_object(output=[call_item("f", "{not json")]),
                  r"Response\.output\[0\]\.arguments"),
                 (response_object(output=[call_item("f", "[1]")]),
                  r"Response\.output\[0\]\.arguments"),
                 (response_object(usage={"input_tokens": "many"}), r"Response\.usage\.input_tokens"),
                 (response_object(output=[{"type": "message", "content": [{"type": "output_text",
                                                                            "text": 5.5j}]}]),
                  r"Response\.output\[0\]\.content\[0\]\.text"),
                 (response_object(conversation=[]), r"Response\.conversation"),
                 ([], "Response: expected an object"))
        for obj, pattern in cases:
            with self.subTest(pattern=pattern), \
                    self.assertRaisesRegex(yc_runs.MalformedResponseError, pattern):
                yc_runs._decode_response(obj)

    def test_an_incomplete_response_drops_a_call_cut_short(self) -> None:
        fields = yc_runs._decode_response(response_object(
            status="incomplete", incomplete_details={"reason": "max_output_tokens"},
            output=[call_item("f", '{"city": "Каз')]))
        self.assertIs(fields.status, yc_runs.RunStatus.COMPLETED)
        self.assertEqual(fields.result.tool_calls, ())

    def test_conversations_and_item_lists_decode(self) -> None:
        conversation = yc_runs._decode_conversation(
            {"id": "conv-1", "object": "conversation", "metadata": {"name": "t"},
             "created_at": 1790262606})
        self.assertEqual((conversation.id, conversation.metadata), ("conv-1", {"name": "t"}))
        self.assertEqual(conversation.created_at,
                         datetime(2026, 9, 24, 15, 10, 6, tzinfo=timezone.utc))
        page = yc_runs._decode_items({
            "object": "list", "has_more": True, "first_id": "i1", "last_id": "i3",
            "data": [{"type": "message", "id": "i1", "role": "user",
                      "content": [{"type": "input_text", "text": "Погода?"}]},
                     {"type": "function_call", "id": "i2", "name": "f", "arguments": "{}"},
                     {"type": "message", "id": "i3", "role": "assistant", "status": "completed",
                      "content": [{"type": "output_text", "text": "Солнце", "annotations": []}]}]},
            "conv-1")
        self.assertEqual([(m.id, m.author.role, m.text, m.thread_id) for m in page.messages],
                         [("i1", "USER", "Погода?", "conv-1"), ("i3", "ASSISTANT", "Солнце", "conv-1")])
        self.assertEqual((page.has_more, page.last_id), (True, "i3"))
        with self.assertRaisesRegex(yc_runs.MalformedResponseError, r"Conversation: .*no id"):
            yc_runs._decode_conversation({"object": "conversation"})
        with self.assertRaisesRegex(yc_runs.MalformedResponseError, r"ConversationItemList\.data"):
            yc_runs._decode_items({"data": {}})


class ResponsesRequestTest(unittest.TestCase):
    @staticmethod
    def body(request: "yc_runs._Request") -> Any:
        assert request.body is not None
        return json.loads(request.body)

    def test_the_assistant_is_a_model_uri_a_short_model_name_or_a_saved_agent(self) -> None:
        create = yc_runs._encode_response_create
        self.assertEqual(create("gpt://b1g/yandexgpt/latest"), {"model": "gpt://b1g/yandexgpt/latest"})
        self.assertEqual(create("yandexgpt/latest", folder_id="b1gfolder"),
                         {"model": "gpt://b1gfolder/yandexgpt/latest"})
        self.assertEqual(create("fvt0agent0000000000a"), {"prompt": {"id": "fvt0agent0000000000a"}})
        self.assertEqual(create({"id": "fvt-agent-1", "version": "2"}),
                         {"prompt": {"id": "fvt-agent-1", "version": "2"}})
        with self.assertRaisesRegex(ValueError, "folder"):
            create("yandexgpt/latest")

    def test_create_maps_every_run_argument_the_api_has(self) -> None:
        def get_weather(city: str) -> str:
            """Узнать погоду."""
            return city

        body = yc_runs._encode_response_create(
            "yandexgpt/latest", "conv-1", folder_id="b1g", stream=True,
            additional_messages=["Привет", {"role": "system", "content": "Будь краток"},
                                 {"content": {"content": [{"text": {"content": "MessageData"}}]},
                                  "author": {"role": "ASSISTANT"}},
                                 yc_runs.Message(parts=("старое",), author=yc_runs.Author(role="USER"))],
            instructions="Ты — Джарвис.", custom_temperature=0.2, custom_max_tokens=300,
            custom_response_format={"json_schema": {"type": "object", "properties": {}}},
            tools=[get_weather, {"function": {"name": "f", "parameters": {"type": "object"}}},
                   {"name": "g"}, {"type": "web_search"}],
            background=True, store=False, previous_response_id=None, extra_body={"top_p": 0.5})
        self.assertEqual(body["model"], "gpt://b1g/yandexgpt/latest")
        self.assertEqual(body["conversation"], "conv-1")
        self.assertEqual(body["input"], [
            {"role": "user", "content": "Привет"}, {"role": "system", "content": "Будь краток"},
            {"role": "assistant", "content": "MessageData"}, {"role": "user", "content": "старое"}])
        self.assertEqual((body["instructions"], body["temperature"], body["max_output_tokens"]),
                         ("Ты — Джарвис.", 0.2, 300))
        self.assertEqual(body["text"], {"format": {"type": "json_schema", "name": "response",
                                                   "schema": {"type": "object", "properties": {}}}})
        self.assertEqual(body["tools"][0], {
            "type": "function", "name": "get_weather", "description": "Узнать погоду.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}})
        self.assertEqual(body["tools"][1:], [
            {"type": "function", "name": "f", "parameters": {"type": "object"}},
            {"type": "function", "name": "g", "parameters": {"type": "object", "properties": {}}},
            {"type": "web_search"}])
        self.assertEqual((body["stream"], body["background"], body["store"], body["top_p"]),
                         (True, True, False, 0.5))
        self.assertNotIn("previous_response_id", body)
        request = yc_runs._response_create_request(body)
        self.assertEqual((request.method, request.target, request.idempotent),
                         ("POST", "/v1/responses", False))
        self.assertEqual(self.body(request), body)
        self.assertEqual(yc_runs._encode_response_create("m/x", folder_id="f", custom_response_format="json",
                                                         previous_response_id="resp-0"),
                         {"model": "gpt://f/m/x", "text": {"format": {"type": "json_object"}},
                          "previous_response_id": "resp-0"})

    def test_arguments_the_api_lacks_are_refused_by_name(self) -> None:
        cases = ({"labels": {"a": "b"}}, {"custom_max_prompt_tokens": 100},
                 {"custom_prompt_truncation_strategy": "auto"})
        for kwargs in cases:
            (name,) = kwargs
            with self.subTest(argument=name), \
                    self.assertRaisesRegex(yc_runs.UnsupportedOperationError, name):
                yc_runs._encode_response_create("gpt://f/m", **kwargs)  # type: ignore[arg-type]
        with self.assertRaisesRegex(yc_runs.UnsupportedOperationError, "searchIndex"):
            yc_runs._encode_response_create("gpt://f/m", tools=[{"searchIndex": {}}])
        self.assertNotIn("labels", yc_runs._encode_response_create("gpt://f/m", labels={}))

    def test_get_stream_and_cancel_requests(self) -> None:
        get = yc_runs._response_get_request("ff63/5965")
        self.assertEqual((get.method, get.target, get.body, get.idempotent),
                         ("GET", "/v1/responses/ff63%2F5965", None, True))
        self.assertEqual(yc_runs._response_get_request("r", stream=True).target,
                         "/v1/responses/r?stream=true")
        self.assertEqual(yc_runs._response_get_request("r", stream=True, starting_after=9).target,
                         "/v1/responses/r?stream=true&starting_after=9")
        cancel = yc_runs._response_cancel_request("r")
        self.assertEqual((cancel.method, cancel.target), ("POST", "/v1/responses/r/cancel"))
        with self.assertRaises(ValueError):
            yc_runs._response_get_request("..")

    def test_follow_up_outputs_match_pending_calls_by_name_or_call_id(self) -> None:
        weather = yc_runs.ToolCall(yc_runs.FunctionCall("get_weather", {"city": "Казань"}),
                                   call_id="get_weather")
        time_a = yc_runs.ToolCall(yc_runs.FunctionCall("get_time", {}), call_id="call-a")
        time_b = yc_runs.ToolCall(yc_runs.FunctionCall("get_time", {}), call_id="call-b")
        create = yc_runs._encode_response_create("gpt://f/m", additional_messages="Погода?",
                                                 tools=[{"name": "get_weather"}], stream=True)
        body = yc_runs._encode_response_followup(
            create, "resp-1", [{"name": "get_weather", "content": {"t": 21}},
                               {"call_id": "call-b", "content": "12:00"}], [weather, time_a, time_b])
        self.assertEqual(body["input"], [
            {"type": "function_call_output", "call_id": "get_weather", "output": '{"t": 21}'},
            {"type": "function_call_output", "call_id": "call-b", "output": "12:00"}])
        self.assertEqual((body["previous_response_id"], body["tools"], body["stream"]),
                         ("resp-1", create["tools"], True))
        in_conversation = yc_runs._encode_response_followup(
            dict(create, conversation="conv-1"), "resp-1", {"name": "get_weather", "content": "x"},
            [weather])
        self.assertNotIn("previous_response_id", in_conversation)
        with self.assertRaisesRegex(ValueError, "2 pending calls are named 'get_time'"):
            yc_runs._encode_tool_outputs([{"name": "get_time", "content": "x"}], [time_a, time_b])
        with self.assertRaisesRegex(ValueError, "no pending call named 'nope'"):
            yc_runs._encode_tool_outputs({"name": "nope", "content": "x"}, [weather])
        with self.assertRaisesRegex(ValueError, "no pending call has call_id 'call-z'"):
            yc_runs._encode_tool_outputs({"call_id": "call-z", "content": "x"}, [time_a])
        with self.assertRaisesRegex(ValueError, "call_id 'call-a' is a call of 'get_time'"):
            yc_runs._encode_tool_outputs({"call_id": "call-a", "name": "get_weather",
                                          "content": "x"}, [time_a, weather])
        shared = [yc_runs.ToolCall(yc_runs.FunctionCall("f", {"n": n}), call_id="f") for n in (1, 2)]
        outputs = yc_runs._encode_tool_outputs([{"call_id": "f", "content": "1"},
                                                {"call_id": "f", "content": "2"}], shared)
        self.assertEqual([o["output"] for o in outputs], ["1", "2"])

    def test_conversation_requests(self) -> None:
        create = yc_runs._conversation_create_request(["Привет"], {"name": "support"})
        self.assertEqual((create.method, create.target), ("POST", "/v1/conversations"))
        self.assertEqual(self.body(create), {"items": [{"role": "user", "content": "Привет"}],
                                             "metadata": {"name": "support"}})
        self.assertEqual(self.body(yc_runs._conversation_create_request()), {})
        get = yc_runs._conversation_get_request("conv-1")
        self.assertEqual((get.method, get.target), ("GET", "/v1/conversations/conv-1"))
        add = yc_runs._conversation_add_items_request("conv-1", "Ещё")
        self.assertEqual((add.method, add.target, self.body(add)),
                         ("POST", "/v1/conversations/conv-1/items",
                          {"items": [{"role": "user", "content": "Ещё"}]}))
        items = yc_runs._conversation_items_request("conv-1", after="item 9", limit=50, order="asc")
        self.assertEqual((items.method, items.target),
                         ("GET", "/v1/conversations/conv-1/items?limit=50&order=asc&after=item%209"))
        self.assertEqual(yc_runs._conversation_items_request("c").target, "/v1/conversations/c/items")
        with self.assertRaises(ValueError):
            yc_runs._conversation_items_request("c", limit=101)


class ResponsesErrorBodyTest(unittest.TestCase):
    SECRET = "AQVNsecretsecret42"

    def decode(self, status: Optional[int], body: Dict[str, Any]) -> yc_runs.APIError:
        return yc_runs._error_from_body(status, json.dumps(body).encode(),
                                        {"x-request-id": "req-7"}, [self.SECRET], "client-7")

    def test_each_error_shape_becomes_its_error_class_with_message_and_request_id(self) -> None:
        leak = "Unknown api key %s" % self.SECRET
        cases = (
            (404, {"code": "not_found", "message": "Response r not found", "param": None,
                   "type": "invalid_request_error"}, yc_runs.NotFoundError, "Response r not found"),
            (401, {"error": {"message": leak, "type": "invalid_request_error",
                             "code": "invalid_api_key", "param": None}},
             yc_runs.AuthenticationError, "Unknown api key ***"),
            (429, {"error": {"grpcCode": 8, "httpCode": 429, "message": "quota exceeded",
                             "httpStatus": "Too Many Requests", "details": []}},
             yc_runs.RateLimitError, "quota exceeded"),
            (400, {"type": "about:blank", "title": "Bad Request", "status": 400,
                   "detail": "Failed to parse model URI"}, yc_runs.BadRequestError,
             "Failed to parse model URI"),
            (None, {"type": "about:blank", "title": "Unauthorized", "status": 401,
                    "detail": "Api-Key %s is wrong" % self.SECRET}, yc_runs.AuthenticationError,
             "Api-Key *** is wrong"),
        )
        for status, body, cls, message in cases:
            with self.subTest(body=body):
                exc = self.decode(status, body)
                self.assertIs(type(exc), cls)
                self.assertEqual(exc.message, message)
                self.assertEqual((exc.request_id, exc.client_request_id), ("req-7", "client-7"))
                self.assertNotIn(self.SECRET, str(exc))
                self.assertIn("req-7", str(exc))


class StreamObjectsTest(unittest.TestCase):
    """The listen fast paths and the run decoders fill frozen dataclasses through __dict__:
    every field of every class they make must be there, as the constructor would make it."""

    def assert_whole(self, obj: Any, seen: Set[int]) -> None:
        if id(obj) in seen or not dataclasses.is_dataclass(obj):
            return
        seen.add(id(obj))
        names = {f.name for f in dataclasses.fields(obj)}
        self.assertEqual(set(vars(obj)), names, type(obj).__name__)
        self.assertEqual(dataclasses.replace(obj), obj, type(obj).__name__)
        for name in names:
            value = getattr(obj, name)
            for item in value if isinstance(value, tuple) else (value,):
                self.assert_whole(item, seen)

    def test_every_field_of_every_stream_object_is_filled(self) -> None:
        lines = [listen_line("PARTIAL_MESSAGE", 0, "Hel"),
                 listen_line("PARTIAL_MESSAGE", 1, "Hello", wrap=False),
                 json.dumps({"result": {"event_type": "PARTIAL_MESSAGE", "stream_cursor": {
                     "current_event_idx": "2"}, "partial_message": {"content": [
                         {"text": {"content": "Hello!"}}]}}}).encode(),
                 listen_line("DONE", 3, "Hello!", usage={"promptTokens": "1",
                                                             "completionTokens": "2",
                                                             "totalTokens": "3"})]
        events = decode_lines(lines)
        events += decode_lines([listen_line("TOOL_CALLS", 0, toolCallList={"toolCalls": [
            {"functionCall": {"name": "f", "arguments": {"x": 1.0}}}]})])
        events += decode_lines([listen_line("ERROR", 0, error={"code": 3, "message": "m"})])
        for name in ("plain.sse", "func.sse"):
            state = yc_runs._ResponsesStreamState()
            events += state.feed(capture_bytes(name))
        self.assertGreater(len(events), 8)
        seen: Set[int] = set()
        for event in events:
            self.assert_whole(event, seen)

    def test_data_classes_repr_compare_and_hash_as_generated_ones(self) -> None:
        # _Data writes repr, == and hash once; a twin of each class with @dataclass's own
        # methods (same fields, repr and compare flags) must give the same for the same values
        # (3.13's generated == compares field by field, earlier ones as tuples: the same but
        # for a NaN, which equals itself in a tuple)
        classes = [yc_runs.Author, yc_runs.Source, yc_runs.Citation, yc_runs.Message,
                   yc_runs.FunctionCall, yc_runs.ToolCall, yc_runs.Usage, yc_runs.RunError,
                   yc_runs.StreamCursor, yc_runs.PromptTruncationOptions, yc_runs.RunResult,
                   yc_runs.RunStreamEvent, yc_runs.Run, yc_runs.AsyncRun, yc_runs.Thread,
                   yc_runs.AsyncThread, yc_runs.RecordedRequest, yc_runs.Fault]
        samples: Dict[str, List[Any]] = {  # no NaN: its == in dataclasses differs by version
            "str": ["", "a", "b\n'"], "int": [0, 7], "float": [0.5, -0.0],
            "tuple": [(), ("x",)], "none": [None]}
        rng = random.Random(1518)
        for cls in classes:
            fields = dataclasses.fields(cls)
            twin = dataclasses.make_dataclass(cls.__qualname__, [
                (f.name, Any, dataclasses.field(repr=f.repr, compare=f.compare, hash=f.hash))
                for f in fields], frozen=True)
            for _ in range(20):
                values = {f.name: rng.choice(rng.choice(list(samples.values())))
                          for f in fields}
                other = dict(values, **{fields[0].name: "other"})
                mine, theirs = cls(**values), twin(**values)
                with self.subTest(cls=cls.__name__, values=values):
                    self.assertEqual(repr(mine), repr(theirs))
                    self.assertEqual(mine == cls(**values), theirs == twin(**values))
                    self.assertEqual(mine == cls(**other), theirs == twin(**other))
                    self.assertIs(mine.__eq__(theirs), NotImplemented)
                    self.assertEqual(hash(mine), hash(theirs))
                    self.assertEqual(dataclasses.replace(mine), mine)
            hidden = [f.name for f in fields if not f.compare]
            if hidden:  # a field left out of == (a run's client) changes nothing
                base = {f.name: None for f in fields}
                self.assertEqual(cls(**base), cls(**dict(base, **{hidden[0]: object()})))

    def test_every_field_of_every_fetched_run_is_filled(self) -> None:
        responses = []
        for name in ("plain.sse", "func.sse"):
            for block in capture_bytes(name).split(b"\n\n"):
                data = [line[5:] for line in block.split(b"\n") if line.startswith(b"data:")]
                if data and b'"response.completed"' in data[0]:
                    responses.append(json.loads(data[0])["response"])
        self.assertEqual(len(responses), 2)
        seen: Set[int] = set()
        for cls in (yc_runs.Run, yc_runs.AsyncRun):
            runs = [yc_runs._ResponsesWire().run(copy.deepcopy(obj), cls, None)
                    for obj in responses]
            runs += [yc_runs._decode_run(recorded_run(status), cls, None)
                     for status in ("PENDING", "TOOL_CALLS", "COMPLETED", "FAILED")]
            self.assertEqual({run.status for run in runs} >= {yc_runs.RunStatus.COMPLETED,
                                                              yc_runs.RunStatus.TOOL_CALLS}, True)
            for run in runs:
                self.assert_whole(run, seen)


# ============================================================================
# HTTP/1.1 codec (sans-IO and on raw sockets)
# ============================================================================


class ResponseParserTest(unittest.TestCase):
    def test_content_length_body_fed_byte_by_byte(self) -> None:
        data = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
        head, body, end = parse_response(data + b"HTTP/1.1 200 OK\r\n", eof=False)
        assert head is not None
        self.assertEqual((head.status, head.reason), (200, "OK"))
        self.assertEqual(head.headers["content-type"], "application/json")
        self.assertEqual(body, b'{"a":1}')
        self.assertEqual(end, yc_runs._End(True))

    def test_chunked_body_with_extensions_and_trailers_fed_byte_by_byte(self) -> None:
        data = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;ext=1\r\nhello\r\n1 ; a=\"b\"\r\n \r\n6\r\nworld!\r\n"
                b"0;last\r\nX-Trailer: 1\r\nX-More: 2\r\n\r\n")
        for step in (1, 2, 5, len(data)):
            with self.subTest(step=step):
                _, body, end = parse_response(data, step=step, eof=False)
                self.assertEqual(body, b"hello world!")
                self.assertEqual(end, yc_runs._End(True))

    def test_chunk_sizes_are_hexadecimal(self) -> None:
        payload = bytes(range(256)) * 2
        data = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1A\r\n" + payload[:26] \
            + b"\r\n1e6\r\n" + payload[26:] + b"\r\n0\r\n\r\n"
        _, body, end = parse_response(data, step=3, eof=False)
        self.assertEqual(body, payload)
        self.assertIsNotNone(end)

    def test_close_delimited_body_ends_at_eof(self) -> None:
        data = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body"
        _, body, end = parse_response(data, eof=False)
        self.assertEqual((body, end), (b"some body", None))
        _, body, end = parse_response(data, eof=True)
        self.assertEqual((body, end), (b"some body", yc_runs._End(False)))

    def test_informational_responses_are_skipped(self) -> None:
        data = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\n" \
               b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"
        head, body, _ = parse_response(data)
        assert head is not None
        self.assertEqual((head.status, body), (201, b"ok"))

    def test_keep_alive_follows_version_and_connection_header(self) -> None:
        cases = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
            (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", True),
            (b"HTTP/1.1 200 OK\r\nConnection: Close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", False),
        ]
        for data, keep in cases:
            with self.subTest(data=data):
                self.assertEqual(parse_response(data, eof=False)[2], yc_runs._End(keep))

    def test_no_body_for_204_304_and_head(self) -> None:
        for data, method in ((b"HTTP/1.1 204 No Content\r\n\r\n", "GET"),
                             (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n", "GET"),
                             (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", "HEAD")):
            with self.subTest(data=data):
                _, body, end = parse_response(data, method=method, eof=False)
                self.assertEqual((body, end), (b"", yc_runs._End(True)))

    def test_header_names_are_lowercased_and_repeats_joined(self) -> None:
        data = (b"HTTP/1.1 503 Service Unavailable\r\nX-Request-ID:  abc \r\nVia: a\r\nVIA: b\r\n"
                b"Content-Length: 0\r\n\r\n")
        head, _, _ = parse_response(data)
        assert head is not None
        self.assertEqual(head.reason, "Service Unavailable")
        self.assertEqual(head.headers["x-request-id"], "abc")
        self.assertEqual(head.headers["via"], "a, b")

    def test_status_lines_with_and_without_a_reason(self) -> None:
        for line, status, reason, keep_alive in (
                (b"HTTP/1.1 200 OK", 200, "OK", True), (b"HTTP/1.1 204", 204, "", True),
                (b"HTTP/1.1 404 ", 404, "", True), (b"HTTP/1.0 200 OK", 200, "OK", False),
                (b"HTTP/1.1 503 Service  Unavailable", 503, "Service  Unavailable", True)):
            with self.subTest(line=line):
                head, _, end = parse_response(line + b"\r\nContent-Length: 0\r\n\r\n")
                assert head is not None and end is not None
                self.assertEqual((head.status, head.reason, end.keep_alive),
                                 (status, reason, keep_alive))

    def test_a_head_reads_the_same_with_crlf_bare_lf_or_both(self) -> None:
        for lines, expected in (
                ([b"HTTP/1.1 204 No Content"], (204, "No Content", {})),
                ([b"HTTP/1.1 204"], (204, "", {})),
                ([b"HTTP/1.1 200 OK", b"X-Empty:", b"Via: a", b"VIA:  b ", b"Content-Length: 0"],
                 (200, "OK", {"x-empty": "", "via": "a, b", "content-length": "0"}))):
            for ends in itertools.product((b"\r\n", b"\n"), repeat=len(lines) + 1):
                data = b"".join(line + end for line, end in zip(lines + [b""], ends))
                with self.subTest(data=data):
                    head, body, end = parse_response(data, eof=False)
                    assert head is not None
                    self.assertEqual((head.status, head.reason, head.headers), expected)
                    self.assertEqual((body, end), (b"", yc_runs._End(True)))

    def test_broken_framing_raises_protocol_error(self) -> None:
        cases = {
            "empty": b"",
            "http2 status": b"HTTP/2 200\r\n\r\n",
            "HTTP/1.2": b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n",
            "four-digit status": b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",
            "two-digit status": b"HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n",
            "no space after the status": b"HTTP/1.1 200OK\r\nContent-Length: 0\r\n\r\n",
            "non-ASCII digits": "HTTP/1.1 \u0662\u0660\u0660 OK\r\n\r\n".encode("utf-8"),
            "lower-case http": b"http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            "garbage": b"garbage\r\n\r\n",
            "header without colon": b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
            "space before colon": b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n",
            "bad chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "negative chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
            "chunk without crlf": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX",
            "conflicting lengths": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "non-numeric length": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
            "gzip encoding": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            "eof in body": b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
            "eof in chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc",
            "eof before trailers end": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n",
            "eof in head": b"HTTP/1.1 200 OK\r\nContent-",
            "head too big": b"HTTP/1.1 200 OK\r\n" + b"X: " + b"y" * (70 * 1024),
            "chunk line too long": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 5000,
        }
        for name, data in cases.items():
            with self.subTest(case=name), self.assertRaises(yc_runs._ProtocolError):
                parse_response(data, step=max(1, len(data) // 7 or 1))


class HTTPCodecTest(RawServerTestCase):
    def test_get_reads_a_content_length_body_and_reuses_the_connection(self) -> None:
        server = self.serve(json_response(200, RUN_JSON))
        client = self.client_for(server)
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")
        self.assertEqual(server.connections, 1)

    def test_get_reads_a_chunked_body_with_extensions_and_trailers(self) -> None:
        body = json.dumps(RUN_JSON).encode()
        pieces = [body[:10], body[10:11], body[11:]]
        response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"
                    + b"".join(one_chunk(p, b";name=value; q=\"x\"") for p in pieces)
                    + b"0;last=1\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n")
        server = self.serve(response)
        client = self.client_for(server)
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")  # framing consumed exactly
        self.assertEqual(server.connections, 1)

    def test_get_reads_a_close_delimited_body(self) -> None:
        body = json.dumps(RUN_JSON).encode()

        def handler(conn: socket.socket, request: bytes) -> bool:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + body[:20])
            conn.sendall(body[20:])
            return False

        server = self.serve(handler)
        client = self.client_for(server)
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")
        self.assertEqual(server.connections, 2)  # a close-delimited body cannot be kept alive

    def test_get_reads_an_http_1_0_response_and_does_not_reuse_it(self) -> None:
        body = json.dumps(RUN_JSON).encode()
        response = b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        server = self.serve(lambda conn, request: conn.sendall(response) or False)
        client = self.client_for(server)
        client.runs.get("r")
        client.runs.get("r")
        self.assertEqual(server.connections, 2)

    def test_connection_close_header_is_honoured(self) -> None:
        body = json.dumps(RUN_JSON).encode()
        response = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s" % (
            len(body), body)
        server = self.serve(response)
        client = self.client_for(server)
        client.runs.get("r")
        client.runs.get("r")
        self.assertEqual(server.connections, 2)

    def listen(self, *handlers: Any, **kwargs: Any) -> List["yc_runs.RunStreamEvent"]:
        client = self.client_for(self.serve(*handlers), **kwargs.pop("client", {}))
        kwargs.setdefault("timeout", 5)
        return list(yc_runs.Run("run-1", _runs=client.runs).listen(**kwargs))

    def test_listen_reads_a_chunked_stream_with_extensions_and_trailers(self) -> None:
        lines = listen_line("PARTIAL_MESSAGE", 0, "Hel") + b"\n" + listen_line("DONE", 1, "Hello")
        events = self.listen(stream_handler(
            one_chunk(lines[:30], b";a=b"), one_chunk(lines[30:] + b"\n", b";c"),
            b"0\r\nX-Checksum: abc\r\n\r\n"))
        self.assertEqual([e.text for e in events], ["Hel", "Hello"])

    def test_listen_reads_a_close_delimited_stream(self) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
        events = self.listen(stream_handler(
            listen_line("PARTIAL_MESSAGE", 0, "a") + b"\n", listen_line("DONE", 1, "ab"),
            head=head))
        self.assertEqual([e.status for e in events],
                         [yc_runs.StreamEvent.PARTIAL_MESSAGE, yc_runs.StreamEvent.DONE])

    def test_listen_reads_a_content_length_stream(self) -> None:
        body = listen_line("DONE", 0, "whole") + b"\n"
        events = self.listen(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        self.assertEqual([e.text for e in events], ["whole"])

    def test_chunk_boundaries_inside_lines_and_utf8_characters_are_handled(self) -> None:
        text = "\u041f\u0440\u0438\u0432\u0435\u0442, \u65e5\u672c \U0001f600!"
        body = (listen_line("PARTIAL_MESSAGE", 0, text[:5]) + b"\n"
                + listen_line("DONE", 1, text) + b"\n")
        one_byte_chunks = b"".join(one_chunk(bytes([b])) for b in body) + b"0\r\n\r\n"
        events = self.listen(stream_handler(one_byte_chunks))
        self.assertEqual([e.text for e in events], [text[:5], text])
        self.assertEqual("".join(e.delta for e in events), text)
        # and every split position of a line through the sans-IO path
        for step in (1, 2, 3, 7):
            with self.subTest(step=step):
                decoded = decode_lines([listen_line("DONE", 0, text)], step=step)
                self.assertEqual([e.text for e in decoded], [text])

    def test_blank_lines_and_crlf_line_ends_are_accepted(self) -> None:
        body = (b"\n\r\n   \n" + listen_line("PARTIAL_MESSAGE", 0, "a") + b"\r\n\n"
                + listen_line("DONE", 1, "ab") + b"\r\n\r\n")
        events = self.listen(stream_handler(one_chunk(body), b"0\r\n\r\n"))
        self.assertEqual([e.text for e in events], ["a", "ab"])

    def test_bare_stream_event_lines_are_accepted(self) -> None:
        body = (listen_line("PARTIAL_MESSAGE", 0, "a", wrap=False) + b"\n"
                + listen_line("DONE", 1, "ab") + b"\n")
        events = self.listen(stream_handler(one_chunk(body), b"0\r\n\r\n"))
        self.assertEqual([e.text for e in events], ["a", "ab"])

    def test_last_line_without_a_newline_still_counts(self) -> None:
        body = listen_line("DONE", 0, "end")
        events = self.listen(stream_handler(one_chunk(body), b"0\r\n\r\n"))
        self.assertEqual([e.text for e in events], ["end"])

    def test_error_line_raises_the_api_error(self) -> None:
        error = json.dumps({"error": {"grpcCode": 9, "httpCode": 400, "message": "run is over",
                                      "details": []}}).encode()
        body = listen_line("PARTIAL_MESSAGE", 0, "a") + b"\n" + error + b"\n"
        events: List[yc_runs.RunStreamEvent] = []
        client = self.client_for(self.serve(stream_handler(one_chunk(body), b"0\r\n\r\n")),
                                 max_retries=3)
        with self.assertRaises(yc_runs.BadRequestError) as caught:
            for event in yc_runs.Run("run-1", _runs=client.runs).listen(timeout=5):
                events.append(event)
        self.assertEqual(len(events), 1)
        self.assertEqual((caught.exception.status, caught.exception.grpc_code), (400, 9))
        self.assertIn("run is over", str(caught.exception))

    def test_error_line_with_only_a_grpc_code_maps_to_its_http_status(self) -> None:
        error = json.dumps({"error": {"code": 5, "message": "gone"}}).encode()
        with self.assertRaises(yc_runs.NotFoundError):
            self.listen(stream_handler(one_chunk(error + b"\n"), b"0\r\n\r\n"))

    def test_error_status_on_listen_raises_the_api_error(self) -> None:
        with self.assertRaises(yc_runs.NotFoundError):
            self.listen(json_response(404, {"code": 5, "message": "run not found", "details": []}))

    def test_cut_mid_line_without_resume_raises_stream_error_and_yields_no_half_event(self) -> None:
        line0 = listen_line("PARTIAL_MESSAGE", 0, "Hel") + b"\n"
        line1 = listen_line("DONE", 1, "Hello") + b"\n"
        for name, handler in (
            ("chunked", stream_handler(one_chunk(line0) + one_chunk(line1)[:25])),
            ("chunk-data", stream_handler(one_chunk(line0) + b"%x\r\n" % len(line1) + line1[:20])),
            ("close-delimited", stream_handler(
                line0 + line1[:20], head=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")),
            ("content-length", stream_handler(
                line0 + line1[:20],
                head=b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(line0) + len(line1)))),
        ):
            with self.subTest(framing=name):
                client = self.client_for(self.serve(handler))
                events: List[yc_runs.RunStreamEvent] = []
                with self.assertRaises(yc_runs.StreamError) as caught:
                    for event in yc_runs.Run("run-1", _runs=client.runs).listen(timeout=5, resume=False):
                        events.append(event)
                self.assertEqual([e.text for e in events], ["Hel"])
                self.assertEqual(caught.exception.last_event_idx, 0)

    def test_stream_ending_before_its_final_event_without_resume_raises_stream_error(self) -> None:
        body = listen_line("PARTIAL_MESSAGE", 0, "a") + b"\n"
        with self.assertRaises(yc_runs.StreamError) as caught:
            self.listen(stream_handler(one_chunk(body), b"0\r\n\r\n"), resume=False)
        self.assertIn("after event 0", str(caught.exception))

    def test_cut_stream_resumes_from_the_next_index_without_duplicates(self) -> None:
        line0 = listen_line("PARTIAL_MESSAGE", 0, "Hel") + b"\n"
        line1 = listen_line("DONE", 1, "Hello") + b"\n"
        server = self.serve(stream_handler(one_chunk(line0) + one_chunk(line1)[:25]),
                            stream_handler(one_chunk(line0 + line1), b"0\r\n\r\n"))
        client = self.client_for(server, max_retries=2)
        events = list(yc_runs.Run("run-1", _runs=client.runs).listen(timeout=5))
        self.assertEqual([(e.stream_cursor.current_event_idx, e.delta) for e in events],
                         [(0, "Hel"), (1, "lo")])
        self.assertEqual([request_target(r).rsplit("=", 1)[1] for r in server.requests], ["0", "1"])

    def test_listen_on_a_stalled_server_raises_within_the_timeout(self) -> None:
        line = listen_line("PARTIAL_MESSAGE", 0, "a")
        client = self.client_for(self.serve(stalling_stream(line, self.release_event())))
        events: List[yc_runs.RunStreamEvent] = []
        started = time.monotonic()
        with self.assertRaises(yc_runs.StreamError) as caught:
            for event in yc_runs.Run("run-1", _runs=client.runs).listen(timeout=0.1, resume=False):
                events.append(event)
        elapsed = time.monotonic() - started
        self.assertLess(elapsed, 2.0)
        self.assertGreaterEqual(elapsed, 0.08)
        self.assertEqual(len(events), 1)
        self.assertIsInstance(caught.exception.__cause__, yc_runs.APITimeoutError)

    def test_the_driver_warms_up_after_sending_the_request_before_the_answer(self) -> None:
        warm_up = WarmUpOrder()
        self.addCleanup(warm_up.answer.set)
        client = self.client_for(self.serve(warm_up.handler))
        self.assertEqual(client._run(warm_up.plan()), 204)
        self.assertEqual(warm_up.seen, [True])

    def test_listen_timeout_counts_from_when_the_caller_asks_again(self) -> None:
        asked = self.release_event()
        client = self.client_for(self.serve(slow_caller_stream(asked)))
        events = []
        for event in yc_runs.Run("run-1", _runs=client.runs).listen(timeout=0.2, resume=False):
            events.append(event.status)
            if len(events) == 1:
                time.sleep(0.3)  # longer than the timeout, with nothing of the stream's left
                asked.set()
        self.assertEqual(events, [yc_runs.StreamEvent.PARTIAL_MESSAGE, yc_runs.StreamEvent.DONE])

    def test_bytes_without_an_event_do_not_put_off_a_stall(self) -> None:
        head = stream_head() + one_chunk(listen_line("PARTIAL_MESSAGE", 0, "a") + b"\n")
        body = b"".join(one_chunk(b" ") for _ in range(200))  # a line that never ends
        client = self.client_for(self.serve(trickle(head, body, 0.01, self.release_event())))
        events = []
        started = time.monotonic()
        with self.assertRaises(yc_runs.StreamError) as caught:
            for event in yc_runs.Run("run-1", _runs=client.runs).listen(timeout=0.15,
                                                                         resume=False):
                events.append(event)
        self.assertLess(time.monotonic() - started, 1.0)  # the trickle goes on for 2 s or more
        self.assertEqual(len(events), 1)
        self.assertIsInstance(caught.exception.__cause__, yc_runs.APITimeoutError)

    def test_get_on_a_stalled_server_raises_api_timeout_within_the_timeout(self) -> None:
        release = self.release_event()
        server = self.serve(lambda conn, request: release.wait(10) and False)
        client = self.client_for(server, max_retries=3)
        started = time.monotonic()
        with self.assertRaises(yc_runs.APITimeoutError) as caught:
            client.runs.get("r", timeout=0.1)
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertIsInstance(caught.exception, TimeoutError)

    def test_client_timeout_applies_to_calls_without_their_own(self) -> None:
        release = self.release_event()
        server = self.serve(lambda conn, request: release.wait(10) and False)
        client = self.client_for(server, timeout=0.1)
        run = yc_runs.Run("run-1", _runs=client.runs)
        for name, call in (("get", lambda: client.runs.get("r")),
                           ("create", lambda: client.runs.create("a", "t")),
                           ("listen", lambda: list(run.listen(resume=False)))):
            with self.subTest(call=name):
                started = time.monotonic()
                with self.assertRaises((yc_runs.APITimeoutError, yc_runs.StreamError)):
                    call()
                self.assertLess(time.monotonic() - started, 2.0)

    def test_each_event_is_yielded_before_the_next_line_arrives(self) -> None:
        got_first = threading.Event()
        server_saw: List[bool] = []

        def handler(conn: socket.socket, request: bytes) -> bool:
            conn.sendall(stream_head() + one_chunk(listen_line("PARTIAL_MESSAGE", 0, "a") + b"\n"))
            server_saw.append(got_first.wait(5))
            conn.sendall(one_chunk(listen_line("DONE", 1, "ab") + b"\n") + b"0\r\n\r\n")
            return False

        client = self.client_for(self.serve(handler))
        events = []
        for event in yc_runs.Run("run-1", _runs=client.runs).listen(timeout=10):
            events.append(event)
            if len(events) == 1:
                self.assertEqual(server_saw, [])  # the second line was not sent yet
                got_first.set()
        self.assertEqual(server_saw, [True])
        self.assertEqual([e.text for e in events], ["a", "ab"])

    def test_stream_ends_after_the_final_event_even_if_the_server_keeps_it_open(self) -> None:
        line = listen_line("DONE", 0, "x")
        client = self.client_for(self.serve(stalling_stream(line, self.release_event())))
        started = time.monotonic()
        events = list(yc_runs.Run("run-1", _runs=client.runs).listen(timeout=10))
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertEqual([e.text for e in events], ["x"])

    def test_stream_line_over_16_mib_raises_stream_error(self) -> None:
        size = yc_runs.MAX_LINE_BYTES + 1024

        def handler(conn: socket.socket, request: bytes) -> bool:
            conn.sendall(stream_head() + b"%x\r\n" % size)
            piece = b"x" * (1 << 20)
            for _ in range(size >> 20):
                conn.sendall(piece)
            conn.sendall(b"x" * (size & 0xFFFFF) + b"\r\n0\r\n\r\n")
            return False

        client = self.client_for(self.serve(handler))
        started = time.monotonic()
        with self.assertRaises(yc_runs.StreamError) as caught:
            list(yc_runs.Run("run-1", _runs=client.runs).listen(timeout=5))
        self.assertIn("longer than", str(caught.exception))
        self.assertLess(time.monotonic() - started, 5.0)


class HeadersTest(RawServerTestCase):
    def test_api_key_and_iam_token_go_in_the_authorization_header(self) -> None:
        server = self.serve()
        self.client_for(server, api_key="key-abc").runs.get("r")
        self.client_for(server, api_key=None, iam_token="t1.iam-token").runs.get("r")
        self.assertEqual([request_header(r, "Authorization") for r in server.requests],
                         ["Api-Key key-abc", "Bearer t1.iam-token"])

    def test_folder_id_and_a_fresh_uuid4_request_id_on_every_request(self) -> None:
        server = self.serve()
        client = self.client_for(server, folder_id="b1g-folder")
        run = client.runs.get("r")
        client.runs.get_last_by_thread("t")
        list(client.runs.list())
        run.submit_tool_results({"name": "f", "content": "x"})
        list(run.listen())
        client.runs.create("a", "t")
        ids = [request_header(r, "x-client-request-id") for r in server.requests]
        self.assertEqual(len(ids), 6)
        for request_id in ids:
            self.assertRegex(request_id or "", UUID4)
        self.assertEqual(len(set(ids)), 6)
        self.assertEqual({request_header(r, "x-folder-id") for r in server.requests}, {"b1g-folder"})

    def test_user_agent_names_the_client_and_python(self) -> None:
        server = self.serve()
        self.client_for(server).runs.get("r")
        expected = "yc-runs/%s Python/%d.%d" % (yc_runs.__version__, *sys.version_info[:2])
        self.assertEqual(request_header(server.requests[0], "User-Agent"), expected)
        self.assertEqual(request_header(server.requests[0], "Host"), "127.0.0.1:%d" % server.port)

    def test_json_body_requests_carry_content_type_and_length(self) -> None:
        server = self.serve()
        self.client_for(server).runs.create("a", "t", additional_messages=["\u65e5\u672c"])
        request = server.requests[0]
        self.assertTrue(request_head(request)[0].startswith("POST /assistants/v1/runs HTTP/1.1"))
        self.assertEqual(request_header(request, "Content-Type"), "application/json")
        self.assertEqual(request_body(request)["additionalMessages"][0]["content"]["content"][0],
                         {"text": {"content": "\u65e5\u672c"}})

    def test_ids_are_percent_encoded_in_the_path_and_query(self) -> None:
        server = self.serve()
        client = self.client_for(server, folder_id="f 1&x=2")
        client.runs.get("a/b?c#d ../\u00e9")
        client.runs.get_last_by_thread("t/1?x=2&y#z \u65e5")
        list(yc_runs.Run("r/1 ?#", _runs=client.runs).listen(events_start_idx=3))
        list(client.runs.list(page_size=7))
        self.assertEqual([request_target(r) for r in server.requests], [
            "/assistants/v1/runs/a%2Fb%3Fc%23d%20..%2F%C3%A9",
            "/assistants/v1/runs:getByThread?threadId=t%2F1%3Fx%3D2%26y%23z%20%E6%97%A5",
            "/assistants/v1/runs/listen?runId=r%2F1%20%3F%23&eventsStartIdx=3",
            "/assistants/v1/runs?folderId=f%201%26x%3D2&pageSize=7",
        ])

    def test_dot_segment_run_ids_are_refused(self) -> None:
        server = self.serve()
        client = self.client_for(server)
        for run_id in (".", ".."):
            with self.subTest(run_id=run_id):
                with self.assertRaises(ValueError) as caught:
                    client.runs.get(run_id)
                self.assertIn("run", str(caught.exception))
        self.assertEqual(server.requests, [])

    def test_base_url_path_prefix_is_kept(self) -> None:
        server = self.serve()
        self.client_for(server.url + "/gateway/").runs.get("r")
        self.assertEqual(request_target(server.requests[0]), "/gateway/assistants/v1/runs/r")


class WireEdgeCasesTest(RawServerTestCase):
    def test_an_error_line_401_ends_the_stream_without_a_new_token(self) -> None:
        tokens: List[bytes] = []

        def api(conn: socket.socket, request: bytes) -> bool:
            if request_target(request).startswith("/token"):
                tokens.append(request)
                conn.sendall(json_response(200, {"access_token": "t%d" % len(tokens),
                                                 "expires_in": 3600}))
                return True
            line = json.dumps({"error": {"grpcCode": 16, "httpCode": 401, "message": "expired"}})
            conn.sendall(stream_head() + one_chunk(listen_line("PARTIAL_MESSAGE", 0, "hi")
                                                    + b"\n" + line.encode() + b"\n")
                         + b"0\r\n\r\n")
            return False

        server = self.serve(api)
        client = self.client_for(server, api_key=None,
                                 credentials=yc_runs.MetadataCredentials(server.url + "/token"))
        events: List[yc_runs.RunStreamEvent] = []
        with self.assertRaises(yc_runs.AuthenticationError):
            for event in yc_runs.Run("r", _runs=client.runs).listen():
                events.append(event)
        self.assertEqual([e.text for e in events], ["hi"])
        self.assertEqual(len(tokens), 1)  # no refetch, no reconnection

    def test_a_huge_decimal_index_is_decoded_or_a_stream_error_never_a_bare_value_error(self) -> None:
        line = listen_line("DONE", None, "x", streamCursor={"currentEventIdx": "9" * 5000})
        try:
            events = decode_lines([line + b"\n"])
        except yc_runs.StreamError as exc:  # Python 3.11+ refuses ints of over 4300 digits
            self.assertIn("currentEventIdx", str(exc))
        else:  # older Pythons have no such limit
            self.assertEqual(events[0].stream_cursor.current_event_idx, int("9" * 5000))

    def test_sixteen_interim_responses_are_skipped_seventeen_are_refused(self) -> None:
        interim = b"HTTP/1.1 100 Continue\r\n\r\n"
        ok = self.serve(interim * 16 + json_response(200, RUN_JSON))
        self.assertEqual(self.client_for(ok).runs.get("r").id, "fvt-run-1")
        flood = self.serve(interim * 17 + json_response(200, RUN_JSON))
        with self.assertRaises(yc_runs.APIConnectionError):
            self.client_for(flood).runs.get("r")

    def test_a_byte_order_mark_before_a_line_is_accepted(self) -> None:
        events = decode_lines([b"\xef\xbb\xbf" + listen_line("DONE", 0, "ok") + b"\n"])
        self.assertEqual([e.text for e in events], ["ok"])

    def test_an_event_mixing_camel_and_snake_case_loses_no_field(self) -> None:
        line = json.dumps({"result": {"eventType": "PARTIAL_MESSAGE",
                                      "stream_cursor": {"current_event_idx": "4"},
                                      "partial_message": {"content": [{"text": {"content": "hi"}}]}}})
        event = decode_lines([line.encode() + b"\n"])[0]
        self.assertEqual((event.stream_cursor.current_event_idx, event.text), (4, "hi"))

    def test_good_lines_before_a_bad_one_in_the_same_piece_are_delivered_first(self) -> None:
        state = yc_runs._ListenState("r", 0)
        piece = (listen_line("PARTIAL_MESSAGE", 0, "a") + b"\n"
                 + listen_line("PARTIAL_MESSAGE", 1, "ab") + b"\n" + b"{not json\n")
        self.assertEqual([e.text for e in state.feed(piece)], ["a", "ab"])
        with self.assertRaises(yc_runs.StreamError) as caught:
            list(state.end())
        self.assertEqual(caught.exception.last_event_idx, 1)

    def test_chunk_sizes_must_be_plain_hex(self) -> None:
        for size in (b"0x3", b"+3", b"0_3", b"-0", b""):
            data = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size
                    + b"\r\nabc\r\n0\r\n\r\n")
            parser = yc_runs._ResponseParser()
            parser.feed(data)
            with self.subTest(size=size), self.assertRaises(yc_runs._ProtocolError):
                while parser.next_event() is not None:
                    pass

    def test_every_spelling_of_loopback_stays_off_the_proxy(self) -> None:
        os.environ["http_proxy"] = "http://127.0.0.1:9"
        for host in ("LOCALHOST.", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "127.1", "::1",
                     "169.254.169.254"):
            with self.subTest(host=host):
                self.assertIsNone(yc_runs._proxy_for(yc_runs._Origin("http", host, 80)))
        self.assertIsNotNone(yc_runs._proxy_for(yc_runs._Origin("http", "example.com", 80)))


# ============================================================================
# Stream state (sans-IO): NDJSON lines, SSE events, the listen fast paths
# ============================================================================


class LineSplitterTest(unittest.TestCase):
    def test_lines_split_across_feeds(self) -> None:
        splitter = yc_runs._LineSplitter(max_line=100)
        splitter.feed(b"one\ntw")
        self.assertEqual(splitter.take(), [b"one"])
        splitter.feed(b"o\n\nthree\r\nfo")
        self.assertEqual(splitter.take(), [b"two", b"", b"three\r"])
        self.assertEqual(splitter.tail(), b"fo")
        splitter.feed(b"ur")
        self.assertEqual(splitter.take(), [])
        self.assertEqual(splitter.tail(), b"four")

    def test_line_at_the_bound_is_accepted_and_one_byte_more_is_refused(self) -> None:
        splitter = yc_runs._LineSplitter(max_line=100)
        splitter.feed(b"a" * 100 + b"\n")
        self.assertEqual(splitter.take(), [b"a" * 100])
        splitter.feed(b"b" * 101 + b"\n")
        with self.assertRaises(yc_runs.StreamError) as caught:
            splitter.take()
        self.assertIn("100", str(caught.exception))

    def test_unterminated_line_over_the_bound_is_refused_as_it_grows(self) -> None:
        splitter = yc_runs._LineSplitter(max_line=100)
        splitter.feed(b"c" * 60)
        self.assertEqual(splitter.take(), [])
        with self.assertRaises(yc_runs.StreamError):  # when fed, or at the latest when taken
            splitter.feed(b"c" * 50)
            splitter.take()

    def test_long_line_after_short_ones_in_one_feed_is_refused(self) -> None:
        splitter = yc_runs._LineSplitter(max_line=100)
        splitter.feed(b"ok\n" + b"d" * 150)
        self.assertEqual(splitter.take(), [b"ok"])  # the lines before it first
        with self.assertRaises(yc_runs.StreamError):
            splitter.take()

    def test_many_short_lines_in_a_feed_larger_than_the_bound_are_fine(self) -> None:
        splitter = yc_runs._LineSplitter(max_line=100)
        splitter.feed(b"line\n" * 100)
        self.assertEqual(len(splitter.take()), 100)


class ResponsesSSEDecoderTest(unittest.TestCase):
    def messages(self, *pieces: bytes) -> List[Tuple[str, str, str]]:
        decoder = yc_runs._SSEDecoder()
        out = []
        for piece in pieces:
            out.extend(tuple(m) for m in decoder.feed(piece))
        return out

    def test_data_before_or_after_event_with_or_without_a_space(self) -> None:
        for text in (b"data:{}\nevent:x\n\n", b"event:x\ndata:{}\n\n", b"data: {}\nevent: x\n\n",
                     b"event: x\ndata:{}\n\n"):
            with self.subTest(text=text):
                self.assertEqual(self.messages(text), [("x", "{}", "")])

    def test_only_one_space_after_the_colon_is_dropped(self) -> None:
        self.assertEqual(self.messages(b"data:  two\n\n"), [("message", " two", "")])

    def test_crlf_lf_and_lone_cr_end_lines(self) -> None:
        for eol in (b"\n", b"\r\n", b"\r"):
            text = b"data:a" + eol + b"event:e" + eol + eol + b"data:b" + eol + eol
            with self.subTest(eol=eol):
                self.assertEqual(self.messages(text), [("e", "a", ""), ("message", "b", "")])
                for cut in range(len(text) + 1):
                    self.assertEqual(self.messages(text[:cut], text[cut:]),
                                     [("e", "a", ""), ("message", "b", "")])

    def test_comments_id_and_retry_lines(self) -> None:
        decoder = yc_runs._SSEDecoder()
        out = decoder.feed(b": hello\n:\nid: 7\nretry: 2500\ndata:a\n\ndata:b\n\n")
        self.assertEqual([tuple(m) for m in out], [("message", "a", "7"), ("message", "b", "7")])
        self.assertEqual(decoder.retry, 2500)
        decoder.feed(b"retry: soon\nid: bad\0id\n\n")
        self.assertEqual((decoder.retry, decoder.last_event_id), (2500, "7"))

    def test_multi_line_data_joins_with_newlines(self) -> None:
        self.assertEqual(self.messages(b'data:{"a":\ndata: 1}\n\n'), [("message", '{"a":\n1}', "")])
        self.assertEqual(self.messages(b"data\n\n"), [("message", "", "")])

    def test_a_blank_line_without_data_dispatches_nothing(self) -> None:
        self.assertEqual(self.messages(b"event:x\n\n\n\ndata:y\n\n"), [("message", "y", "")])

    def test_a_bom_at_the_start_is_dropped_even_when_split(self) -> None:
        text = "\ufeffdata:a\n\n".encode()
        for cut in range(len(text) + 1):
            self.assertEqual(self.messages(text[:cut], text[cut:]), [("message", "a", "")])
        # later on, a BOM is part of a field name, and a field this decoder does not know
        self.assertEqual(self.messages(b"data:a\n\n", "\ufeffdata:b\n\n".encode()),
                         [("message", "a", "")])

    def test_a_message_the_body_ends_in_is_dropped(self) -> None:
        decoder = yc_runs._SSEDecoder()
        self.assertEqual(decoder.feed(b"data:a\n\ndata:b\n"), [("message", "a", "")])
        self.assertEqual(decoder.feed(b""), [])

    def test_an_over_long_line_is_a_stream_error_after_the_messages_before(self) -> None:
        decoder = yc_runs._SSEDecoder(max_line=64)
        out = decoder.feed(b"data:ok\n\ndata:" + b"x" * 100 + b"\n\n")
        self.assertEqual([m.data for m in out], ["ok"])
        with self.assertRaises(yc_runs.StreamError):
            decoder.feed(b"data:more\n\n")
        unterminated = yc_runs._SSEDecoder(max_line=64)
        unterminated.feed(b"data:" + b"x" * 40)
        with self.assertRaisesRegex(yc_runs.StreamError, "longer than 64 bytes"):
            unterminated.feed(b"x" * 40)
        many = yc_runs._SSEDecoder(max_line=64)
        with self.assertRaisesRegex(yc_runs.StreamError, "event is longer"):
            many.feed(b"data:" + b"y" * 40 + b"\n" + b"data:" + b"y" * 40 + b"\n\n")

    def test_bytes_that_are_not_utf8_are_a_stream_error_after_the_messages_before(self) -> None:
        with self.assertRaisesRegex(yc_runs.StreamError, "not UTF-8"):
            yc_runs._SSEDecoder().feed(b"data:\xff\xfe\n\n")
        decoder = yc_runs._SSEDecoder()
        self.assertEqual([m.data for m in decoder.feed(b"data:ok\n\ndata:\xff\n\n")], ["ok"])
        with self.assertRaisesRegex(yc_runs.StreamError, "not UTF-8"):
            decoder.feed(b"data:more\n\n")


class ResponsesStreamStateTest(unittest.TestCase):
    CREATED = {"type": "response.created", "sequence_number": 1,
               "response": response_object(status="queued")}

    @staticmethod
    def delta(number: int, text: str, content_index: int = 0) -> Dict[str, Any]:
        return {"type": "response.output_text.delta", "sequence_number": number,
                "item_id": "msg-1", "output_index": 0, "content_index": content_index,
                "delta": text}

    def completed(self, number: int, *texts: str) -> Dict[str, Any]:
        return {"type": "response.completed", "sequence_number": number,
                "response": response_object(output=[text_item(*texts)],
                                             usage={"input_tokens": 1, "output_tokens": 2,
                                                    "total_tokens": 3})}

    def test_repeated_and_decreasing_sequence_numbers_are_dropped_on_any_connection(self) -> None:
        state = yc_runs._ResponsesStreamState()
        first = state.feed(sse_bytes(self.CREATED, self.delta(2, "a"), self.delta(3, "b")))
        self.assertEqual([e.delta for e in first], ["a", "b"])
        self.assertEqual(state.last_sequence_number, 3)
        request = state.request()  # the connection broke: resume after 3
        self.assertEqual((request.method, request.target),
                         ("GET", "/v1/responses/resp-1?stream=true&starting_after=3"))
        replay = state.feed(sse_bytes(self.delta(2, "a"), self.delta(3, "b"), self.delta(4, "c"),
                                          self.delta(3, "b"), self.completed(5, "abc")))
        self.assertEqual([(e.delta, e.text) for e in replay], [("c", "abc"), ("", "abc")])
        self.assertEqual([e.stream_cursor.current_event_idx for e in first + replay], [2, 3, 4, 5])
        self.assertTrue(state.done)
        self.assertEqual(state.feed(sse_bytes(self.delta(6, "late"))), [])

    def test_a_resumed_state_starts_after_the_given_sequence_number(self) -> None:
        state = yc_runs._ResponsesStreamState("resp-1", offset=100, starting_after=2)
        events = state.feed(sse_bytes(self.CREATED, self.delta(2, "a"), self.delta(3, "b")))
        self.assertEqual([(e.stream_cursor.current_event_idx, e.delta) for e in events], [(103, "b")])

    def test_an_over_long_line_at_the_end_is_a_stream_error_not_a_cut(self) -> None:
        state = yc_runs._ResponsesStreamState()
        state.sse = yc_runs._SSEDecoder(max_line=300)
        events = state.feed(sse_bytes(self.delta(1, "a")) + b"data:" + b"x" * 400 + b"\n")
        self.assertEqual([e.delta for e in events], ["a"])
        with self.assertRaisesRegex(yc_runs.StreamError, "longer than 300 bytes") as caught:
            state.end()
        self.assertEqual(caught.exception.last_event_idx, 1)

    def test_the_stream_ending_early_is_a_resumable_connection_error(self) -> None:
        state = yc_runs._ResponsesStreamState()
        events = state.feed(sse_bytes(self.CREATED, self.delta(2, "a"))[:-1])
        self.assertEqual(events, [])  # the blank line that ends event 2 never came
        with self.assertRaises(yc_runs.APIConnectionError):
            state.end()
        self.assertEqual(state.request().target, "/v1/responses/resp-1?stream=true&starting_after=1")
        self.assertEqual([e.delta for e in state.feed(sse_bytes(self.delta(2, "a")))], ["a"])

    def test_a_stream_broken_before_naming_its_response_cannot_resume(self) -> None:
        with self.assertRaises(yc_runs.StreamError):
            yc_runs._ResponsesStreamState().request()

    def test_malformed_json_comes_after_the_events_before_it(self) -> None:
        state = yc_runs._ResponsesStreamState()
        events = state.feed(sse_bytes(self.CREATED, self.delta(2, "a")) + b"data:{oops\n\n")
        self.assertEqual([e.delta for e in events], ["a"])
        with self.assertRaisesRegex(yc_runs.StreamError, "malformed event data") as caught:
            state.feed(b"")
        self.assertEqual(caught.exception.last_event_idx, 2)
        with self.assertRaisesRegex(yc_runs.StreamError, "not an object"):
            yc_runs._ResponsesStreamState().feed(b"data:[1]\n\n")

    def test_a_malformed_field_is_a_stream_error_naming_it(self) -> None:
        bad = dict(self.delta(2, "a"), delta=[5])
        for event, field_name in ((bad, "response.output_text.delta.delta"),
                                  ({"type": "response.output_item.added", "sequence_number": 2,
                                    "item": "x"}, "response.output_item.added.item"),
                                  ({"type": "response.completed", "sequence_number": 2,
                                    "response": response_object(output={})},
                                   "response.completed.response.output")):
            with self.subTest(field=field_name), \
                    self.assertRaisesRegex(yc_runs.StreamError, re.escape(field_name)):
                yc_runs._ResponsesStreamState().feed(sse_bytes(event))

    def test_unknown_types_done_markers_and_duplicate_keys_are_passed_over(self) -> None:
        data = (sse_bytes(self.CREATED, {"type": "response.reasoning.delta", "sequence_number": 2},
                              {"type": "response.web_search_call.searching", "sequence_number": 3})
                + b'data:{"type":"response.output_text.delta","sequence_number":4,"output_index":0,'
                  b'"content_index":0,"delta":"x","delta":"y","valid":true,"valid":true}\n\n'
                + b"data:[DONE]\n\n")
        events = yc_runs._ResponsesStreamState().feed(data)
        self.assertEqual([(e.delta, e.stream_cursor.current_event_idx) for e in events], [("y", 4)])

    def test_the_type_may_come_from_the_event_field_alone(self) -> None:
        data = b'event:response.output_text.delta\ndata:{"sequence_number":2,"delta":"hi"}\n\n'
        self.assertEqual([e.delta for e in yc_runs._ResponsesStreamState().feed(data)], ["hi"])
        with self.assertRaisesRegex(yc_runs.StreamError, "no type"):
            yc_runs._ResponsesStreamState().feed(b'data:{"sequence_number":2}\n\n')

    def test_two_text_parts_read_as_the_final_message_does(self) -> None:
        state = yc_runs._ResponsesStreamState()
        events = state.feed(sse_bytes(self.delta(1, "one"), self.delta(2, "two", 1),
                                          self.completed(3, "one", "two")))
        self.assertEqual([e.text for e in events], ["one", "one\ntwo", "one\ntwo"])
        self.assertEqual("".join(e.delta for e in events), "one\ntwo")
        assert events[1].partial_message is not None
        self.assertEqual(events[1].partial_message.parts, ("one", "two"))

    def test_failed_and_error_events_end_the_stream_as_error_events(self) -> None:
        failed = {"type": "response.failed", "sequence_number": 2, "response": response_object(
            status="failed", error={"code": "server_error", "message": "boom"})}
        (event,) = yc_runs._ResponsesStreamState().feed(sse_bytes(self.CREATED, failed))
        self.assertIs(event.status, yc_runs.StreamEvent.ERROR)
        self.assertEqual(str(event.error), "boom (server_error)")
        self.assertTrue(event.is_failed)
        error = {"type": "error", "sequence_number": 2, "code": "rate_limit_exceeded",
                 "message": "slow down", "param": None}
        state = yc_runs._ResponsesStreamState()
        (event,) = state.feed(sse_bytes(self.CREATED, error))
        self.assertIs(event.status, yc_runs.StreamEvent.ERROR)
        self.assertEqual(str(event.error), "slow down (rate_limit_exceeded)")
        self.assertTrue(state.done)
        self.assertEqual(state.end(), [])
        state = yc_runs._ResponsesStreamState()
        state.secrets = lambda: ["AQVNsecret42"]
        leaky = dict(error, message="bad key AQVNsecret42, header Api-Key AQVNother123456")
        (event,) = state.feed(sse_bytes(leaky))
        self.assertEqual(str(event.error), "bad key ***, header Api-Key *** (rate_limit_exceeded)")

    def test_incomplete_is_done_with_a_truncated_or_filtered_message(self) -> None:
        for reason, status in (("max_output_tokens", yc_runs.MessageStatus.TRUNCATED),
                               ("content_filter", yc_runs.MessageStatus.FILTERED_CONTENT)):
            with self.subTest(reason=reason):
                incomplete = {"type": "response.incomplete", "sequence_number": 3,
                              "response": response_object(
                                  status="incomplete", incomplete_details={"reason": reason},
                                  output=[text_item("Прив")])}
                events = yc_runs._ResponsesStreamState().feed(
                    sse_bytes(self.delta(2, "Прив"), incomplete))
                self.assertIs(events[-1].status, yc_runs.StreamEvent.DONE)
                assert events[-1].completed_message is not None
                self.assertIs(events[-1].completed_message.status, status)
                self.assertEqual(events[-1].text, "Прив")


class ResponsesCapturedStreamTest(unittest.TestCase):
    def assert_plain(self, events: List[yc_runs.RunStreamEvent]) -> None:
        self.assertEqual([e.status for e in events],
                         [yc_runs.StreamEvent.PARTIAL_MESSAGE] * 2 + [yc_runs.StreamEvent.DONE])
        self.assertEqual([e.text for e in events], ["Привет", "Привет, мир!", "Привет, мир!"])
        self.assertEqual([e.delta for e in events], ["Привет", ", мир!", ""])
        self.assertEqual([e.stream_cursor.current_event_idx for e in events], [5, 6, 10])
        done = events[-1]
        self.assertEqual(done.usage, yc_runs.Usage(15, 4, 19))
        assert done.completed_message is not None
        self.assertIs(done.completed_message.status, yc_runs.MessageStatus.COMPLETED)
        self.assertEqual(done.completed_message.id, "01fdcf10-0f44-47fc-a098-c9533af6e822")

    def assert_func(self, events: List[yc_runs.RunStreamEvent]) -> None:
        self.assertEqual([e.status for e in events], [yc_runs.StreamEvent.TOOL_CALLS])
        (call,) = events[0].tool_calls
        self.assertEqual((call.name, call.arguments, call.call_id),
                         ("get_weather", {"city": "Казань"}, "get_weather"))
        self.assertEqual(events[0].usage, yc_runs.Usage(86, 13, 99))
        self.assertEqual(events[0].stream_cursor.current_event_idx, 7)

    def test_plain_capture_decodes_to_partial_messages_and_done(self) -> None:
        events, state = sse_events([capture_bytes("plain.sse")])
        self.assert_plain(events)
        self.assertEqual(state.response_id, "ff635965-2c99-44f5-aa1e-2d84ffc68733")
        assert state.response is not None
        result = state.response.result
        self.assertIs(result.status, yc_runs.RunStatus.COMPLETED)
        self.assertEqual(result.text, "Привет, мир!")
        self.assertEqual(state.response.created_at,
                         datetime(2026, 9, 24, 15, 10, 6, tzinfo=timezone.utc))
        self.assertEqual(state.response.assistant_id,
                         "gpt://b1gxxxxxxxxxxxxxxxxx/yandexgpt-5-lite/latest")

    def test_function_call_capture_decodes_to_tool_calls(self) -> None:
        events, state = sse_events([capture_bytes("func.sse")])
        self.assert_func(events)
        assert state.response is not None
        self.assertIs(state.response.status, yc_runs.RunStatus.TOOL_CALLS)
        self.assertEqual(state.response.result.tool_calls, events[0].tool_calls)

    def test_captures_decode_the_same_at_every_two_piece_split(self) -> None:
        for name, check in (("plain.sse", self.assert_plain), ("func.sse", self.assert_func)):
            data = capture_bytes(name)
            whole, _ = sse_events([data])
            check(whole)
            for cut in range(len(data) + 1):  # inside CRLF, UTF-8 characters, the blank line
                events, state = sse_events([data[:cut], data[cut:]])
                if events != whole:
                    self.fail("%s split at byte %d: %r" % (name, cut, events))
                assert state.response is not None

    def test_captures_decode_the_same_in_random_many_piece_splits(self) -> None:
        rng = random.Random(12)
        for name in ("plain.sse", "func.sse"):
            data = capture_bytes(name)
            whole, _ = sse_events([data])
            for _ in range(300):
                pieces = random_split(data, rng, rng.choice([2, 5, 20, 200]))
                self.assertEqual(sse_events(pieces)[0], whole)
            self.assertEqual(sse_events([bytes([b]) for b in data])[0], whole)

    def test_capture_spellings_decode_to_identical_events(self) -> None:
        rng = random.Random(2026)
        for name in ("plain.sse", "func.sse"):
            data = capture_bytes(name)
            whole, _ = sse_events([data])
            for _ in range(150):
                variant = respelled(data, rng)
                pieces = random_split(variant, rng, rng.choice([1, 3, 30]))
                self.assertEqual(sse_events(pieces)[0], whole,
                                 "variant %r" % variant[:300])

    def test_cursor_adds_the_offset_of_the_rounds_before(self) -> None:
        first, state = sse_events([capture_bytes("func.sse")], offset=0)
        self.assertEqual(state.next_offset, 7)
        second, after = sse_events([capture_bytes("plain.sse")], offset=state.next_offset)
        indexes = [e.stream_cursor.current_event_idx for e in first + second]
        self.assertEqual(indexes, [7, 12, 13, 17])
        self.assertEqual(after.next_offset, 17)
        self.assertEqual(after.last_event_idx, 17)


class ListenFastPathTest(unittest.TestCase):
    """The inline paths of listen give, event by event, what the general decoders give
    (_ListenState._event one line at a time; _ResponsesStreamState._event one SSE message at
    a time), whatever the stream holds and wherever the HTTP chunks and the reads cut it."""

    def _line(self, rng: random.Random, idx: int, text: str, odd: float) -> bytes:
        cursor = {"currentEventIdx": str(idx), "numUserEventsReceived": str(rng.randint(0, 3))}
        partial = {"content": [{"text": {"content": text}}]}
        event = {"eventType": "PARTIAL_MESSAGE", "streamCursor": cursor, "partialMessage": partial}
        kind = rng.randrange(20) if rng.random() < odd else -1
        if kind == 0:
            event = {"event_type": "PARTIAL_MESSAGE", "stream_cursor": {
                "current_event_idx": str(idx)}, "partial_message": partial}  # snake_case
        elif kind == 1:
            partial["content"].append({"text": {"content": "second part"}})
        elif kind == 2:
            cursor["currentEventIdx"] = idx  # a number, not the int64 string
        elif kind == 3:
            del cursor["numUserEventsReceived"]
        elif kind == 4:
            event["eventType"] = "SOMETHING_NEW"
        elif kind == 5:
            event["usage"] = {"inputTextTokens": "3"}
        elif kind == 6:
            return b'{"error": {"grpcCode": 13, "message": "internal"}}'
        elif kind == 7:
            return b'{"result": {"eventType": "PARTIAL_MESSAGE", "partialMessage": 5}}'
        elif kind == 8:
            cursor["currentEventIdx"] = "\u0661"  # an Arabic-Indic digit: not a cursor
        elif kind == 9:
            partial["content"][0]["text"]["content"] = 7
        elif kind == 10:
            cursor["currentEventIdx"] = str(max(0, idx - rng.randint(1, 3)))  # a repeat
        elif kind == 17:
            cursor.clear()  # {}: index 0, as the service's first event has it
        elif kind == 18:
            cursor["current_event_idx"] = cursor.pop("currentEventIdx")  # snake_case in camel
        elif kind == 19:
            cursor["somethingNew"] = "1"
        if rng.random() < 0.5 and kind not in (3, 17, 18):
            del cursor["numUserEventsReceived"]  # 0, left out as proto3 JSON leaves it out
        line = json.dumps({"result": event}, ensure_ascii=rng.random() < 0.5).encode()
        if kind == 11:
            line = b"\xef\xbb\xbf" + line  # a BOM
        elif kind == 12:
            line = b"  " + line + b" \t"
        elif kind == 13:
            line = line[:-1] + b"\n}"  # the object goes on on the next line
        elif kind == 14:
            line = line[:rng.randrange(1, len(line))]  # cut short: not JSON
        elif kind == 15:
            line = line.replace(b"}", b"\xff}", 1)  # not UTF-8
        elif kind == 16:
            line = b"[" + line + b"]"
        return line

    def _done(self, rng: random.Random, idx: int, text: str, odd: float) -> bytes:
        """A DONE line: the recorded one with this cursor and text, or a variation of it."""
        done = json.loads(recorded()["listen_lines"][2])
        event = done["result"]
        cursor = event["streamCursor"]
        cursor["currentEventIdx"] = str(idx)
        event["completedMessage"]["content"]["content"][0]["text"]["content"] = \
            text if rng.random() < 0.8 else "another text"
        kinds = [rng.randrange(11) for _ in range(rng.choice((1, 1, 2)))] \
            if rng.random() < odd * 2 else []
        for kind in kinds:
            self._vary_done(event, cursor, idx, kind)
        return json.dumps(done, ensure_ascii=rng.random() < 0.5).encode()

    @staticmethod
    def _vary_done(event: Dict[str, Any], cursor: Dict[str, Any], idx: int, kind: int) -> None:
        if kind == 0:
            cursor["numUserEventsReceived"] = "2"
        elif kind == 1:
            cursor["currentEventIdx"] = "0"  # a repeat, once the first event is out
        elif kind == 2:
            event["usage"] = {"inputTextTokens": "3", "completionTokens": "5"}
        elif kind == 3:
            event["completedMessage"]["createdAt"] = "yesterday"
        elif kind == 4:
            event["completedMessage"] = "done"
        elif kind == 8:
            cursor["currentEventIdx"] = idx
        elif not isinstance(event["completedMessage"], dict):
            return  # the variations below change the message
        elif kind == 5:
            event["completedMessage"]["labels"] = {"k": "v"}
        elif kind == 6:
            event["completedMessage"]["status"] = "SOMETHING_NEW"
        elif kind == 7:
            event["completedMessage"]["content"]["content"].append({"text": {"content": "2"}})
        elif kind == 9:
            event["completedMessage"]["author"] = {"id": 5}
        elif kind == 10:
            event["completedMessage"].pop("createdAt", None)

    def _body(self, rng: random.Random) -> bytes:
        lines: List[bytes] = []
        text = ""
        odd = rng.choice([0.0, 0.03, 0.3])  # how often a line is not the usual one
        for idx in range(rng.randint(1, 40)):
            text = text + rng.choice(["a", " b", "ж", "😀", "\n"]) \
                if rng.random() < 0.9 else "restart"
            lines.append(self._line(rng, idx, text, odd))
            if rng.random() < 0.1:
                lines.append(rng.choice([b"", b"   ", b"\r"]))
        if rng.random() < 0.7:
            lines.append(self._done(rng, len(lines), text, odd))
        newline = b"\r\n" if rng.random() < 0.3 else b"\n"
        body = newline.join(lines)
        return body + (newline if rng.random() < 0.8 else b"")

    @staticmethod
    def _fast(state: Any, pieces: List[bytes]) -> Tuple[List[str], str]:
        events: List[str] = []
        try:
            for piece in pieces:
                for event in state.feed(piece):
                    events.append(repr(event) + repr(vars(event)))
                if state.done:
                    return events, ""
            for event in state.end():
                events.append(repr(event) + repr(vars(event)))
        except yc_runs.YCRunsError as exc:
            return events, "%s: %s" % (type(exc).__name__, exc)
        return events, ""

    def _general(self, body: bytes) -> Tuple[List[str], str]:
        state = yc_runs._ListenState("run-1", 0)
        events: List[str] = []
        *lines, tail = body.split(b"\n")
        try:
            for line in lines:
                event = state._event(line)
                if event is not None:
                    events.append(repr(event) + repr(vars(event)))
                    if state.done:
                        return events, ""
            event = state._event(tail) if tail else None
            if event is not None:
                events.append(repr(event) + repr(vars(event)))
        except yc_runs.YCRunsError as exc:
            return events, "%s: %s" % (type(exc).__name__, exc)
        return events, ""

    @staticmethod
    def _cut(data: bytes, rng: random.Random) -> List[bytes]:
        pieces = []
        while data:
            size = rng.choice([1, 2, 7, 64, 300, 5000])
            pieces.append(data[:size])
            data = data[size:]
        return pieces

    def test_the_fast_path_gives_the_general_decoders_events_at_any_cut(self) -> None:
        rng = random.Random(15)
        for _ in range(1000):
            body = self._body(rng)
            chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in self._cut(body, rng))
            wire = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + chunked \
                + b"0\r\n\r\n"
            parser = yc_runs._ResponseParser("GET")
            pieces: List[bytes] = []
            for read in self._cut(wire, rng):  # socket reads
                parser.feed(read)
                while True:
                    event = parser.next_event()
                    if event is None or event.__class__ is yc_runs._End:
                        break
                    if event.__class__ is bytes:
                        pieces.append(event)
            self.assertEqual(b"".join(pieces), body)
            fast = self._fast(yc_runs._ListenState("run-1", 0), pieces)
            self.assertEqual(fast, self._general(body), body)

    @staticmethod
    def _sse_by_the_rules(body: bytes) -> List[Tuple[str, str, str]]:
        """(event, data, last id) of each message, by the WHATWG rules read line by line."""
        text = body.decode("utf-8")
        text = text[1:] if text.startswith("\ufeff") else text
        messages, data, event, last_id = [], [], "", ""
        for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")[:-1]:
            if not line:
                if data:
                    messages.append((event or "message", "\n".join(data), last_id))
                data, event = [], ""
                continue
            name, colon, value = line.partition(":")
            if not name and colon:
                continue
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id" and "\0" not in value:
                last_id = value
        return messages

    def test_sse_lines_cut_anywhere_decode_as_the_rules_say(self) -> None:
        rng = random.Random(150)
        spellings = ["data:%s", "data: %s", "data:  %s", "data", ": keep-alive", "event: e%d",
                     "event:e%d", "event:  e%d", "event", "id: %d", "retry: 5", "dat: x",
                     "data:%s\u0436", ""]
        for _ in range(300):
            lines = []
            for i in range(rng.randint(1, 30)):
                spelling = rng.choice(spellings)
                if "%s" in spelling:
                    spelling = spelling % json.dumps({"type": "t", "i": i})
                elif "%d" in spelling:
                    spelling = spelling % i
                lines.append(spelling)
            newline = rng.choice(["\n", "\r\n", "\r"])
            body = ("\ufeff" if rng.random() < 0.2 else "") + newline.join(lines) + newline * 2
            data = body.encode("utf-8")
            decoder = yc_runs._SSEDecoder()
            got = [tuple(m) for piece in self._cut(data, rng) for m in decoder.feed(piece)]
            if data.endswith(b"\r"):
                got += [tuple(m) for m in decoder.feed(b"x")]  # a CR is a line end once seen
            self.assertEqual(got, self._sse_by_the_rules(data), body)

    def _response_events(self, rng: random.Random) -> List[Dict[str, Any]]:
        created = {"type": "response.created", "sequence_number": 1,
                   "response": response_object(status="in_progress", output=[])}
        events: List[Dict[str, Any]] = [created]
        text: List[str] = []
        odd = rng.choice([0.0, 0.05, 0.3])
        for number in range(2, rng.randint(3, 40)):
            delta: Dict[str, Any] = {"type": "response.output_text.delta", "item_id": "msg-1",
                                     "output_index": 0, "content_index": 0,
                                     "sequence_number": number, "delta": rng.choice(
                                         ["a", " b", "\u0436", "\n", ""])}
            kind = rng.randrange(9) if rng.random() < odd else -1
            if kind == 0:
                delta["content_index"] = 1  # a second part
            elif kind == 1:
                delta["sequence_number"] = max(1, number - rng.randint(1, 3))  # a replay
            elif kind == 2:
                delta["sequence_number"] = str(number)
            elif kind == 3:
                del delta["item_id"]
            elif kind == 4:
                delta["delta"] = 5
            elif kind == 5:
                delta["type"] = "response.something_new"
            elif kind == 6:
                delta["output_index"] = "0"
            elif kind == 7:
                delta = {"type": "error", "sequence_number": number, "code": "x", "message": "m"}
            elif kind == 8:
                delta["sequence_number"] = True
            if delta.get("type") == "response.output_text.delta" \
                    and isinstance(delta.get("delta"), str):
                text.append(delta["delta"])
            events.append(delta)
        if rng.random() < 0.7:
            events.append({"type": "response.completed", "sequence_number": len(events) + 1,
                           "response": response_object(output=[{
                               "type": "message", "id": "msg-1", "role": "assistant",
                               "status": "completed", "content": [{
                                   "type": "output_text", "text": "".join(text),
                                   "annotations": []}]}])})
        return events

    def test_the_responses_fast_path_gives_the_general_decoders_events(self) -> None:
        rng = random.Random(1500)
        for _ in range(300):
            body = b""
            for event in self._response_events(rng):
                data = json.dumps(event, ensure_ascii=rng.random() < 0.5)
                spelling = rng.randrange(12)
                if spelling == 0:
                    data += " "  # after the value: for the general decoder
                elif spelling == 1:
                    data = data[:-1]  # not JSON
                elif spelling == 2:
                    data = "[%s]" % data
                body += ("data: %s\n\n" % data).encode()
            fast = yc_runs._ResponsesStreamState("resp-1")
            got, failure = [], ""
            try:
                for piece in self._cut(body, rng):
                    got += [repr(e) + repr(vars(e)) for e in fast.feed(piece)]
                    if fast.done:
                        break
                fast.end()
            except yc_runs.YCRunsError as exc:
                failure = "%s: %s" % (type(exc).__name__, exc)
            general = yc_runs._ResponsesStreamState("resp-1")
            want, expected = [], ""
            try:
                for message in general.sse.feed(body):
                    event = general._event(message)
                    if event is not None:
                        want.append(repr(event) + repr(vars(event)))
                    if general.done:
                        break
                general.end()
            except yc_runs.YCRunsError as exc:
                expected = "%s: %s" % (type(exc).__name__, exc)
            self.assertEqual((got, failure), (want, expected), body)


class MessageFastPathTest(unittest.TestCase):
    """_decode_message's inline path for the usual message gives what the general decoder
    (_decode_message_fields) gives, value or error, whatever the message holds."""

    def test_random_messages_decode_as_the_general_decoder_does(self) -> None:
        rng = random.Random(1515)
        good: Dict[str, List[Any]] = {
            "id": ["m1", "", None, 7], "threadId": ["t", None, 1.5, []],
            "createdBy": ["u", None, True],
            "createdAt": ["2025-04-02T17:39:16.084751614Z", "2025-04-02T17:39:16+03:00", None,
                          "", "yesterday", {"seconds": "5", "nanos": 7}, 5],
            "author": [{"id": "a", "role": "ASSISTANT"}, {"id": "a"}, {}, None, "x",
                       {"id": 3, "role": "USER"}, {"id": "a", "role": None},
                       {"id": "a", "extra": 1}, {"id": "a", "role": "USER", "roleX": "y"}],
            "content": [{"content": [{"text": {"content": "hi"}}]}, {"content": []}, None,
                        {"content": [{"text": {"content": 5}}]}, {"content": "x"}, [],
                        {"content": [{"text": {"content": "a"}}, {"image": {}}]}],
            "status": ["COMPLETED", "MESSAGE_STATUS_UNSPECIFIED", None, "NEW_ONE", 1, "1", ""],
            "labels": [None, {}, {"k": "v"}, {"k": 1}, [], {"k": None}],
            "citations": [None, [], [{"sources": []}], "x", ()],
            "thread_id": ["snake"], "created_at": ["2025-04-02T17:39:16Z"], "other": [1],
        }
        usual = ["id", "threadId", "createdBy", "createdAt", "author", "content", "status"]
        for case in range(3000):
            names = [n for n in good if (rng.random() < 0.85 if n in usual else
                                         rng.random() < 0.08)]
            obj = {n: good[n][0] if rng.random() < 0.6 else rng.choice(good[n]) for n in names}
            value: Any = obj if case % 50 else rng.choice([None, [], "x", obj])
            results = [outcome(decode, value, "M") for decode in (
                yc_runs._decode_message, yc_runs._decode_message_fields)]
            self.assertEqual(results[0], results[1], obj)
            if results[0][0] == "ok":
                fast, general = results[0][1], results[1][1]
                self.assertEqual(list(vars(fast)), list(vars(general)))
                self.assertIsNot(fast.labels, obj.get("labels"))

    def test_random_timestamps_decode_as_the_pattern_does(self) -> None:
        yc_runs._warm_decoders()  # as the first request does: then the usual form's short way
        self.assertEqual(bool(yc_runs._ZULU), sys.version_info >= (3, 11))
        rng = random.Random(1516)
        seeds = ["2025-04-02T17:39:16.084751614Z", "2025-04-02T17:39:16Z", "2025-04-02 17:39:16z",
                 "1999-12-31t23:59:60.5Z", "2025-02-30T00:00:00Z", "2025-04-02T17:39:16.1234567890Z",
                 "2025-04-02T17:39:16+03:00", "2025-04-02T17:39:16.5-0130", "0000-01-01T00:00:00Z"]
        alphabet = "0123456789-:.TtZz +\u0663\u00b2x"
        for case in range(5000):
            value = list(rng.choice(seeds))
            for _ in range(rng.choice((0, 0, 1, 1, 2, 3))):
                i = rng.randrange(len(value) + 1)
                action = rng.random()
                if action < 0.4 and i < len(value):
                    value[i] = rng.choice(alphabet)
                elif action < 0.7:
                    value.insert(i, rng.choice(alphabet))
                elif i < len(value):
                    del value[i]
            text: Any = "".join(value)
            if case % 97 == 0:
                text = rng.choice([None, "", 5, {"seconds": "3", "nanos": 5}, text.encode()])
            results = [outcome(decode, text, "T") for decode in (
                yc_runs._timestamp, yc_runs._timestamp_fields)]
            self.assertEqual(results[0], results[1], text)

    def test_random_runs_decode_as_with_the_general_field_lookup(self) -> None:
        # a key no decoder reads makes _getter fall back to _get for every field: the same Run
        rng = random.Random(1517)
        run = recorded()["get_run"]["COMPLETED"]
        names = ["id", "assistantId", "threadId", "createdBy", "createdAt", "labels", "tools",
                 "customCompletionOptions", "customPromptTruncationOptions", "customResponseFormat",
                 "usage", "state"]
        extra: Dict[str, Any] = {"labels": {"a": "b"}, "tools": [{"function": {"name": "f"}}],
                                 "customCompletionOptions": {"temperature": 0.5, "maxTokens": "9"},
                                 "customPromptTruncationOptions": {"maxPromptTokens": "5"},
                                 "customResponseFormat": {"jsonSchema": {}}}
        for _case in range(1500):
            obj = copy.deepcopy(run)
            obj.update({k: v for k, v in extra.items() if rng.random() < 0.3})
            obj["state"] = dict(obj["state"])
            if rng.random() < 0.2:
                obj["state"]["toolCallList"] = {"toolCalls": []}
            for name in names:
                roll = rng.random()
                if name in obj and roll < 0.1:
                    obj[yc_runs._snake(name)] = obj.pop(name)
                elif name in obj and roll < 0.15:
                    obj[name] = None
                elif name in obj and roll < 0.2:
                    obj[yc_runs._snake(name)] = obj[name]
                    obj[name] = None
                elif name in obj and roll < 0.23:
                    obj[name] = rng.choice([5, "x", [], {}])
            state = obj.get("state") if isinstance(obj.get("state"), dict) else None
            if state is not None and rng.random() < 0.2:
                state["completed_message"] = state.pop("completedMessage", None)
            general = copy.deepcopy(obj)
            general["zzUnread"] = 1
            if isinstance(general.get("state"), dict):
                general["state"]["zzUnread"] = 1
            results = [outcome(yc_runs._decode_run, value, yc_runs.Run, None)
                       for value in (obj, general)]
            self.assertEqual(repr(results[0]), repr(results[1]), obj)


# ============================================================================
# Plans (sans-IO): retries, waits, listen's linger and resume, on a fake clock
# ============================================================================


def fed(pump: Any, *pieces: bytes) -> List[Any]:
    """The events a driver hands on from a listen's _Pump given these body pieces."""
    events: List[Any] = []
    for piece in pieces:
        more = pump.feed(piece)
        while more:
            events += more
            more = pump.feed(None) if pump.piece else None
    return events


class PlanTest(unittest.TestCase):
    def test_wait_sleeps_the_poll_interval_and_gives_up_at_poll_timeout(self) -> None:
        options, clock = options_on_a_fake_clock()
        plan = yc_runs._wait_plan(options, "r", None, 1.0, 0.4)
        sleeps = []
        need = next(plan)
        with self.assertRaises(yc_runs.WaitTimeoutError) as caught:
            while True:
                if isinstance(need, yc_runs._Open):
                    self.assertLessEqual(need.deadline, 1001.0)  # a poll in flight is bounded too
                    need = plan.send((answer_head(), "req"))
                elif isinstance(need, yc_runs._Read):
                    need = plan.send(run_json_bytes("IN_PROGRESS"))
                else:
                    sleeps.append(need.seconds)
                    clock.now += need.seconds
                    need = plan.send(None)
        self.assertEqual(sleeps, [0.4, 0.4, pytest_approx(0.2)])
        self.assertEqual(caught.exception.status, yc_runs.RunStatus.IN_PROGRESS)

    def test_a_poll_that_times_out_past_poll_timeout_is_a_wait_timeout(self) -> None:
        options, clock = options_on_a_fake_clock()
        plan = yc_runs._wait_plan(options, "r", None, 2.0, None)
        next(plan)
        clock.now += 2.5
        with self.assertRaises(yc_runs.WaitTimeoutError):
            plan.throw(yc_runs.APITimeoutError("no answer"))

    def test_retries_honour_retry_after_and_stop_at_total_timeout(self) -> None:
        options, clock = options_on_a_fake_clock(max_retries=10, total_timeout=2.0)
        plan = yc_runs._call_plan(options, yc_runs._get_request("r"), None)
        busy = json.dumps({"code": 14, "message": "busy"}).encode()
        sleeps, need = [], next(plan)
        with self.assertRaises(yc_runs.ServerError):
            while True:
                if isinstance(need, yc_runs._Open):
                    need = plan.send((answer_head(503, retry_after="0.75"), "req"))
                elif isinstance(need, yc_runs._Read):
                    need = plan.send(busy)
                else:
                    sleeps.append(need.seconds)
                    clock.now += need.seconds
                    need = plan.send(None)
        self.assertEqual(sleeps, [0.75, 0.75])  # a third would end past the 2 s bound

    def test_listen_lingers_after_the_final_event_then_ends(self) -> None:
        options, _clock = options_on_a_fake_clock(timeout=30)
        plan = options.wire.listen(options, yc_runs._RunState("r"), 0, 30.0, True)
        need = next(plan)
        self.assertIsInstance(need, yc_runs._Open)
        pump = plan.send((answer_head(), "req"))
        self.assertIsInstance(pump, yc_runs._Pump)
        self.assertEqual((pump.deadline, pump.wait), (1030.0, 30.0))
        events = fed(pump, listen_line("DONE", 0, "hi") + b"\n")
        self.assertEqual([e.status for e in events], [yc_runs.StreamEvent.DONE])
        self.assertEqual(pump.wait, 0.25)  # the linger: the reads after the final event
        self.assertEqual(fed(pump, b"\n"), [])  # whatever follows is read, not delivered
        with self.assertRaises(StopIteration):
            plan.throw(yc_runs.APITimeoutError("linger over"))

    def test_a_process_warms_each_wire_up_on_its_first_listen_only(self) -> None:
        for api in ("assistants", "responses"):
            with self.subTest(api=api):
                options, _clock = options_on_a_fake_clock(api=api)
                yc_runs._WARMED.discard(api)
                first = options.wire.listen(options, yc_runs._RunState("r"), 0, 5.0, True)
                second = options.wire.listen(options, yc_runs._RunState("r"), 0, 5.0, True)
                warm = next(first).warm
                self.assertTrue(callable(warm))
                warm()  # decodes its made-up stream to its end, or raises
                self.assertIsNone(next(second).warm)
                first.close()
                second.close()

    def test_the_warm_up_streams_are_what_the_services_send(self) -> None:
        # made up, and decoded by the general decoders as real ones: so the warm-up runs the
        # paths real streams take
        state = yc_runs._ListenState("r", 0)
        events = [state._event(line.rstrip(b"\n")) for line in yc_runs._warm_lines()]
        self.assertEqual([(e.status.name, e.text, e.stream_cursor.current_event_idx)
                          for e in events if e is not None],
                         [("PARTIAL_MESSAGE", "Hell", 0), ("PARTIAL_MESSAGE", "Hello, w", 1),
                          ("PARTIAL_MESSAGE", "Hello, world", 2), ("DONE", "Hello, world", 3)])
        stream = yc_runs._ResponsesStreamState("resp-1")
        events = [e for raw in yc_runs._warm_messages() for e in stream.feed(raw)]
        self.assertEqual([(e.status.name, e.delta) for e in events],
                         [("PARTIAL_MESSAGE", "Hell"), ("PARTIAL_MESSAGE", "o, w"),
                          ("PARTIAL_MESSAGE", "orld"), ("DONE", "")])
        self.assertEqual((events[-1].text, events[-1].usage.total_tokens), ("Hello, world", 19))

    def test_a_stall_is_resumed_after_the_last_event(self) -> None:
        options, _clock = options_on_a_fake_clock(max_retries=3)
        plan = options.wire.listen(options, yc_runs._RunState("r"), 0, 5.0, True)
        next(plan)
        pump = plan.send((answer_head(), "req"))
        self.assertEqual(len(fed(pump, listen_line("PARTIAL_MESSAGE", 0, "He") + b"\n")), 1)
        need = plan.throw(yc_runs.APITimeoutError("stalled"))
        self.assertEqual(need, yc_runs._Sleep(0.0))  # the first resume after progress: at once
        need = plan.send(None)
        self.assertIn("eventsStartIdx=1", need.request.target)


    def test_a_resume_after_status_events_is_at_once_every_time(self) -> None:
        # response.created and response.in_progress deliver no event, but the stream went on:
        # each cut after one of them is the first failure since progress, so no backoff
        options, _clock = options_on_a_fake_clock(api="responses", max_retries=2)
        plan = options.wire.listen(options, yc_runs._RunState("resp-1"), 0, 5.0, True)
        events = capture_events("plain.sse")
        need, sleeps = next(plan), []
        for number, raw in events[:3]:
            self.assertIsInstance(need, yc_runs._Open)
            if number > 1:
                self.assertIn("starting_after=%d" % (number - 1), need.request.target)
            pump = plan.send((answer_head(content_type="text/event-stream"), "req"))
            self.assertEqual(fed(pump, raw), [])  # a status event: nothing to hand on
            need = plan.throw(yc_runs.APIConnectionError("cut"))
            sleeps.append(need.seconds)
            need = plan.send(None)
        self.assertEqual(sleeps, [0.0, 0.0, 0.0])  # max_retries=2 would have ended it otherwise


    def test_the_token_plan_fetches_within_the_deadline_and_names_the_service(self) -> None:
        credentials = yc_runs.OAuthCredentials("y0_oauth", url="https://iam.test/iam/v1/tokens",
                                               timeout=10)
        options, _clock = options_on_a_fake_clock(api_key=None, credentials=credentials)
        plan = yc_runs._token_plan(options, 1003.0)  # the call has 3 s left on the fake clock
        need = next(plan)
        self.assertIsInstance(need, yc_runs._Fetch)
        self.assertEqual((need.method, need.url, need.timeout),
                         ("POST", "https://iam.test/iam/v1/tokens", 3.0))
        self.assertEqual(json.loads(need.body), {"yandexPassportOauthToken": "y0_oauth"})
        expires = rfc3339(datetime.now(UTC) + timedelta(hours=12))
        with self.assertRaises(StopIteration) as done:
            plan.send((200, json.dumps({"iamToken": "iam-1", "expiresAt": expires}).encode()))
        self.assertEqual(done.exception.value, "Bearer iam-1")
        plan = yc_runs._token_plan(options, 1003.0)
        next(plan)
        with self.assertRaises(yc_runs.CredentialsError) as caught:
            plan.throw(yc_runs.APIConnectionError("refused", connected=False))
        self.assertIn("https://iam.test/iam/v1/tokens", str(caught.exception))
        self.assertNotIn("y0_oauth", str(caught.exception))


class RetryTest(unittest.TestCase):
    def test_retry_delay_sets_the_first_backoff_for_calls_and_listens(self) -> None:
        busy = json.dumps({"code": 14, "message": "busy"}).encode()
        for first, bounds in ((0.0, [(0.0, 0.0)] * 3), (0.2, [(0.15, 0.2), (0.3, 0.4), (0.6, 0.8)]),
                              (8.0, [(6.0, 8.0)] * 3)):
            with self.subTest(retry_delay=first):
                options, _clock = options_on_a_fake_clock(max_retries=3, retry_delay=first)
                plan = yc_runs._call_plan(options, yc_runs._get_request("r"), None)
                sleeps, need = [], next(plan)
                with self.assertRaises(yc_runs.ServerError):
                    while True:
                        if isinstance(need, yc_runs._Open):
                            need = plan.send((answer_head(503), "req"))
                        elif isinstance(need, yc_runs._Read):
                            need = plan.send(busy)
                        else:
                            sleeps.append(need.seconds)
                            need = plan.send(None)
                self.assertEqual(len(sleeps), 3)
                for slept, (low, high) in zip(sleeps, bounds):
                    self.assertTrue(low <= slept <= high, (sleeps, bounds))
                listen = options.wire.listen(options, yc_runs._RunState("r"), 0, 5.0, True)
                next(listen)
                need = listen.throw(yc_runs.APIConnectionError("refused", connected=False))
                self.assertTrue(bounds[0][0] <= need.seconds <= bounds[0][1], need)

    def test_retry_delay_is_checked(self) -> None:
        for bad, error in ((-1, ValueError), (8.5, ValueError), (float("nan"), ValueError),
                           ("1", TypeError), (True, TypeError), (None, TypeError)):
            with self.subTest(retry_delay=bad), self.assertRaises(error) as caught:
                yc_runs.Client(api_key="k", base_url="http://127.0.0.1:9", retry_delay=bad)
            self.assertIn("retry_delay", str(caught.exception))
        with self.assertRaises(ValueError):
            yc_runs.AsyncClient(api_key="k", base_url="http://127.0.0.1:9", retry_delay=-1)

    def test_idempotent_calls_retry_retryable_statuses(self) -> None:
        for status in (429, 500, 502, 503, 504):
            with self.subTest(status=status):
                retry = yc_runs._Retry(2, idempotent=True)
                delay = retry.delay(yc_runs.ServerError("x", status=status))
                self.assertIsNotNone(delay)
                assert delay is not None
                self.assertLessEqual(delay, 0.5)

    def test_other_statuses_are_never_retried(self) -> None:
        for status in (400, 401, 403, 404, 409, 501):
            with self.subTest(status=status):
                self.assertIsNone(yc_runs._Retry(3, idempotent=True).delay(
                    yc_runs.APIError("x", status=status)))

    def test_non_idempotent_calls_do_not_retry_5xx(self) -> None:
        for status in (500, 502, 503, 504):
            with self.subTest(status=status):
                self.assertIsNone(yc_runs._Retry(3, idempotent=False).delay(
                    yc_runs.ServerError("x", status=status)))

    def test_rate_limit_is_retried_for_every_call(self) -> None:
        exc = yc_runs.RateLimitError("slow down", status=429, retry_after=1.5)
        self.assertEqual(yc_runs._Retry(3, idempotent=False).delay(exc), 1.5)
        self.assertEqual(yc_runs._Retry(3, idempotent=True).delay(exc), 1.5)

    def test_connect_failures_are_retried_for_every_call(self) -> None:
        for idempotent in (True, False):
            retry = yc_runs._Retry(3, idempotent=idempotent)
            self.assertIsNotNone(retry.delay(yc_runs.APIConnectionError("refused", connected=False)))
            self.assertIsNotNone(retry.delay(yc_runs.APITimeoutError("connect", connected=False)))

    def test_failures_after_sending_are_not_retried_for_create_or_submit(self) -> None:
        retry = yc_runs._Retry(3, idempotent=False)
        self.assertIsNone(retry.delay(yc_runs.APIConnectionError("reset")))
        self.assertIsNone(retry.delay(yc_runs.APIConnectionError("stale", reused=True)))
        self.assertIsNone(retry.delay(yc_runs.APITimeoutError("slow")))

    def test_idempotent_call_retries_a_dropped_connection(self) -> None:
        retry = yc_runs._Retry(1, idempotent=True)
        self.assertIsNotNone(retry.delay(yc_runs.APIConnectionError("reset")))

    def test_a_stale_pooled_connection_is_retried_once_at_once_without_using_a_retry(self) -> None:
        retry = yc_runs._Retry(0, idempotent=True)
        self.assertEqual(retry.delay(yc_runs.APIConnectionError("stale", reused=True)), 0.0)
        self.assertIsNone(retry.delay(yc_runs.APIConnectionError("stale", reused=True)))

    def test_retries_stop_after_max_retries(self) -> None:
        retry = yc_runs._Retry(3, idempotent=True)
        exc = yc_runs.ServerError("x", status=503, retry_after=0)
        self.assertEqual([retry.delay(exc) for _ in range(5)], [0.0, 0.0, 0.0, None, None])

    def test_retry_after_is_honoured_up_to_a_minute(self) -> None:
        self.assertEqual(yc_runs._Retry(3, True).delay(
            yc_runs.ServerError("x", status=503, retry_after=7)), 7.0)
        self.assertEqual(yc_runs._Retry(3, True).delay(
            yc_runs.RateLimitError("x", status=429, retry_after=60)), 60.0)
        # longer than a minute: raised at once, with retry_after for the caller to act on
        self.assertIsNone(yc_runs._Retry(3, True).delay(
            yc_runs.ServerError("x", status=503, retry_after=3600)))

    def test_backoff_grows_and_is_capped(self) -> None:
        delays = [yc_runs._backoff(n) for n in range(8)]
        self.assertTrue(0.375 <= delays[0] <= 0.5)
        self.assertTrue(all(d <= 8.0 for d in delays))
        self.assertGreater(delays[4], delays[0])

    def test_retry_after_header_parsing(self) -> None:
        self.assertEqual(yc_runs._retry_after("0"), 0.0)
        self.assertEqual(yc_runs._retry_after(" 2.5 "), 2.5)
        self.assertEqual(yc_runs._retry_after("-3"), 0.0)
        self.assertIsNone(yc_runs._retry_after(None))
        self.assertIsNone(yc_runs._retry_after("soon"))
        now = datetime(2025, 4, 7, 14, 0, 0, tzinfo=UTC).timestamp()
        self.assertEqual(yc_runs._retry_after("Mon, 07 Apr 2025 14:00:30 GMT", now=now), 30.0)
        self.assertEqual(yc_runs._retry_after("Mon, 07 Apr 2025 13:00:00 GMT", now=now), 0.0)
        self.assertIsNone(yc_runs._retry_after("Mon, 07 Foo 2025 14:00:30 GMT", now=now))


# ============================================================================
# Clients, sync and async: calls, streams, workflows, both wires
# ============================================================================


class SmokeTest(EmulatorTestCase):
    def test_create_listen_wait_against_the_emulator(self) -> None:
        run = self.client.runs.create("asst", "thread", additional_messages=["hello world"],
                                      stream=True)
        events = list(run.listen())
        self.assertEqual(events[-1].status, yc_runs.StreamEvent.DONE)
        self.assertEqual("".join(e.delta for e in events), "hello world")
        self.assertEqual(run.wait().text, "hello world")


class RunsTest(EmulatorTestCase):
    weather_tool = {"name": "get_weather", "description": "The weather in a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                   "required": ["city"]}}

    def test_create_returns_a_run_snapshot(self) -> None:
        run = self.client.runs.create("asst", "thr", labels={"a": "b"})
        self.assertIsInstance(run, yc_runs.Run)
        self.assertTrue(run.id)
        self.assertEqual((run.assistant_id, run.thread_id, run.labels), ("asst", "thr", {"a": "b"}))
        self.assertIs(run.status, yc_runs.RunStatus.PENDING)
        self.assertIs(run.result.status, yc_runs.RunStatus.PENDING)
        assert run.created_at is not None
        self.assertEqual(run.created_at.tzinfo, UTC)
        self.assertLess(abs((datetime.now(UTC) - run.created_at).total_seconds()), 60)

    def test_get_returns_the_run_as_it_is_now(self) -> None:
        run = self.client.runs.create("asst", "thr", additional_messages=["ping"])
        result = run.wait(poll_interval=0.01)
        fetched = self.client.runs.get(run.id)
        self.assertEqual(fetched.id, run.id)
        self.assertIs(fetched.status, yc_runs.RunStatus.COMPLETED)
        self.assertEqual(fetched.result.text, "ping")
        self.assertEqual(result, fetched.result)
        self.assertIsInstance(fetched.usage, yc_runs.Usage)

    def test_get_of_an_unknown_run_raises_not_found(self) -> None:
        with self.assertRaises(yc_runs.NotFoundError) as caught:
            self.client.runs.get("no-such-run")
        self.assertEqual(caught.exception.status, 404)
        self.assertEqual(caught.exception.grpc_code, 5)

    def test_get_last_by_thread_returns_the_newest_run(self) -> None:
        self.client.runs.create("asst", "thr-x")
        newest = self.client.runs.create("asst", "thr-x")
        self.client.runs.create("asst", "other-thread")
        self.assertEqual(self.client.runs.get_last_by_thread("thr-x").id, newest.id)
        self.assertEqual(self.emu.requests[-1].query, {"threadId": "thr-x"})

    def test_list_follows_page_tokens_and_stops_on_an_empty_token(self) -> None:
        created = [self.client.runs.create("asst", "thr-%d" % i).id for i in range(4)]
        listed = [run.id for run in self.client.runs.list(page_size=2)]
        self.assertEqual(listed, created)
        pages = [r for r in self.emu.requests if r.method == "GET" and r.path == "/assistants/v1/runs"]
        self.assertEqual(len(pages), 2)  # the second page's token is empty: no third request
        self.assertEqual(pages[0].query, {"folderId": "folder-1", "pageSize": "2"})
        self.assertEqual(dict(pages[1].query, pageToken="opaque"),
                         {"folderId": "folder-1", "pageSize": "2", "pageToken": "opaque"})
        self.client.runs.create("asst", "thr-5")
        self.assertEqual(len(list(self.client.runs.list(page_size=2))), 5)
        pages = [r for r in self.emu.requests if r.path == "/assistants/v1/runs" and r.method == "GET"]
        self.assertEqual(len(pages), 5)  # 2 before, then 3 pages for 5 runs

    def test_list_fetches_pages_only_as_the_iteration_needs_them(self) -> None:
        for i in range(3):
            self.client.runs.create("asst", "thr-%d" % i)
        before = len(self.emu.requests)
        runs = self.client.runs.list(page_size=1)
        self.assertEqual(len(self.emu.requests), before)
        next(runs)
        self.assertEqual(len(self.emu.requests), before + 1)
        runs.close()

    def test_list_without_a_folder_raises_value_error(self) -> None:
        with yc_runs.Client(base_url=self.emu.url, api_key=API_KEY) as client, \
                self.assertRaises(ValueError) as caught:  # a missing argument, not a credential
            client.runs.list()
        self.assertIn("YC_FOLDER_ID", str(caught.exception))

    def test_listen_yields_events_until_the_final_one(self) -> None:
        text = "one two three four five six"
        run = self.client.runs.create("asst", "thr", stream=True, additional_messages=[text])
        events = list(run.listen())
        S = yc_runs.StreamEvent
        self.assertEqual([e.status for e in events], [S.PARTIAL_MESSAGE, S.PARTIAL_MESSAGE, S.DONE])
        self.assertEqual([e.stream_cursor.current_event_idx for e in events], [0, 1, 2])
        self.assertEqual([e.text for e in events], ["one two ", "one two three four ", text])
        self.assertEqual("".join(e.delta for e in events), text)

    def test_iterating_a_run_listens(self) -> None:
        run = self.client.runs.create("asst", "thr", stream=True, additional_messages=["a b c"])
        via_iter = [(e.status, e.text) for e in run]
        via_listen = [(e.status, e.text) for e in run.listen()]
        self.assertEqual(via_iter, via_listen)
        self.assertEqual(via_iter[-1], (yc_runs.StreamEvent.DONE, "a b c"))

    def test_listen_from_events_start_idx_starts_there(self) -> None:
        run = self.client.runs.create("asst", "thr", stream=True, additional_messages=["a b c"])
        events = list(run.listen(events_start_idx=1))
        self.assertEqual([e.stream_cursor.current_event_idx for e in events], [1, 2])
        self.assertEqual(self.emu.requests[-1].query["eventsStartIdx"], "1")

    def test_submit_tool_results_accepts_one_dict_and_serializes_content_as_json(self) -> None:
        run = self.client.runs.create("asst", "thr", additional_messages=["Moscow"],
                                      tools=[self.weather_tool])
        result = run.wait(poll_interval=0.01)
        self.assertIs(result.status, yc_runs.RunStatus.TOOL_CALLS)
        self.assertEqual(result.tool_calls[0].name, "get_weather")
        self.assertEqual(result.tool_calls[0].arguments, {"city": "Moscow"})
        self.assertIsNone(run.submit_tool_results({"name": "get_weather",
                                                   "content": {"temp": 21, "sky": "\u2600"}}))
        submit = self.emu.requests[-1]
        self.assertEqual((submit.method, submit.path), ("PATCH", "/assistants/v1/runs/submit"))
        self.assertEqual(submit.json["runId"], run.id)
        (item,) = submit.json["toolResultList"]["toolResults"]
        self.assertEqual(item["functionResult"]["name"], "get_weather")
        self.assertIsInstance(item["functionResult"]["content"], str)
        self.assertEqual(json.loads(item["functionResult"]["content"]), {"temp": 21, "sky": "\u2600"})
        final = run.wait(poll_interval=0.01)
        self.assertIs(final.status, yc_runs.RunStatus.COMPLETED)
        self.assertIn("get_weather returned", final.text or "")

    def test_submit_tool_results_accepts_an_iterable(self) -> None:
        self.emu.script("asst", tool_calls=[{"name": n} for n in ("get_weather", "other", "third")])
        run = self.client.runs.create("asst", "thr", additional_messages=["x"],
                                      tools=[self.weather_tool])
        run.wait(poll_interval=0.01)
        results = ({"name": name, "content": content} for name, content in
                   (("get_weather", "sunny"), ("other", 5), ("third", None)))
        run.submit_tool_results(results)
        items = self.emu.requests[-1].json["toolResultList"]["toolResults"]
        self.assertEqual(items, [{"functionResult": {"name": "get_weather", "content": "sunny"}},
                                 {"functionResult": {"name": "other", "content": "5"}},
                                 {"functionResult": {"name": "third", "content": "null"}}])

    def test_get_status_and_get_result_fetch_again(self) -> None:
        run = self.client.runs.create("asst", "thr", additional_messages=["hi there"])
        run.wait(poll_interval=0.01)
        before = len(self.emu.requests)
        self.assertIs(run.get_status(), yc_runs.RunStatus.COMPLETED)
        result = run.get_result()
        self.assertIsInstance(result, yc_runs.RunResult)
        self.assertEqual(result.text, "hi there")
        self.assertEqual(len(self.emu.requests), before + 2)

    def test_wait_returns_on_tool_calls(self) -> None:
        run = self.client.runs.create("asst", "thr", tools=[self.weather_tool])
        result = run.wait(poll_interval=0.01)
        self.assertIs(result.status, yc_runs.RunStatus.TOOL_CALLS)
        self.assertTrue(result.is_succeeded)

    def test_runs_wait_by_id_gives_the_result_of_the_run(self) -> None:
        run = self.client.runs.create("asst", "thr", additional_messages=["by id"])
        result = self.client.runs.wait(run.id, poll_interval=0.01)
        self.assertEqual((result.status, result.text), (yc_runs.RunStatus.COMPLETED, "by id"))

        async def main() -> yc_runs.RunResult:
            async with yc_runs.AsyncClient(base_url=self.emu.url, api_key=API_KEY) as client:
                return await client.runs.wait(run.id, poll_interval=0.01)

        self.assertEqual(asyncio.run(main()), result)

    def test_wait_timeout_error_is_a_timeout_error_with_the_last_status(self) -> None:
        self.emu.script("slow-asst", delay=30)
        run = self.client.runs.create("slow-asst", "thr")
        started = time.monotonic()
        with self.assertRaises(yc_runs.WaitTimeoutError) as caught:
            run.wait(poll_timeout=0.05, poll_interval=0.01)
        self.assertLess(time.monotonic() - started, 3)
        self.assertIsInstance(caught.exception, TimeoutError)
        self.assertIs(caught.exception.status, yc_runs.RunStatus.PENDING)
        self.assertEqual(caught.exception.run_id, run.id)
        self.assertIn(run.id, str(caught.exception))

    def test_failed_run_result_carries_the_error(self) -> None:
        self.emu.script("broken", error="the prompt does not fit")
        result = self.client.runs.create("broken", "thr").wait(poll_interval=0.01)
        self.assertTrue(result.is_failed)
        self.assertEqual(str(result.error), "the prompt does not fit")
        with self.assertRaises(ValueError):
            result.message  # noqa: B018

    def test_cancel_raises_unsupported_operation_without_a_request(self) -> None:
        run = self.client.runs.create("asst", "thr")
        before = len(self.emu.requests)
        with self.assertRaises(yc_runs.UnsupportedOperationError) as caught:
            run.cancel()
        self.assertIsInstance(caught.exception, NotImplementedError)
        self.assertEqual(len(self.emu.requests), before)

    def test_run_is_a_snapshot_and_refresh_fetches_anew(self) -> None:
        run = self.client.runs.create("asst", "thr", additional_messages=["x"])
        run.wait(poll_interval=0.01)
        self.assertIs(run.status, yc_runs.RunStatus.PENDING)
        self.assertIs(run.result.status, yc_runs.RunStatus.PENDING)
        refreshed = run.refresh()
        self.assertIs(refreshed.status, yc_runs.RunStatus.COMPLETED)
        with self.assertRaises(dataclasses.FrozenInstanceError):
            run.status = yc_runs.RunStatus.COMPLETED  # type: ignore[misc]


class TransportTest(EmulatorTestCase):
    def test_keep_alive_reuses_one_connection(self) -> None:
        run = self.client.runs.create("asst", "thr")
        for _ in range(20):
            self.client.runs.get(run.id)
        self.assertEqual(self.client._transport.connections_opened, 1)

    def test_one_client_shared_by_8_threads(self) -> None:
        runs = [self.client.runs.create("asst", "thr-%d" % i) for i in range(8)]
        errors: List[BaseException] = []
        seen: List[Tuple[str, str]] = []
        start = threading.Barrier(8)

        def worker(run_id: str) -> None:
            try:
                start.wait(5)
                for _ in range(10):
                    seen.append((run_id, self.client.runs.get(run_id).id))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(run.id,)) for run in runs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        self.assertEqual(errors, [])
        self.assertEqual(len(seen), 80)
        self.assertTrue(all(asked == got for asked, got in seen))
        self.assertLessEqual(self.client._transport.connections_opened, 8)

    def test_breaking_out_of_listen_closes_its_connection(self) -> None:
        closed = threading.Event()

        def handler(conn: socket.socket, request: bytes) -> bool:
            conn.sendall(stream_head() + one_chunk(listen_line("PARTIAL_MESSAGE", 0, "a") + b"\n"))
            conn.settimeout(5)
            try:
                if conn.recv(1) == b"":
                    closed.set()
            except OSError:
                closed.set()
            return False

        server = raw_server(handler)
        self.addCleanup(server.close)
        client = yc_runs.Client(base_url=server.url, api_key=API_KEY, timeout=5)
        self.addCleanup(client.close)
        for event in yc_runs.Run("run-1", _runs=client.runs).listen():
            self.assertEqual(event.text, "a")
            break
        self.assertTrue(closed.wait(3))
        self.assertEqual(sum(len(v) for v in client._transport._idle.values()), 0)


class StaleConnectionTest(RawServerTestCase):
    def test_pooled_connection_the_server_closed_is_replaced_for_get(self) -> None:
        def handler(conn: socket.socket, request: bytes) -> bool:
            conn.sendall(json_response(200, RUN_JSON))  # says keep-alive, then closes
            return False

        server = self.serve(handler)
        client = self.client_for(server)
        for _ in range(3):
            self.assertEqual(client.runs.get("r").id, "fvt-run-1")
        self.assertEqual(server.connections, 3)

    def test_get_sent_on_a_connection_the_server_drops_is_retried_once(self) -> None:
        server: RawServer

        def handler(conn: socket.socket, request: bytes) -> Any:
            if len(server.requests) == 2:
                return False  # read the request, then close without an answer
            conn.sendall(json_response(200, RUN_JSON))
            return None

        server = self.serve(handler)
        client = self.client_for(server, max_retries=0)
        client.runs.get("r")
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")
        self.assertEqual((len(server.requests), server.connections), (3, 2))

    def test_create_sent_on_a_connection_the_server_drops_is_not_repeated(self) -> None:
        server: RawServer

        def handler(conn: socket.socket, request: bytes) -> Any:
            if len(server.requests) == 2:
                return False
            conn.sendall(json_response(200, RUN_JSON))
            return None

        server = self.serve(handler)
        client = self.client_for(server, max_retries=3)
        client.runs.get("r")
        with self.assertRaises(yc_runs.APIConnectionError):
            client.runs.create("a", "t")
        self.assertEqual(len(server.requests), 2)


class ProxyTest(RawServerTestCase):
    def proxy(self, refuse: bool = False) -> types.SimpleNamespace:
        proxy = connect_proxy(refuse)
        self.addCleanup(proxy.close)
        return proxy

    def test_http_proxy_from_the_environment_tunnels_with_connect(self) -> None:
        proxy, server = self.proxy(), self.serve()
        os.environ["http_proxy"] = proxy.url
        client = self.client_for(proxied_url(server), allow_insecure=True)
        client.runs.get("r")
        client.runs.get("r")
        self.assertEqual(len(proxy.requests), 1)  # the tunnel is kept alive
        line, headers = request_head(proxy.requests[0])
        self.assertEqual(line, "CONNECT proxied.test:%d HTTP/1.1" % server.port)
        self.assertNotIn("authorization", headers)
        self.assertEqual(len(server.requests), 2)
        self.assertEqual(request_header(server.requests[0], "Authorization"), "Api-Key " + API_KEY)

    def test_no_proxy_bypasses_the_proxy(self) -> None:
        proxy, server = self.proxy(), self.serve()
        os.environ["http_proxy"] = proxy.url
        origin = yc_runs._Origin("http", "proxied.test", server.port)
        self.assertIsNotNone(yc_runs._proxy_for(origin))
        os.environ["no_proxy"] = "example.com,proxied.test"
        self.assertIsNone(yc_runs._proxy_for(origin))  # no name lookup, no connection here
        del os.environ["no_proxy"]
        os.environ["NO_PROXY"] = "*"
        self.assertIsNone(yc_runs._proxy_for(origin))

    def test_loopback_and_metadata_addresses_never_go_through_a_proxy(self) -> None:
        proxy, server = self.proxy(), self.serve()
        os.environ["http_proxy"] = proxy.url
        self.client_for(server).runs.get("r")  # http://127.0.0.1: the credential stays here
        self.assertEqual((proxy.connections, len(server.requests)), (0, 1))
        origin = yc_runs._Origin("http", "169.254.169.254", 80)
        self.assertIsNone(yc_runs._proxy_for(origin))

    def test_https_proxy_tunnels_tls(self) -> None:
        server_context, client_context = tls_server_context()
        proxy, server = self.proxy(), self.serve(context=server_context)
        os.environ["HTTPS_PROXY"] = "127.0.0.1:%d" % proxy.port
        client = self.client_for("https://proxied.test:%d" % server.port, ssl_context=client_context)
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")
        self.assertEqual(request_head(proxy.requests[0])[0], "CONNECT proxied.test:%d HTTP/1.1" % server.port)

    def test_proxy_credentials_go_as_proxy_authorization(self) -> None:
        proxy, server = self.proxy(), self.serve()
        os.environ["http_proxy"] = "http://us%20er:p%40ss@127.0.0.1:" + str(proxy.port)
        self.client_for(proxied_url(server), allow_insecure=True).runs.get("r")
        expected = "Basic " + base64.b64encode(b"us er:p@ss").decode()
        self.assertEqual(request_header(proxy.requests[0], "Proxy-Authorization"), expected)
        self.assertIsNone(request_header(server.requests[0], "Proxy-Authorization"))

    def test_proxy_refusing_the_tunnel_raises_connection_error(self) -> None:
        proxy, server = self.proxy(refuse=True), self.serve()
        os.environ["http_proxy"] = proxy.url
        with self.assertRaises(yc_runs.APIConnectionError) as caught:
            self.client_for(proxied_url(server), allow_insecure=True, max_retries=3).runs.get("r")
        self.assertEqual(len(proxy.requests), 1)  # a refusal is final, not retried
        self.assertIn("407", str(caught.exception))
        self.assertEqual(server.requests, [])


class TLSTest(RawServerTestCase):
    def test_default_verification_rejects_an_untrusted_certificate(self) -> None:
        server_context, _ = tls_server_context()
        server = self.serve(context=server_context)
        client = self.client_for("https://127.0.0.1:%d" % server.port)
        with self.assertRaises(yc_runs.APIConnectionError) as caught:
            client.runs.get("r")
        self.assertIn("certificate", str(caught.exception).lower())
        self.assertEqual(server.requests, [])

    def test_trusted_context_connects_over_https(self) -> None:
        server_context, client_context = tls_server_context()
        server = self.serve(context=server_context)
        client = self.client_for("https://127.0.0.1:%d" % server.port, ssl_context=client_context)
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")
        self.assertEqual(list(yc_runs.Run("r", _runs=client.runs).listen())[-1].text, "ok")
        self.assertEqual(server.connections, 1)
        self.assertEqual(request_header(server.requests[0], "Authorization"), "Api-Key " + API_KEY)

    def test_sni_carries_the_host_name(self) -> None:
        server_context, client_context = tls_server_context()
        names: List[Optional[str]] = []
        server_context.sni_callback = lambda sock, name, context: names.append(name)  # type: ignore[assignment,misc]
        server = self.serve(context=server_context)
        client = self.client_for("https://localhost:%d" % server.port, ssl_context=client_context)
        client.runs.get("r")
        self.assertEqual(names, ["localhost"])
        self.assertEqual(request_header(server.requests[0], "Host"), "localhost:%d" % server.port)

    def test_plain_http_to_a_non_loopback_host_is_refused(self) -> None:
        for url in ("http://rest-assistant.example.com", "http://10.0.0.5:8080",
                    "http://127.0.0.1.example.com", "http://localhost.evil.com"):
            with self.subTest(url=url), self.assertRaises(ValueError) as caught:
                yc_runs.Client(base_url=url, api_key=API_KEY)
            self.assertIn("allow_insecure", str(caught.exception))
        with yc_runs.Client(base_url="http://10.0.0.5:8080", api_key=API_KEY,
                            allow_insecure=True):
            pass
        for url in ("http://localhost:1", "http://127.0.0.2", "http://[::1]:8080", "http://a.localhost"):
            with self.subTest(url=url), yc_runs.Client(base_url=url, api_key=API_KEY):
                pass

    def test_redirect_is_not_followed_and_the_credential_stays(self) -> None:
        elsewhere = self.serve()
        location = "http://127.0.0.1:%d/assistants/v1/runs/r" % elsewhere.port
        server = self.serve(http_response(302, b"", (("Location", location),), reason="Found"))
        with self.assertRaises(yc_runs.APIError) as caught:
            self.client_for(server, max_retries=3).runs.get("r")
        self.assertEqual(caught.exception.status, 302)
        self.assertIn("127.0.0.1:%d" % elsewhere.port, str(caught.exception))
        self.assertNotIn(API_KEY, str(caught.exception))
        self.assertEqual((elsewhere.connections, elsewhere.requests), (0, []))
        self.assertEqual(len(server.requests), 1)


class ErrorsTest(RawServerTestCase):
    def test_both_clients_name_the_same_place_when_a_connect_fails(self) -> None:
        url = "http://127.0.0.1:%d" % closed_port()
        with self.assertRaises(yc_runs.APIConnectionError) as sync_error:
            self.client_for(url).runs.get("r")

        async def main() -> None:
            async with yc_runs.AsyncClient(base_url=url, api_key=API_KEY, max_retries=0) as c:
                await c.runs.get("r")

        with self.assertRaises(yc_runs.APIConnectionError) as async_error:
            asyncio.run(main())
        where = "cannot connect to %s: " % url[len("http://"):]
        self.assertTrue(str(sync_error.exception).startswith(where), sync_error.exception)
        self.assertTrue(str(async_error.exception).startswith(where), async_error.exception)

    def test_wrapped_error_body_decodes(self) -> None:
        body = {"error": {"grpcCode": 16, "httpCode": 401, "message": "Unknown api key '***'",
                          "httpStatus": "Unauthorized", "details": []}}
        server = self.serve(error_response(401, body, ("x-request-id", "req-42")))
        with self.assertRaises(yc_runs.AuthenticationError) as caught:
            self.client_for(server).runs.get("r")
        exc = caught.exception
        self.assertEqual((exc.status, exc.grpc_code, exc.request_id), (401, 16, "req-42"))
        self.assertEqual(exc.message, "Unknown api key '***'")
        self.assertEqual(exc.client_request_id, request_header(server.requests[0], "x-client-request-id"))
        self.assertIn("HTTP 401", str(exc))
        self.assertIn("req-42", str(exc))

    def test_bare_status_body_decodes(self) -> None:
        server = self.serve(error_response(404, {"code": 5, "message": "run not found", "details": []}))
        with self.assertRaises(yc_runs.NotFoundError) as caught:
            self.client_for(server).runs.get("r")
        exc = caught.exception
        self.assertEqual((exc.status, exc.grpc_code, exc.message), (404, 5, "run not found"))
        self.assertIsNone(exc.request_id)
        self.assertRegex(exc.client_request_id or "", UUID4)
        self.assertIn(exc.client_request_id or "-", str(exc))

    def test_html_502_becomes_a_one_line_server_error(self) -> None:
        html = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
                b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
                b"</body>\r\n</html>\r\n" + b"<!-- padding -->\r\n" * 50)
        server = self.serve(http_response(502, html, (("Content-Type", "text/html"),),
                                          reason="Bad Gateway"))
        with self.assertRaises(yc_runs.ServerError) as caught:
            self.client_for(server).runs.get("r")
        text = str(caught.exception)
        self.assertEqual(caught.exception.status, 502)
        self.assertIn("502 Bad Gateway", text)
        self.assertNotIn("\n", text)
        self.assertLess(len(text), 300)
        untitled = b"<html><body>" + b"upstream connect error " * 40 + b"</body></html>"
        server = self.serve(http_response(503, untitled))
        with self.assertRaises(yc_runs.ServerError) as caught:
            self.client_for(server).runs.get("r")
        self.assertIn("upstream connect error", str(caught.exception))
        self.assertLess(len(str(caught.exception)), 300)

    def test_statuses_map_to_error_classes(self) -> None:
        cases = {400: yc_runs.BadRequestError, 401: yc_runs.AuthenticationError,
                 403: yc_runs.PermissionDeniedError, 404: yc_runs.NotFoundError,
                 409: yc_runs.ConflictError, 429: yc_runs.RateLimitError,
                 500: yc_runs.ServerError, 502: yc_runs.ServerError, 503: yc_runs.ServerError,
                 504: yc_runs.ServerError}
        for status, cls in cases.items():
            with self.subTest(status=status):
                server = self.serve(error_response(status, {"code": 3, "message": "m"}))
                with self.assertRaises(cls) as caught:
                    self.client_for(server).runs.get("r")
                self.assertEqual(caught.exception.status, status)  # HTTP status trusted first
                self.assertIsInstance(caught.exception, yc_runs.APIError)
        server = self.serve(error_response(418, {"message": "teapot"}))
        with self.assertRaises(yc_runs.APIError) as caught:
            self.client_for(server).runs.get("r")
        self.assertEqual(type(caught.exception), yc_runs.APIError)

    def test_error_from_a_grpc_code_only_maps_to_the_gateway_status(self) -> None:
        for code, cls, status in ((5, yc_runs.NotFoundError, 404), (8, yc_runs.RateLimitError, 429),
                                  (14, yc_runs.ServerError, 503), (3, yc_runs.BadRequestError, 400)):
            with self.subTest(code=code):
                exc = yc_runs._error_from_body(None, json.dumps({"code": code}).encode(), {}, ())
                self.assertIsInstance(exc, cls)
                self.assertEqual(exc.status, status)

    def test_get_retries_503_then_succeeds(self) -> None:
        unavailable = error_response(503, {"code": 14, "message": "busy"}, ("Retry-After", "0"))
        server = self.serve(unavailable, unavailable, json_response(200, RUN_JSON))
        self.assertEqual(self.client_for(server, max_retries=3).runs.get("r").id, "fvt-run-1")
        self.assertEqual(len(server.requests), 3)

    def test_get_retries_each_retryable_status(self) -> None:
        for status in (429, 500, 502, 503, 504):
            with self.subTest(status=status):
                server = self.serve(error_response(status, {"message": "x"}, ("Retry-After", "0")),
                                    json_response(200, RUN_JSON))
                self.client_for(server, max_retries=1).runs.get_last_by_thread("t")
                self.assertEqual(len(server.requests), 2)

    def test_get_gives_up_after_max_retries(self) -> None:
        server = self.serve(error_response(503, {"message": "down"}, ("Retry-After", "0")))
        with self.assertRaises(yc_runs.ServerError):
            self.client_for(server, max_retries=2).runs.get("r")
        self.assertEqual(len(server.requests), 3)

    def test_retry_after_header_is_honoured(self) -> None:
        limited = error_response(429, {"message": "slow down"}, ("Retry-After", "0"))
        server = self.serve(limited, limited, json_response(200, RUN_JSON))
        started = time.monotonic()
        self.client_for(server, max_retries=2).runs.get("r")
        self.assertLess(time.monotonic() - started, 0.5)  # the default backoff is over 1 s
        self.assertEqual(len(server.requests), 3)
        server = self.serve(error_response(429, {"message": "x"}, ("Retry-After", "7")))
        with self.assertRaises(yc_runs.RateLimitError) as caught:
            self.client_for(server).runs.get("r")
        self.assertEqual(caught.exception.retry_after, 7.0)

    def test_bad_request_is_not_retried(self) -> None:
        server = self.serve(error_response(400, {"code": 3, "message": "bad"}))
        with self.assertRaises(yc_runs.BadRequestError):
            self.client_for(server, max_retries=3).runs.get("r")
        self.assertEqual(len(server.requests), 1)

    def test_create_and_submit_are_not_retried_on_503(self) -> None:
        with yc_runs.Emulator(event_delay=0.002, implicit=True) as emu, \
                yc_runs.Client(base_url=emu.url, api_key=API_KEY, max_retries=3) as client:
            emu.inject(yc_runs.Fault.http_status(503, retry_after=0), on="create", times=None)
            with self.assertRaises(yc_runs.ServerError):
                client.runs.create("a", "t")
            self.assertEqual(len([r for r in emu.requests if r.method == "POST"]), 1)
            emu.clear_faults()
            run = client.runs.create("a", "t", tools=[{"name": "f"}])
            run.wait(poll_interval=0.01)
            emu.inject(yc_runs.Fault.http_status(503, retry_after=0), on="submit", times=None)
            with self.assertRaises(yc_runs.ServerError):
                run.submit_tool_results({"name": "f", "content": "1"})
            self.assertEqual(len([r for r in emu.requests if r.method == "PATCH"]), 1)

    def test_create_is_retried_on_429(self) -> None:
        limited = error_response(429, {"error": {"grpcCode": 8, "httpCode": 429, "message": "quota"}},
                             ("Retry-After", "0"))
        server = self.serve(limited, json_response(200, RUN_JSON))
        self.assertEqual(self.client_for(server, max_retries=2).runs.create("a", "t").id, "fvt-run-1")
        self.assertEqual([request_head(r)[0].split(" ")[0] for r in server.requests], ["POST", "POST"])

    def test_create_is_retried_when_the_connection_could_not_be_made(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(listener.close)
        listener.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        served: List[bytes] = []

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                buffer = bytearray()
                request = read_request(conn, buffer)
                while request is not None:
                    served.append(request)
                    conn.sendall(json_response(200, RUN_JSON))
                    request = read_request(conn, buffer)

        attempts: List[int] = []

        def api_key() -> str:  # evaluated before each attempt: start listening before the second
            attempts.append(1)
            if len(attempts) == 2:
                listener.listen(4)
                threading.Thread(target=serve, daemon=True).start()
            return API_KEY

        client = self.client_for("http://127.0.0.1:%d" % listener.getsockname()[1],
                                 api_key=api_key, max_retries=2)
        self.assertEqual(client.runs.create("a", "t").id, "fvt-run-1")
        self.assertEqual((len(attempts), len(served)), (2, 1))

    def test_connection_refused_raises_api_connection_error_after_retries(self) -> None:
        client = self.client_for("http://127.0.0.1:%d" % closed_port(), max_retries=0)
        with self.assertRaises(yc_runs.APIConnectionError) as caught:
            client.runs.get("r")
        self.assertFalse(caught.exception.connected)
        self.assertNotIsInstance(caught.exception, yc_runs.APIError)


class AsyncRunsCallsTest(AsyncEmulatorTestCase):
    async def test_create_get_and_get_last_by_thread(self) -> None:
        run = await self.client.runs.create("asst", "thread-1", additional_messages=["hi"],
                                            labels={"k": "v"})
        self.assertIsInstance(run, yc_runs.AsyncRun)
        self.assertEqual((run.assistant_id, run.thread_id, run.labels),
                         ("asst", "thread-1", {"k": "v"}))
        again = await self.client.runs.get(run.id)
        self.assertIsInstance(again, yc_runs.AsyncRun)
        self.assertEqual(again.id, run.id)
        second = await self.client.runs.create("asst", "thread-1", additional_messages=["again"])
        last = await self.client.runs.get_last_by_thread("thread-1")
        self.assertEqual(last.id, second.id)
        thread = types.SimpleNamespace(id="thread-1")  # any object with an id will do
        self.assertEqual((await self.client.runs.get_last_by_thread(thread)).id, second.id)

    async def test_list_iterates_across_pages_without_an_extra_request(self) -> None:
        created = [(await self.client.runs.create("asst", "t%d" % i)).id for i in range(5)]
        seen = [run.id async for run in self.client.runs.list(page_size=2)]
        self.assertEqual(seen, created)
        lists = [r for r in self.emu.requests if r.method == "GET" and
                 r.path == "/assistants/v1/runs"]
        tokens = [r.query.get("pageToken") for r in lists]
        self.assertEqual((len(tokens), tokens[0]), (3, None))
        self.assertTrue(all(tokens[1:]))
        self.assertTrue(all(r.query["folderId"] == "folder-1" and r.query["pageSize"] == "2"
                            for r in lists))

    async def test_listen_and_async_for_over_the_run_give_every_event(self) -> None:
        self.emu.script("a", replies=[PIECES])
        run = await self.client.runs.create("a", "t", stream=True)
        events = [event async for event in run.listen()]
        self.assertEqual([e.stream_cursor.current_event_idx for e in events], list(range(6)))
        self.assertEqual(events[-1].status, yc_runs.StreamEvent.DONE)
        self.assertEqual(events[-1].text, PIECES_TEXT)
        again = []
        async for event in run:
            again.append(event)
        self.assertEqual(summary(again), summary(events))
        tail = [e async for e in run.listen(events_start_idx=4)]
        self.assertEqual([e.stream_cursor.current_event_idx for e in tail], [4, 5])

    async def test_submit_tool_results_then_wait(self) -> None:
        self.emu.script("tools", tool_calls=[{"name": "weather", "arguments": {"city": "Oslo"}}])
        run = await self.client.runs.create("tools", "t")
        result = await run.wait(poll_interval=0.01)
        self.assertEqual(result.status, yc_runs.RunStatus.TOOL_CALLS)
        self.assertEqual([(c.name, c.arguments) for c in result.tool_calls],
                         [("weather", {"city": "Oslo"})])
        await run.submit_tool_results({"name": "weather", "content": "cold"})
        done = await run.wait(poll_interval=0.01)
        self.assertEqual(done.status, yc_runs.RunStatus.COMPLETED)
        self.assertEqual(done.text, "weather returned cold")

    async def test_get_status_get_result_and_wait(self) -> None:
        run = await self.client.runs.create("asst", "t", additional_messages=["echo me"])
        self.assertIn(await run.get_status(), set(yc_runs.RunStatus))
        result = await run.wait(poll_interval=0.01)
        self.assertEqual(result.text, "echo me")
        self.assertEqual(await run.get_status(), yc_runs.RunStatus.COMPLETED)
        self.assertEqual((await run.get_result()).text, "echo me")
        usage = (await run.get_result()).usage
        self.assertGreater(usage.total_tokens if usage is not None else 0, 0)

    async def test_wait_raises_wait_timeout_error_after_poll_timeout(self) -> None:
        self.emu.script("slow", delay=30)
        run = await self.client.runs.create("slow", "t")
        started = time.monotonic()
        with self.assertRaises(yc_runs.WaitTimeoutError) as caught:
            await run.wait(poll_timeout=0.05, poll_interval=0.01)
        self.assertLess(time.monotonic() - started, 3)
        self.assertEqual(caught.exception.run_id, run.id)
        self.assertTrue(caught.exception.status.is_running)
        self.assertIsInstance(caught.exception, TimeoutError)

    async def test_cancel_raises_unsupported_operation(self) -> None:
        run = await self.client.runs.create("asst", "t")
        with self.assertRaises(yc_runs.UnsupportedOperationError):
            await run.cancel()
        self.assertEqual([r.method for r in self.emu.requests], ["POST"])


class AsyncErrorsTest(AsyncEmulatorTestCase):
    async def test_error_classes_match_the_sync_client(self) -> None:
        with self.assertRaises(yc_runs.NotFoundError) as caught:
            await self.client.runs.get("no-such-run")
        self.assertEqual((caught.exception.status, caught.exception.grpc_code), (404, 5))
        run = await self.client.runs.create("asst", "t")
        await run.wait(poll_interval=0.01)
        with self.assertRaises(yc_runs.BadRequestError):
            await run.submit_tool_results({"name": "f", "content": "x"})
        self.emu.inject(yc_runs.Fault.http_status(429, retry_after=0), on="get")
        with self.assertRaises(yc_runs.RateLimitError) as limited:
            await self.async_client(max_retries=0).runs.get(run.id)
        self.assertEqual(limited.exception.retry_after, 0)
        self.emu.api_key = "another-key-000"
        with self.assertRaises(yc_runs.AuthenticationError) as auth:
            await self.client.runs.get(run.id)
        self.assertNotIn(API_KEY, str(auth.exception))

    async def test_get_is_retried_after_503(self) -> None:
        run = await self.client.runs.create("asst", "t")
        self.emu.inject(yc_runs.Fault.http_status(503, retry_after=0), on="get")
        self.assertEqual((await self.client.runs.get(run.id)).id, run.id)
        gets = [r for r in self.emu.requests if r.method == "GET"]
        self.assertEqual(len(gets), 2)

    async def test_retries_spent_raise_server_error(self) -> None:
        client = self.async_client(max_retries=1)
        self.emu.inject(yc_runs.Fault.http_status(503, retry_after=0), on="get", times=None)
        with self.assertRaises(yc_runs.ServerError) as caught:
            await client.runs.get("some-run")
        self.assertEqual(caught.exception.status, 503)
        self.assertEqual(len(self.emu.requests), 2)

    async def test_create_is_not_retried_after_503(self) -> None:
        self.emu.inject(yc_runs.Fault.http_status(503, retry_after=0), on="create")
        with self.assertRaises(yc_runs.ServerError):
            await self.client.runs.create("asst", "t")
        self.assertEqual(len(self.emu.requests), 1)
        self.assertEqual(self.emu.runs, {})

    async def test_stalled_get_raises_api_timeout_error_after_about_timeout(self) -> None:
        self.emu.inject(yc_runs.Fault.stall(5), on="get")
        started = time.monotonic()
        with self.assertRaises(yc_runs.APITimeoutError):
            await self.client.runs.get("some-run", timeout=0.1)
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.08)
        self.assertLess(elapsed, 2.5)

    async def test_unreachable_server_raises_api_connection_error(self) -> None:
        import socket

        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        client = yc_runs.AsyncClient(base_url="http://127.0.0.1:%d" % port, api_key=API_KEY,
                                     max_retries=0)
        self.addAsyncCleanup(client.close)
        with self.assertRaises(yc_runs.APIConnectionError) as caught:
            await client.runs.get("r")
        self.assertFalse(caught.exception.connected)


class AsyncCancellationTest(AsyncEnvTestCase):
    async def test_cancelling_the_task_mid_listen_closes_the_connection_at_once(self) -> None:
        server, eof = hold_server()
        self.addCleanup(server.close)
        run = yc_runs.AsyncRun("run-1", _runs=self.raw_client(server, timeout=30).runs)
        got = asyncio.Event()
        events: List[yc_runs.RunStreamEvent] = []

        async def consume() -> None:
            async for event in run.listen():
                events.append(event)
                got.set()

        with closes_its_streams(self):
            task = asyncio.ensure_future(consume())
            await asyncio.wait_for(got.wait(), 10)
            self.assertFalse(eof.is_set())
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            self.assertLess(await wait_for_flag(eof, 10), 2)
        self.assertEqual([e.text for e in events], ["Hi"])

    async def test_breaking_out_of_async_for_closes_the_connection_at_once(self) -> None:
        server, eof = hold_server()
        self.addCleanup(server.close)
        run = yc_runs.AsyncRun("run-1", _runs=self.raw_client(server, timeout=30).runs)
        with closes_its_streams(self):
            async for event in run.listen():
                self.assertEqual(event.delta, "Hi")
                break
            self.assertLess(await wait_for_flag(eof, 10), 2)

    async def test_breaking_out_of_async_for_over_the_run_closes_the_connection(self) -> None:
        server, eof = hold_server()
        self.addCleanup(server.close)
        run = yc_runs.AsyncRun("run-1", _runs=self.raw_client(server, timeout=30).runs)
        with closes_its_streams(self):
            async for _event in run:
                break
            self.assertLess(await wait_for_flag(eof, 10), 2)

    async def test_stalled_server_times_out_get_after_about_timeout(self) -> None:
        server, release = silent_server()
        self.addCleanup(server.close)
        self.addCleanup(release.set)
        client = self.raw_client(server)
        started = time.monotonic()
        with self.assertRaises(yc_runs.APITimeoutError):
            await client.runs.get("r", timeout=0.1)
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.08)
        self.assertLess(elapsed, 2.5)
        self.assertEqual(server.connections, 1)  # a timeout is not retried

    async def test_client_timeout_applies_to_calls_without_their_own(self) -> None:
        server, release = silent_server()
        self.addCleanup(server.close)
        self.addCleanup(release.set)
        client = self.raw_client(server, timeout=0.1)
        run = yc_runs.AsyncRun("run-1", _runs=client.runs)

        async def listen() -> None:
            async for _event in run.listen(resume=False):
                pass

        for name, call in (("get", lambda: client.runs.get("r")),
                           ("create", lambda: client.runs.create("a", "t")),
                           ("listen", listen)):
            with self.subTest(call=name):
                started = time.monotonic()
                with self.assertRaises((yc_runs.APITimeoutError, yc_runs.StreamError)):
                    await asyncio.wait_for(call(), 20)
                self.assertLess(time.monotonic() - started, 2.5)

    async def test_stalled_stream_raises_stream_error_after_resume_retries(self) -> None:
        server, release = silent_server(listen_line("PARTIAL_MESSAGE", 0, "Hi") + b"\n")
        self.addCleanup(server.close)
        self.addCleanup(release.set)
        run = yc_runs.AsyncRun("run-1", _runs=self.raw_client(server, max_retries=1).runs)
        events = []
        started = time.monotonic()
        with self.assertRaises(yc_runs.StreamError) as caught:
            async for event in run.listen(timeout=0.1):
                events.append(event)
        elapsed = time.monotonic() - started
        self.assertGreater(elapsed, 0.15)
        self.assertLess(elapsed, 4)
        self.assertEqual(caught.exception.last_event_idx, 0)
        self.assertIsInstance(caught.exception.__cause__, yc_runs.APITimeoutError)
        self.assertEqual([e.text for e in events], ["Hi"])
        self.assertIn(b"eventsStartIdx=1 ", server.requests[-1])

    async def test_the_driver_warms_up_after_sending_the_request_before_the_answer(self) -> None:
        warm_up = WarmUpOrder()
        self.addCleanup(warm_up.answer.set)
        server = RawServer(warm_up.handler)
        self.addCleanup(server.close)
        self.assertEqual(await self.raw_client(server)._run(warm_up.plan()), 204)
        self.assertEqual(warm_up.seen, [True])

    async def test_listen_timeout_counts_from_when_the_caller_asks_again(self) -> None:
        asked = threading.Event()
        self.addCleanup(asked.set)
        server = RawServer(slow_caller_stream(asked))
        self.addCleanup(server.close)
        run = yc_runs.AsyncRun("run-1", _runs=self.raw_client(server).runs)
        events = []
        async for event in run.listen(timeout=0.2, resume=False):
            events.append(event.status)
            if len(events) == 1:
                await asyncio.sleep(0.3)  # longer than the timeout, nothing of the stream left
                asked.set()
        self.assertEqual(events, [yc_runs.StreamEvent.PARTIAL_MESSAGE, yc_runs.StreamEvent.DONE])

    async def test_stalled_stream_without_resume_fails_after_about_timeout(self) -> None:
        server, release = silent_server(listen_line("PARTIAL_MESSAGE", 0, "Hi") + b"\n")
        self.addCleanup(server.close)
        self.addCleanup(release.set)
        run = yc_runs.AsyncRun("run-1", _runs=self.raw_client(server).runs)
        started = time.monotonic()
        with self.assertRaises((yc_runs.StreamError, yc_runs.APITimeoutError)):
            async for _event in run.listen(timeout=0.1, resume=False):
                pass
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual(server.connections, 1)


class AsyncConcurrencyTest(AsyncEmulatorTestCase):
    event_delay = 0.001

    async def test_200_concurrent_listen_streams_on_one_loop(self) -> None:
        # a load test: without debug mode's stack capture for every callback (the other async
        # tests keep it, for the coroutines never awaited it reports)
        asyncio.get_running_loop().set_debug(False)
        pieces = ["alpha ", "beta ", "gamma ", "delta"]
        self.emu.script("many", replies=[pieces])
        client = self.async_client(timeout=30)
        runs = await asyncio.gather(*[client.runs.create("many", "t%d" % i, stream=True)
                                      for i in range(200)])

        async def listen(run: yc_runs.AsyncRun) -> List[yc_runs.RunStreamEvent]:
            return [event async for event in run.listen()]

        started = time.monotonic()
        results = await asyncio.gather(*[listen(run) for run in runs])
        self.assertLess(time.monotonic() - started, 30)
        expected = [(0, yc_runs.StreamEvent.PARTIAL_MESSAGE, "alpha ", False, "alpha "),
                    (1, yc_runs.StreamEvent.PARTIAL_MESSAGE, "beta ", False, "alpha beta "),
                    (2, yc_runs.StreamEvent.PARTIAL_MESSAGE, "gamma ", False, "alpha beta gamma "),
                    (3, yc_runs.StreamEvent.DONE, "delta", False, "alpha beta gamma delta")]
        for events in results:
            self.assertEqual(summary(events), expected)
        self.assertEqual(len(listen_starts(self.emu)), 200)


class AsyncNoThreadsTest(AsyncEnvTestCase):
    """The emulator runs in another process, so every thread here would be the client's."""

    def setUp(self) -> None:
        super().setUp()
        env = dict(_CLEAN_ENV, PYTHONPATH=HERE)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "yc_runs", "serve", "--port", "0", "--event-delay", "0.001"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
            env=env, cwd=HERE, text=True)
        self.addCleanup(self.stop_emulator)
        line = self.proc.stdout.readline() if self.proc.stdout is not None else ""
        match = re.search(r"yc_runs emulator on (http://127\.0\.0\.1:\d+)", line)
        if match is None:
            self.fail("the emulator did not start: %r" % line)
        self.url = match.group(1)

    def stop_emulator(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # lets it close its socket and exit cleanly
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    async def test_many_concurrent_runs_use_no_threads(self) -> None:
        asyncio.get_running_loop().set_debug(False)  # a load test (see AsyncConcurrencyTest)
        before = threading.active_count()
        existing = set(threading.enumerate())
        new_threads: Set[threading.Thread] = set()
        client = yc_runs.AsyncClient(base_url=self.url, api_key=API_KEY, folder_id="f",
                                     timeout=30)
        self.addAsyncCleanup(client.close)
        peak = [before]
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], threading.active_count())
                new_threads.update(set(threading.enumerate()) - existing)
                await asyncio.sleep(0.002)

        async def one(i: int) -> Tuple[str, str, str]:
            run = await client.runs.create("asst", "thread-%d" % i, stream=True,
                                           additional_messages=["hello number %d" % i])
            text = "".join([e.delta async for e in run.listen()])
            result = await run.wait(poll_interval=0.01)
            return "hello number %d" % i, text, result.text or ""

        sampler = asyncio.ensure_future(sample())
        results = await asyncio.gather(*[one(i) for i in range(60)])
        stop.set()
        await sampler
        for expected, streamed, final in results:
            self.assertEqual((streamed, final), (expected, expected))
        new_threads.update(set(threading.enumerate()) - existing)
        self.assertEqual(new_threads, set())
        self.assertLessEqual(peak[0], before)  # threads of earlier tests may end meanwhile


class AsyncTransportTest(unittest.IsolatedAsyncioTestCase):
    """The async transport through CONNECT proxies, over TLS, and to token services."""

    def setUp(self) -> None:
        patcher = clean_env()
        patcher.start()
        self.addCleanup(patcher.stop)

    def serve(self, *responses: Any, context: Optional[ssl.SSLContext] = None) -> RawServer:
        server = raw_server(*responses, context=context)
        self.addCleanup(server.close)
        return server

    def proxy(self, refuse: bool = False) -> types.SimpleNamespace:
        proxy = connect_proxy(refuse)
        self.addCleanup(proxy.close)
        return proxy

    async def client_for(self, url: str, **kwargs: Any) -> yc_runs.AsyncClient:
        kwargs.setdefault("api_key", API_KEY)
        client = yc_runs.AsyncClient(base_url=url, timeout=5, max_retries=0, **kwargs)
        self.addAsyncCleanup(client.close)
        return client

    async def test_http_proxy_tunnels_with_connect_and_keeps_the_tunnel(self) -> None:
        proxy, server = self.proxy(), self.serve()
        os.environ["http_proxy"] = proxy.url
        client = await self.client_for(proxied_url(server), allow_insecure=True)
        self.assertEqual((await client.runs.get("r")).id, "fvt-run-1")
        self.assertEqual((await client.runs.get("r")).id, "fvt-run-1")
        self.assertEqual(len(proxy.requests), 1)
        self.assertEqual(request_head(proxy.requests[0])[0], "CONNECT proxied.test:%d HTTP/1.1" % server.port)
        self.assertEqual(len(server.requests), 2)

    async def test_https_proxy_tunnels_tls_with_proxy_credentials(self) -> None:
        server_context, client_context = tls_server_context()
        proxy, server = self.proxy(), self.serve(context=server_context)
        os.environ["HTTPS_PROXY"] = "http://user:pw@127.0.0.1:%d" % proxy.port
        client = await self.client_for("https://proxied.test:%d" % server.port,
                                       ssl_context=client_context)
        self.assertEqual((await client.runs.get("r")).id, "fvt-run-1")
        self.assertEqual(request_header(proxy.requests[0], "Proxy-Authorization"),
                         "Basic " + base64.b64encode(b"user:pw").decode())

    async def test_proxy_refusing_the_tunnel_raises_connection_error(self) -> None:
        proxy, server = self.proxy(refuse=True), self.serve()
        os.environ["http_proxy"] = proxy.url
        client = await self.client_for(proxied_url(server), allow_insecure=True)
        with self.assertRaises(yc_runs.APIConnectionError) as caught:
            await client.runs.get("r")
        self.assertIn("407", str(caught.exception))
        self.assertEqual(server.requests, [])

    async def test_untrusted_certificate_fails_at_once_without_retries(self) -> None:
        server_context, _ = tls_server_context()
        server = self.serve(context=server_context)
        client = yc_runs.AsyncClient(base_url="https://127.0.0.1:%d" % server.port,
                                     api_key=API_KEY, timeout=5, max_retries=4)
        self.addAsyncCleanup(client.close)
        started = time.monotonic()
        with self.assertRaises(yc_runs.APIConnectionError) as caught:
            await client.runs.get("r")
        self.assertIn("certificate", str(caught.exception).lower())
        self.assertLess(time.monotonic() - started, 3)  # not backed off four times
        self.assertEqual(server.requests, [])

    async def test_metadata_credentials_fetch_and_cache_the_token(self) -> None:
        def metadata(conn: socket.socket, request: bytes) -> None:
            if request_target(request).startswith("/token"):
                conn.sendall(json_response(200, {"access_token": "iam-from-metadata",
                                                 "expires_in": 3600}))
            else:
                fake_api(conn, request)

        server = self.serve(metadata)
        client = await self.client_for(server.url, api_key=None,
                                       credentials=yc_runs.MetadataCredentials(server.url + "/token"))
        await client.runs.get("r")
        await client.runs.get("r")
        targets = [request_target(r) for r in server.requests]
        self.assertEqual(targets.count("/token"), 1)  # cached
        self.assertEqual(request_header(server.requests[0], "Metadata-Flavor"), "Google")
        self.assertEqual(request_header(server.requests[-1], "Authorization"), "Bearer iam-from-metadata")

    async def test_token_service_failure_is_a_credentials_error(self) -> None:
        server = self.serve(error_response(500, {"message": "metadata down"}))
        client = await self.client_for(server.url, api_key=None,
                                       credentials=yc_runs.MetadataCredentials(server.url + "/token"))
        with self.assertRaises(yc_runs.CredentialsError) as caught:
            await client.runs.get("r")
        self.assertIn("HTTP 500", str(caught.exception))


class AsyncLoopsAndTokensTest(unittest.IsolatedAsyncioTestCase):
    def setUp(self) -> None:
        patcher = clean_env()
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_one_async_client_serves_successive_event_loops(self) -> None:
        with yc_runs.Emulator(implicit=True) as emu:
            client = yc_runs.AsyncClient(base_url=emu.url, api_key="k")

            async def one() -> str:
                run = await client.runs.create("a", "t", additional_messages=["hi"])
                return (await client.runs.get(run.id)).id

            first = asyncio.run(one())   # a cloud function: asyncio.run per invocation
            second = asyncio.run(one())  # the pooled streams of the first loop are not reused
            self.assertNotEqual(first, second)
            asyncio.run(client.close())

    async def test_concurrent_calls_fetch_one_token(self) -> None:
        token_requests = []

        def iam(conn: socket.socket, request: bytes) -> None:
            if request_target(request).startswith("/iam"):
                token_requests.append(request)
                conn.sendall(json_response(200, {"iamToken": "t1",
                                                 "expiresAt": "2099-01-01T00:00:00Z"}))
            else:
                fake_api(conn, request)

        server = raw_server(iam)
        self.addCleanup(server.close)
        credentials = yc_runs.OAuthCredentials("y0-oauth", url=server.url + "/iam")
        async with yc_runs.AsyncClient(base_url=server.url, credentials=credentials) as client:
            await asyncio.gather(*[client.runs.get("r") for _ in range(10)])
        self.assertEqual(len(token_requests), 1)


class TextStreamTest(EmulatorTestCase):
    def test_text_stream_joins_to_the_final_text(self) -> None:
        for pieces, text in CHUNKINGS:
            with self.subTest(pieces=pieces):
                self.emu.script("a", replies=[pieces])
                run = self.client.runs.create("a", "t", stream=True)
                self.assertEqual("".join(run.text_stream()), text)
                self.assertEqual(run.wait(poll_interval=0.01).text, text)

    def test_delta_is_the_new_text_and_done_carries_the_rest(self) -> None:
        self.emu.script("a", replies=[["Hel", "lo, ", "world"]])
        run = self.client.runs.create("a", "t", stream=True)
        events = list(run.listen())
        self.assertEqual([(e.status, e.delta, e.delta_reset) for e in events], [
            (yc_runs.StreamEvent.PARTIAL_MESSAGE, "Hel", False),
            (yc_runs.StreamEvent.PARTIAL_MESSAGE, "lo, ", False),
            (yc_runs.StreamEvent.DONE, "world", False)])
        self.assertEqual(events[-1].text, "Hello, world")

    def test_a_run_without_stream_gives_its_whole_text_in_one_delta(self) -> None:
        self.emu.script("a", replies=[["Hel", "lo"]])
        run = self.client.runs.create("a", "t")
        events = list(run.listen())
        self.assertEqual([(e.status, e.delta) for e in events],
                         [(yc_runs.StreamEvent.DONE, "Hello")])

    def test_text_stream_resumed_midway_still_joins_to_the_rest(self) -> None:
        self.emu.script("a", replies=[PIECES])
        run = self.client.runs.create("a", "t", stream=True)
        lengths = line_lengths(self.emu, run.id)
        self.emu.inject(yc_runs.Fault.cut(after_bytes=sum(lengths[:3]) + 4), on="listen")
        self.assertEqual("".join(run.text_stream()), PIECES_TEXT)

    def test_a_rewritten_partial_resets_the_delta(self) -> None:
        with scripted_server(REWRITE_BODY) as server:
            client = yc_runs.Client(base_url=server.url, api_key=API_KEY, timeout=5)
            self.addCleanup(client.close)
            run = client.runs.get("run-raw")
            check_rewrite(self, list(run.listen()))
            self.assertEqual(list(run.text_stream()), ["Hello wor", "ld", "Привет", "!"])


class TextStreamAsyncTest(AsyncEmulatorTestCase):
    async def test_text_stream_joins_to_the_final_text(self) -> None:
        for pieces, text in CHUNKINGS:
            with self.subTest(pieces=pieces):
                self.emu.script("a", replies=[pieces])
                run = await self.client.runs.create("a", "t", stream=True)
                self.assertEqual("".join([d async for d in run.text_stream()]), text)
                self.assertEqual((await run.wait(poll_interval=0.01)).text, text)

    async def test_delta_is_the_new_text_and_done_carries_the_rest(self) -> None:
        self.emu.script("a", replies=[["Hel", "lo, ", "world"]])
        run = await self.client.runs.create("a", "t", stream=True)
        self.assertEqual([(e.delta, e.delta_reset) async for e in run.listen()],
                         [("Hel", False), ("lo, ", False), ("world", False)])

    async def test_a_rewritten_partial_resets_the_delta(self) -> None:
        server = scripted_server(REWRITE_BODY, piece=3)
        self.addCleanup(server.close)
        client = self.async_client(base_url=server.url)
        run = await client.runs.get("run-raw")
        check_rewrite(self, [e async for e in run.listen()])


class ResumeTest(EmulatorTestCase, ResumeScenarios):
    def setUp(self) -> None:
        super().setUp()
        self.emu.script("chatty", replies=[PIECES])
        self.run_ = self.client.runs.create("chatty", "t", stream=True)
        self.reference = list(self.run_.listen())

    def test_a_cut_mid_stream_resumes_from_the_next_index(self) -> None:
        self.cut_after_two_events(self.run_.id)
        self.assert_same_events(list(self.run_.listen()), self.reference)
        self.assertEqual(listen_starts(self.emu), ["0", "0", "2"])

    def test_a_stall_longer_than_the_timeout_resumes(self) -> None:
        self.emu.inject(yc_runs.Fault.stall(3, after_events=2), on="listen")
        started = time.monotonic()
        self.assert_same_events(list(self.run_.listen(timeout=0.1)), self.reference)
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual(listen_starts(self.emu), ["0", "0", "2"])

    def test_a_503_on_listen_is_retried(self) -> None:
        self.emu.inject(yc_runs.Fault.http_status(503, retry_after=0), on="listen")
        self.assert_same_events(list(self.run_.listen()), self.reference)
        self.assertEqual(listen_starts(self.emu), ["0", "0", "0"])

    def test_a_cut_then_a_503_on_the_reconnection(self) -> None:
        self.cut_after_two_events(self.run_.id)
        self.emu.inject(yc_runs.Fault.http_status(503, retry_after=0), on="listen")
        self.assert_same_events(list(self.run_.listen()), self.reference)
        self.assertEqual(listen_starts(self.emu), ["0", "0", "2", "2"])

    def test_spent_retries_raise_stream_error_naming_the_last_event(self) -> None:
        client = yc_runs.Client(base_url=self.emu.url, api_key=API_KEY, max_retries=1, timeout=5)
        self.addCleanup(client.close)
        self.arm_spent_retries(self.run_.id)
        events = []
        with self.assertRaises(yc_runs.StreamError) as caught:
            for event in client.runs.get(self.run_.id).listen():
                events.append(event)
        self.assertEqual(caught.exception.last_event_idx, 1)
        self.assertEqual(summary(events), summary(self.reference[:2]))
        self.assertEqual(listen_starts(self.emu), ["0", "0", "2"])

    def test_resume_false_raises_on_the_first_cut(self) -> None:
        self.cut_after_two_events(self.run_.id)
        events = []
        with self.assertRaises(yc_runs.StreamError) as caught:
            for event in self.run_.listen(resume=False):
                events.append(event)
        self.assertEqual(len(events), 2)
        self.assertEqual(caught.exception.last_event_idx, 1)
        self.assertEqual(listen_starts(self.emu), ["0", "0"])

    def test_a_malformed_line_raises_stream_error_and_is_not_retried(self) -> None:
        self.emu.inject(yc_runs.Fault.malformed_line(after_events=2), on="listen")
        events = []
        with self.assertRaises(yc_runs.StreamError) as caught:
            for event in self.run_.listen():
                events.append(event)
        self.assertEqual(len(events), 2)
        self.assertEqual(caught.exception.last_event_idx, 1)
        self.assertEqual(listen_starts(self.emu), ["0", "0"])


class ResumeAsyncTest(AsyncEmulatorTestCase, ResumeScenarios):
    async def asyncSetUp(self) -> None:
        await super().asyncSetUp()
        self.emu.script("chatty", replies=[PIECES])
        self.run_ = await self.client.runs.create("chatty", "t", stream=True)
        self.reference = [e async for e in self.run_.listen()]

    async def test_a_cut_mid_stream_resumes_from_the_next_index(self) -> None:
        self.cut_after_two_events(self.run_.id)
        self.assert_same_events([e async for e in self.run_.listen()], self.reference)
        self.assertEqual(listen_starts(self.emu), ["0", "0", "2"])

    async def test_a_stall_longer_than_the_timeout_resumes(self) -> None:
        self.emu.inject(yc_runs.Fault.stall(3, after_events=2), on="listen")
        started = time.monotonic()
        self.assert_same_events([e async for e in self.run_.listen(timeout=0.1)], self.reference)
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual(listen_starts(self.emu), ["0", "0", "2"])

    async def test_a_503_on_listen_is_retried(self) -> None:
        self.emu.inject(yc_runs.Fault.http_status(503, retry_after=0), on="listen")
        self.assert_same_events([e async for e in self.run_.listen()], self.reference)
        self.assertEqual(listen_starts(self.emu), ["0", "0", "0"])

    async def test_a_cut_then_a_503_on_the_reconnection(self) -> None:
        self.cut_after_two_events(self.run_.id)
        self.emu.inject(yc_runs.Fault.http_status(503, retry_after=0), on="listen")
        self.assert_same_events([e async for e in self.run_.listen()], self.reference)
        self.assertEqual(listen_starts(self.emu), ["0", "0", "2", "2"])

    async def test_spent_retries_raise_stream_error_naming_the_last_event(self) -> None:
        client = self.async_client(max_retries=1)
        self.arm_spent_retries(self.run_.id)
        events = []
        run = await client.runs.get(self.run_.id)
        with self.assertRaises(yc_runs.StreamError) as caught:
            async for event in run.listen():
                events.append(event)
        self.assertEqual(caught.exception.last_event_idx, 1)
        self.assertEqual(summary(events), summary(self.reference[:2]))
        self.assertEqual(listen_starts(self.emu), ["0", "0", "2"])

    async def test_resume_false_raises_on_the_first_cut(self) -> None:
        self.cut_after_two_events(self.run_.id)
        events = []
        with self.assertRaises(yc_runs.StreamError) as caught:
            async for event in self.run_.listen(resume=False):
                events.append(event)
        self.assertEqual(len(events), 2)
        self.assertEqual(caught.exception.last_event_idx, 1)
        self.assertEqual(listen_starts(self.emu), ["0", "0"])

    async def test_a_malformed_line_raises_stream_error_and_is_not_retried(self) -> None:
        self.emu.inject(yc_runs.Fault.malformed_line(after_events=2), on="listen")
        events = []
        with self.assertRaises(yc_runs.StreamError) as caught:
            async for event in self.run_.listen():
                events.append(event)
        self.assertEqual(len(events), 2)
        self.assertEqual(caught.exception.last_event_idx, 1)
        self.assertEqual(listen_starts(self.emu), ["0", "0"])


class ShortcutsTest(EmulatorTestCase):
    def test_create_and_wait_returns_the_finished_result(self) -> None:
        result = self.client.runs.create_and_wait("asst", "t", additional_messages=["ping"],
                                                  poll_interval=0.01)
        self.assertIsInstance(result, yc_runs.RunResult)
        self.assertEqual((result.status, result.text), (yc_runs.RunStatus.COMPLETED, "ping"))

    def test_submit_tool_results_and_wait(self) -> None:
        self.emu.script("tools", tool_calls=[{"name": "f", "arguments": {}}])
        run = self.client.runs.create("tools", "t")
        self.assertEqual(run.wait(poll_interval=0.01).status, yc_runs.RunStatus.TOOL_CALLS)
        result = run.submit_tool_results_and_wait([{"name": "f", "content": {"ok": True}}],
                                                  poll_interval=0.01)
        self.assertEqual(result.text, 'f returned {"ok": true}')

    def test_create_and_stream_creates_a_streaming_run_and_yields_its_events(self) -> None:
        self.emu.script("a", replies=[PIECES])
        events = list(self.client.runs.create_and_stream("a", "t", labels={"x": "y"}))
        self.assertEqual("".join(e.delta for e in events), PIECES_TEXT)
        self.assertEqual(events[-1].status, yc_runs.StreamEvent.DONE)
        create = self.emu.requests[0].json
        self.assertEqual((create["stream"], create["labels"]), (True, {"x": "y"}))


class ShortcutsAsyncTest(AsyncEmulatorTestCase):
    async def test_create_and_wait_returns_the_finished_result(self) -> None:
        result = await self.client.runs.create_and_wait("asst", "t", additional_messages=["ping"],
                                                        poll_interval=0.01)
        self.assertEqual((result.status, result.text), (yc_runs.RunStatus.COMPLETED, "ping"))

    async def test_submit_tool_results_and_wait(self) -> None:
        self.emu.script("tools", tool_calls=[{"name": "f", "arguments": {}}])
        run = await self.client.runs.create("tools", "t")
        self.assertEqual((await run.wait(poll_interval=0.01)).status,
                         yc_runs.RunStatus.TOOL_CALLS)
        result = await run.submit_tool_results_and_wait({"name": "f", "content": "done"},
                                                        poll_interval=0.01)
        self.assertEqual(result.text, "f returned done")

    async def test_create_and_stream_returns_an_async_iterator(self) -> None:
        self.emu.script("a", replies=[PIECES])
        stream = await self.client.runs.create_and_stream("a", "t")
        self.assertTrue(hasattr(stream, "__anext__"))
        events = [e async for e in stream]
        self.assertEqual("".join(e.delta for e in events), PIECES_TEXT)
        self.assertIs(self.emu.requests[0].json["stream"], True)


class RunToolsTest(EmulatorTestCase, ToolScenarios):
    def test_run_tools_answers_every_call_in_one_submit(self) -> None:
        self.emu.script("tools", tool_calls=CALLS, replies=["all done"])
        run = self.client.runs.create("tools", "t")
        result = run.run_tools(FUNCTIONS, poll_interval=0.01)
        self.assertEqual((result.status, result.text), (yc_runs.RunStatus.COMPLETED, "all done"))
        self.assert_one_submit_with_all_results()

    def test_run_tools_with_the_emulators_default_assistant(self) -> None:
        run = self.client.runs.create("asst", "t", additional_messages=["Paris"],
                                      tools=[city_tool])
        result = run.run_tools([city_tool], poll_interval=0.01)
        self.assertEqual(result.status, yc_runs.RunStatus.COMPLETED)
        content = submits_of(self.emu)[0][0]["functionResult"]["content"]
        self.assertEqual(json.loads(content)["city"], "Paris")
        self.assertEqual(result.text, "city_tool returned " + content)

    def test_int_parameters_get_ints_and_floats_stay_floats(self) -> None:
        seen = []

        def scale(n: int, factor: float, label: str = "") -> str:
            seen.append((n, type(n), factor, type(factor)))
            return label * n

        self.emu.script("tools", tool_calls=[
            {"name": "scale", "arguments": {"n": 5.0, "factor": 2.0, "label": "ab"}}])
        result = self.client.runs.create("tools", "t").run_tools({"scale": scale},
                                                                 poll_interval=0.01)
        self.assertEqual(seen, [(5, int, 2.0, float)])
        self.assertEqual(result.text, "scale returned ababababab")

    def test_optional_int_and_list_of_int_parameters_get_ints(self) -> None:
        seen = []

        def pick(ids: List[int], first: Optional[int] = None, extra: "Optional[List[int]]" = None,
                 either: Union[int, str] = "") -> str:
            seen.append((ids, first, extra, either))
            return "ok"

        self.emu.script("tools", tool_calls=[{"name": "pick", "arguments": {
            "ids": [1.0, 2.0], "first": 3.0, "extra": [4.0], "either": 5.0}}])
        self.client.runs.create("tools", "t").run_tools([pick], poll_interval=0.01)
        self.assertEqual(seen, [([1, 2], 3, [4], 5)])
        self.assertEqual([type(v) for v in seen[0][0]] + [type(seen[0][1])], [int, int, int])

    def test_tool_loop_error_when_max_rounds_is_hit(self) -> None:
        self.emu.script("loop", tool_calls=[{"name": "add", "arguments": {"a": 1, "b": 1}}],
                        tool_rounds=100)
        run = self.client.runs.create("loop", "t")
        with self.assertRaises(yc_runs.ToolLoopError) as caught:
            run.run_tools(FUNCTIONS, max_rounds=3, poll_interval=0.01)
        self.assertEqual(caught.exception.rounds, 3)
        self.assertEqual(caught.exception.result.status, yc_runs.RunStatus.TOOL_CALLS)
        self.assertEqual(len(submits_of(self.emu)), 3)

    def test_as_many_tool_rounds_as_max_rounds_is_fine(self) -> None:
        self.emu.script("loop", tool_calls=[{"name": "add", "arguments": {"a": 1, "b": 1}}],
                        tool_rounds=2, replies=["finally"])
        result = self.client.runs.create("loop", "t").run_tools(
            FUNCTIONS, max_rounds=2, poll_interval=0.01)
        self.assertEqual(result.text, "finally")
        self.assertEqual(len(submits_of(self.emu)), 2)

    def test_a_run_that_asks_for_no_tools_is_returned_as_is(self) -> None:
        run = self.client.runs.create("asst", "t", additional_messages=["plain"])
        self.assertEqual(run.run_tools(FUNCTIONS, poll_interval=0.01).text, "plain")
        self.assertEqual(submits_of(self.emu), [])

    def test_bad_arguments_are_refused_before_any_request(self) -> None:
        run = self.client.runs.create("asst", "t")
        with self.assertRaises(ValueError):
            run.run_tools(FUNCTIONS, max_rounds=0)
        with self.assertRaises(TypeError):
            run.run_tools({"f": "not callable"})
        self.assertEqual(len(self.emu.requests), 1)


class RunToolsAsyncTest(AsyncEmulatorTestCase, ToolScenarios):
    async def test_run_tools_answers_every_call_in_one_submit(self) -> None:
        self.emu.script("tools", tool_calls=CALLS, replies=["all done"])
        run = await self.client.runs.create("tools", "t")
        result = await run.run_tools(FUNCTIONS, poll_interval=0.01)
        self.assertEqual((result.status, result.text), (yc_runs.RunStatus.COMPLETED, "all done"))
        self.assert_one_submit_with_all_results()

    async def test_async_functions_are_awaited(self) -> None:
        async def add(a: int, b: int) -> int:
            await asyncio.sleep(0)
            return add_tool(a, b)

        async def broken(reason: str) -> str:
            await asyncio.sleep(0)
            raise ValueError("broken: %s" % reason)

        self.emu.script("tools", tool_calls=CALLS, replies=["all done"])
        run = await self.client.runs.create("tools", "t")
        result = await run.run_tools({"add": add, "city": city_tool, "broken": broken},
                                     poll_interval=0.01)
        self.assertEqual(result.text, "all done")
        self.assert_one_submit_with_all_results()

    async def test_tool_loop_error_when_max_rounds_is_hit(self) -> None:
        self.emu.script("loop", tool_calls=[{"name": "add", "arguments": {"a": 1, "b": 1}}],
                        tool_rounds=100)
        run = await self.client.runs.create("loop", "t")
        with self.assertRaises(yc_runs.ToolLoopError) as caught:
            await run.run_tools(FUNCTIONS, max_rounds=2, poll_interval=0.01)
        self.assertEqual(caught.exception.rounds, 2)
        self.assertEqual(len(submits_of(self.emu)), 2)

    async def test_int_parameters_get_ints(self) -> None:
        seen = []

        async def repeat(n: int) -> str:
            seen.append(type(n))
            return "x" * n

        self.emu.script("tools", tool_calls=[{"name": "repeat", "arguments": {"n": 3.0}}])
        run = await self.client.runs.create("tools", "t")
        result = await run.run_tools([repeat], poll_interval=0.01)
        self.assertEqual((seen, result.text), ([int], "repeat returned xxx"))


class FunctionToolTest(EmulatorTestCase):
    def test_function_tool_ignores_a_return_annotation_it_cannot_resolve(self) -> None:
        def lookup(city: str, days: int = 1) -> "NoSuchType":  # type: ignore[name-defined]  # noqa: F821
            """Look a city up."""

        tool = yc_runs.function_tool(lookup)
        self.assertEqual(tool["function"]["parameters"]["properties"],
                         {"city": {"type": "string"}, "days": {"type": "integer"}})
        self.assertEqual(tool["function"]["parameters"]["required"], ["city"])

    def test_function_tool_schema_from_name_docstring_and_hints(self) -> None:
        tool = yc_runs.function_tool(search_tool)
        self.assertEqual(tool, {"function": {
            "name": "search_tool",
            "description": "Search the knowledge base.",
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string"},
                    "limit": {"type": "integer"},
                    "exact": {"type": "boolean"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "mode": {"type": "string", "enum": ["fast", "deep"]},
                    "ids": {"type": "array", "items": {"type": "integer"}},
                    "weights": {"type": "object"},
                    "score": {"type": "number"},
                    "pair": {"type": "array"},
                    "rows": {"type": "array"},
                },
                "required": ["query", "limit", "rows"],
            }}})

    def test_optional_without_default_is_not_required(self) -> None:
        def f(a: Optional[str], b: int) -> None:
            pass

        parameters = yc_runs.function_tool(f)["function"]["parameters"]
        self.assertEqual(parameters["required"], ["b"])
        self.assertEqual(parameters["properties"]["a"], {"type": "string"})

    @unittest.skipIf(sys.version_info < (3, 10), "X | None needs Python 3.10")
    def test_optional_written_with_a_bar_is_optional(self) -> None:
        def f(a: "int | None", b: "list[int] | None" = None) -> None:
            pass

        parameters = yc_runs.function_tool(f)["function"]["parameters"]
        self.assertEqual(parameters, {"type": "object", "properties": {
            "a": {"type": "integer"}, "b": {"type": "array", "items": {"type": "integer"}}}})

    def test_name_and_description_can_be_given(self) -> None:
        tool = yc_runs.function_tool(add_tool, name="plus", description="Sum.")
        self.assertEqual((tool["function"]["name"], tool["function"]["description"]),
                         ("plus", "Sum."))

    def test_unsupported_hints_raise_type_error(self) -> None:
        class Point:
            pass

        def f(p: Point) -> None:
            pass

        def g(c: complex) -> None:
            pass

        for func in (f, g):
            with self.subTest(func=func.__name__), self.assertRaises(TypeError) as caught:
                yc_runs.function_tool(func)
            self.assertIn(func.__name__, str(caught.exception))

    def test_functions_can_be_passed_as_tools(self) -> None:
        self.client.runs.create("asst", "t", tools=[add_tool, {"name": "other"}])
        tools = self.emu.requests[0].json["tools"]
        self.assertEqual(tools[0], yc_runs.function_tool(add_tool))
        self.assertEqual(tools[1]["function"]["name"], "other")


class FunctionToolAsyncTest(AsyncEmulatorTestCase):
    async def test_functions_can_be_passed_as_tools(self) -> None:
        run = await self.client.runs.create("asst", "t", tools=[add_tool])
        self.assertEqual(self.emu.requests[0].json["tools"], [yc_runs.function_tool(add_tool)])
        self.assertEqual(run.tools, (yc_runs.function_tool(add_tool),))


class ListenWithTest(EmulatorTestCase):
    def test_handler_object_gets_every_callback_in_order(self) -> None:
        self.emu.script("a", replies=[["Hel", "lo, ", "world"]])
        run = self.client.runs.create("a", "t", stream=True)
        handler = Recorder()
        final = final_event(run.listen_with(handler))
        self.assertEqual(handler.calls, HANDLER_CALLS)
        self.assertEqual((final.status, final.text), (yc_runs.StreamEvent.DONE, "Hello, world"))

    def test_dict_handler_with_only_some_callbacks(self) -> None:
        self.emu.script("tools", tool_calls=[{"name": "f", "arguments": {}},
                                             {"name": "g", "arguments": {}}])
        run = self.client.runs.create("tools", "t", stream=True)
        calls: List[Any] = []
        final = final_event(run.listen_with(
            {"on_tool_calls": lambda tc: calls.append([c.name for c in tc])}))
        self.assertEqual(calls, [["f", "g"]])
        self.assertEqual(final.status, yc_runs.StreamEvent.TOOL_CALLS)

    def test_on_error_for_a_failed_run(self) -> None:
        self.emu.script("bad", error="the prompt is too long")
        handler = Recorder()
        final = final_event(self.client.runs.create("bad", "t", stream=True).listen_with(handler))
        self.assertEqual(handler.calls, [("event", 0), ("error", "the prompt is too long")])
        self.assertEqual(final.status, yc_runs.StreamEvent.ERROR)


class ListenWithAsyncTest(AsyncEmulatorTestCase):
    async def test_async_handler_methods_are_awaited(self) -> None:
        self.emu.script("a", replies=[["Hel", "lo, ", "world"]])
        run = await self.client.runs.create("a", "t", stream=True)
        handler = AsyncRecorder()
        final = final_event(await run.listen_with(handler))
        self.assertEqual(handler.calls, HANDLER_CALLS)
        self.assertEqual(final.text, "Hello, world")

    async def test_sync_handler_object_and_dict(self) -> None:
        self.emu.script("a", replies=[["Hel", "lo, ", "world"]])
        run = await self.client.runs.create("a", "t", stream=True)
        handler = Recorder()
        await run.listen_with(handler)
        self.assertEqual(handler.calls, HANDLER_CALLS)
        deltas: List[str] = []

        async def on_text_delta(delta: str, snapshot: str) -> None:
            deltas.append(delta)

        final = final_event(await run.listen_with({"on_text_delta": on_text_delta}))
        self.assertEqual((deltas, final.status), (["Hel", "lo, ", "world"],
                                                  yc_runs.StreamEvent.DONE))

    async def test_on_tool_calls_and_on_error(self) -> None:
        self.emu.script("tools", tool_calls=[{"name": "f", "arguments": {"x": 1}}])
        self.emu.script("bad", error="no quota")
        handler = AsyncRecorder()
        run = await self.client.runs.create("tools", "t", stream=True)
        self.assertEqual(final_event(await run.listen_with(handler)).status,
                         yc_runs.StreamEvent.TOOL_CALLS)
        run = await self.client.runs.create("bad", "t", stream=True)
        self.assertEqual(final_event(await run.listen_with(handler)).status,
                         yc_runs.StreamEvent.ERROR)
        self.assertEqual(handler.calls, [("event", 0), ("tools", ["f"]),
                                         ("event", 0), ("error", "no quota")])


class ResponsesRunsTest(RawServerTestCase):
    """A run on Responses: created, streamed through cuts, tool-called, submitted, finished."""

    def client(self, service: ResponsesService, **kwargs: Any) -> yc_runs.Client:
        return self.client_for(self.serve(service), api="responses", max_retries=5, **kwargs)

    def test_the_whole_lifecycle_through_three_cuts(self) -> None:
        service = ResponsesService(cuts=3)
        client = self.client(service)
        run = client.runs.create("gpt://b1gxxxxxxxxxxxxxxxxx/aliceai-llm/latest", None,
                                 stream=True, additional_messages=["Погода в Казани?"],
                                 instructions="Ты — Джарвис.", tools=[{"function": {
                                     "name": "get_weather", "description": "Узнать погоду",
                                     "parameters": {"type": "object"}}}])
        self.assertEqual(run.status, yc_runs.RunStatus.PENDING)
        first = list(run.listen())
        self.assertEqual(first[-1].status, yc_runs.StreamEvent.TOOL_CALLS)
        call = first[-1].tool_calls[0]
        self.assertEqual((call.name, call.arguments, call.call_id),
                         ("get_weather", {"city": "Казань"}, "get_weather"))
        run.submit_tool_results({"name": "get_weather", "content": '{"t": -3}'})
        self.assertEqual(run.id, service.plain["id"])
        self.assertEqual(run.response_ids, (service.func["id"], service.plain["id"]))
        second = list(run.listen())
        events = first + second
        indices = [e.stream_cursor.current_event_idx for e in events]
        self.assertEqual(indices, sorted(set(indices)))  # each once, monotonic across the round
        self.assertEqual(second[-1].status, yc_runs.StreamEvent.DONE)
        self.assertEqual(second[-1].text, "Привет, мир!")
        self.assertEqual("".join(e.delta for e in second), "Привет, мир!")
        self.assertEqual(client.runs.get(run.id).status, yc_runs.RunStatus.COMPLETED)
        followup = service.bodies[1]
        self.assertEqual(followup["previous_response_id"], service.func["id"])
        self.assertEqual(followup["input"], [{"type": "function_call_output", "call_id": "get_weather",
                                              "output": '{"t": -3}'}])
        for key in ("model", "instructions", "tools", "background"):  # settings sent again
            self.assertEqual(followup[key], service.bodies[0][key], key)
        self.assertEqual(service.cuts, 0)

    def test_the_whole_lifecycle_async(self) -> None:
        service = ResponsesService(cuts=3)
        server = self.serve(service)

        async def main() -> Tuple[List[yc_runs.RunStreamEvent], str, yc_runs.RunStatus]:
            async with yc_runs.AsyncClient(base_url=server.url, api_key="k", api="responses",
                                           max_retries=5) as client:
                run = await client.runs.create("gpt://b1g/yandexgpt/latest", stream=True,
                                               additional_messages=["hi"])
                events = [e async for e in run.listen()]
                await run.submit_tool_results({"name": "get_weather", "content": "-3"})
                events += [e async for e in run.listen()]
                return events, run.id, (await client.runs.get(run.id)).status

        events, run_id, status = asyncio.run(main())
        indices = [e.stream_cursor.current_event_idx for e in events]
        self.assertEqual(indices, sorted(set(indices)))
        self.assertEqual((events[-1].text, run_id, status),
                         ("Привет, мир!", service.plain["id"], yc_runs.RunStatus.COMPLETED))

    def test_run_tools_and_wait_on_responses(self) -> None:
        service = ResponsesService()
        client = self.client(service)
        run = client.runs.create("gpt://b1g/yandexgpt/latest", additional_messages=["hi"])
        result = run.run_tools({"get_weather": lambda city: {"city": city, "t": -3}},
                               poll_interval=0.01)
        self.assertEqual((result.status, result.text), (yc_runs.RunStatus.COMPLETED, "Привет, мир!"))
        self.assertEqual(json.loads(service.bodies[1]["input"][0]["output"]), {"city": "Казань", "t": -3})
        self.assertEqual(run.id, service.plain["id"])

    def test_listen_polls_when_the_service_refuses_streaming_gets(self) -> None:
        client = self.client(ResponsesService(refuse_streams=True))
        run = client.runs.create("gpt://b1g/yandexgpt/latest", stream=True)
        events = list(run.listen())
        self.assertEqual([e.status for e in events], [yc_runs.StreamEvent.TOOL_CALLS])
        self.assertEqual(events[0].tool_calls[0].arguments, {"city": "Казань"})

    def test_a_stream_false_run_yields_only_its_final_event(self) -> None:
        service = ResponsesService()
        run = self.client(service).runs.create("gpt://b1g/yandexgpt/latest")
        self.assertEqual([e.status for e in run.listen()], [yc_runs.StreamEvent.TOOL_CALLS])
        self.assertFalse(any("stream=true" in t for t in service.targets))

    def test_what_responses_has_no_endpoint_for_is_unsupported(self) -> None:
        client = self.client(ResponsesService())
        for action in (lambda: client.runs.get_last_by_thread("t"), lambda: list(client.runs.list()),
                       lambda: client.threads.delete("c"), lambda: list(client.threads.list()),
                       lambda: client.runs.create("gpt://b1g/m/latest", labels={"a": "b"}),
                       lambda: client.runs.create("gpt://b1g/m/latest", custom_max_prompt_tokens=5)):
            with self.assertRaises(yc_runs.UnsupportedOperationError) as caught:
                action()
            self.assertIn("Responses", str(caught.exception))

    def test_cancel_works_on_responses_and_not_on_the_assistant_api(self) -> None:
        service = ResponsesService()
        run = self.client(service).runs.create("gpt://b1g/m/latest")
        run.cancel()
        self.assertTrue(service.targets[-1].endswith("/cancel"))
        with self.assertRaises(yc_runs.UnsupportedOperationError):
            yc_runs.Run("r", _runs=self.client_for(self.serve(), api="assistants").runs).cancel()

    def test_the_wire_is_chosen_by_api_or_yc_runs_api(self) -> None:
        with clean_env():
            del os.environ["YC_RUNS_API"]  # the suite's default for its Assistant API tests
            self.assertEqual(yc_runs.Client(api_key="k").api, "responses")
            self.assertIn("ai.api.cloud.yandex.net", repr(yc_runs.Client(api_key="k")))
        with clean_env(YC_RUNS_API="assistants"):
            client = yc_runs.Client(api_key="k")
            self.assertEqual(client.api, "assistants")
            self.assertIn("rest-assistant", repr(client))
        with self.assertRaises(ValueError) as caught:
            yc_runs.Client(api_key="k", api="grpc")
        self.assertIn("responses", str(caught.exception))

    def test_requests_carry_the_folder_as_openai_project_and_model_names_expand(self) -> None:
        service = ResponsesService()
        server = self.serve(service)
        client = self.client_for(server, api="responses", folder_id="b1gfolder")
        client.runs.create("yandexgpt/latest", additional_messages=["hi"])
        self.assertEqual(request_header(server.requests[-1], "OpenAI-Project"), "b1gfolder")
        self.assertIsNone(request_header(server.requests[-1], "x-folder-id"))
        self.assertEqual(service.bodies[-1]["model"], "gpt://b1gfolder/yandexgpt/latest")
        client.runs.create("fvtg2ofl0t1ht1f5hi4e")  # a saved agent's id
        self.assertEqual(service.bodies[-1]["prompt"], {"id": "fvtg2ofl0t1ht1f5hi4e"})
        self.assertNotIn("model", service.bodies[-1])


class ResponsesThreadsTest(RawServerTestCase):
    def test_threads_are_conversations_on_responses(self) -> None:
        server = self.serve(conversations_service)
        client = self.client_for(server, api="responses")
        thread = client.threads.create(["Привет"], name="support", labels={"team": "ml"})
        self.assertEqual((thread.id, thread.name, thread.labels), ("conv-1", "support", {"team": "ml"}))
        body = request_body(server.requests[0])
        self.assertEqual(body["metadata"], {"team": "ml", "name": "support"})
        self.assertEqual(body["items"][0]["content"], "Привет")
        self.assertEqual(client.threads.get("conv-1").name, "support")
        self.assertEqual(thread.write("ещё").text, "ещё")
        self.assertEqual([m.text for m in thread.messages()], ["two", "three"])
        with self.assertRaises(yc_runs.NotFoundError):
            client.threads.get("conv-404")

    def test_a_run_takes_a_thread_object(self) -> None:
        service = ResponsesService()
        client = self.client_for(self.serve(service), api="responses")
        client.runs.create("gpt://b1g/m/latest", yc_runs.Thread("conv-7"), additional_messages=["x"])
        self.assertEqual(service.bodies[-1]["conversation"], "conv-7")


class ResponsesBadInputTest(RawServerTestCase):
    """The new entry points (threads, runs.listen/submit_tool_results by id, api=,
    total_timeout=) with wrong types, empty values and hostile answers: an error naming
    what was wrong, nothing sent for a caller's mistake."""

    def test_caller_mistakes_name_the_argument_and_send_nothing(self) -> None:
        for api in ("responses", "assistants"):
            server = self.serve()
            client = self.client_for(server, api=api)
            cases: List[Tuple[Callable[[Any], Any], type, str]] = [
                (lambda c: c.threads.create(123), TypeError, "messages"),
                (lambda c: c.threads.create(["hi"], name=5), TypeError, "name"),
                (lambda c: c.threads.create(["hi"], labels="x"), TypeError, "labels"),
                (lambda c: c.threads.get(""), ValueError, "thread"),
                (lambda c: c.threads.get(5), TypeError, "thread"),
                (lambda c: yc_runs.Thread("t", _threads=c.threads).write(7), TypeError, "message"),
                (lambda c: c.runs.listen(None), TypeError, "run"),
                (lambda c: c.runs.submit_tool_results("", {"name": "f", "content": "1"}),
                 ValueError, "run"),
                (lambda c: c.runs.submit_tool_results("r", 5), TypeError, "tool_results"),
                (lambda c: list(c.runs.listen("r", events_start_idx=-1)), ValueError,
                 "events_start_idx"),
                (lambda c: c.runs.wait(""), ValueError, "run"),
                (lambda c: c.runs.wait("r", poll_interval=-1), ValueError, "poll_interval"),
            ]
            for action, error, word in cases:
                with self.subTest(api=api, word=word), self.assertRaises(error) as caught:
                    action(client)
                self.assertIn(word, str(caught.exception))
            self.assertEqual(server.requests, [])
        for bad, error in ((0, ValueError), ("x", TypeError), (float("inf"), ValueError)):
            with self.assertRaises(error):
                yc_runs.Client(api_key="k", total_timeout=bad)

    def test_hostile_answers_are_malformed_response_errors_naming_the_field(self) -> None:
        cases = [
            ("responses", json_response(200, {"object": "conversation"}), "no id",
             lambda c: c.threads.get("c")),
            ("responses", json_response(200, {"id": {"x": 1}}), "Conversation.id",
             lambda c: c.threads.get("c")),
            ("responses", json_response(200, {"object": "list", "data": 5}), "data",
             lambda c: list(yc_runs.Thread("c", _threads=c.threads).messages())),
            ("responses", json_response(200, {"id": "r", "status": "completed", "output": {}}),
             "output", lambda c: c.runs.get("r")),
            ("responses", http_response(200, b"<html>not json</html>"), "not JSON",
             lambda c: c.threads.create(["x"])),
            ("assistants", http_response(200, b'{"id": "m1"}\n{broken\n'), "not JSON",
             lambda c: list(yc_runs.Thread("t", _threads=c.threads).messages())),
            ("assistants", json_response(200, {"name": "no id"}), "no thread id",
             lambda c: c.threads.get("t")),
        ]
        for api, answer, words, action in cases:
            with self.subTest(api=api, words=words):
                client = self.client_for(self.serve(answer), api=api)
                with self.assertRaises(yc_runs.MalformedResponseError) as caught:
                    action(client)
                self.assertIn(words, str(caught.exception))


class ResponsesEdgeCasesTest(RawServerTestCase):
    """Defects a hostile review of the Responses wire reproduced, each fixed."""

    def client(self, handler: Any, **kwargs: Any) -> yc_runs.Client:
        kwargs.setdefault("max_retries", 2)
        return self.client_for(self.serve(handler), api="responses", **kwargs)

    def test_run_tools_answers_two_calls_of_one_function_that_share_a_call_id(self) -> None:
        chain = ResponsesChain({"R1": [response_json("R1", calls=2)],
                            "R2": [response_json("R2", text="done")]},
                           [response_json("R1", "queued"), response_json("R2", "queued")])
        run = self.client(chain).runs.create("gpt://b1g/m/latest")
        result = run.run_tools({"get_weather": lambda city: city.upper()}, poll_interval=0.01)
        self.assertEqual(result.text, "done")
        self.assertEqual([(i["call_id"], i["output"]) for i in chain.bodies[1]["input"]],
                         [("get_weather", "C0"), ("get_weather", "C1")])

    def test_a_follow_up_asking_the_same_call_again_is_a_new_round(self) -> None:
        chain = ResponsesChain({"R1": [response_json("R1", calls=1)], "R2": [response_json("R2", calls=1)],
                            "R3": [response_json("R3", text="ok")]},
                           [response_json("R1", "queued"), response_json("R2", "queued"),
                            response_json("R3", "queued")])
        run = self.client(chain).runs.create("gpt://b1g/m/latest")
        result = run.run_tools({"get_weather": lambda city: "?"}, poll_interval=0.01, poll_timeout=5)
        self.assertEqual((result.text, run.response_ids), ("ok", ("R1", "R2", "R3")))

    def test_listen_from_a_later_index_joins_to_the_final_text(self) -> None:
        service = ResponsesService()
        client = self.client(service)
        run = client.runs.create("gpt://b1g/m/latest", stream=True)
        run.submit_tool_results({"name": "get_weather", "content": "1"})
        events = list(run.listen(events_start_idx=0))
        for start in {e.stream_cursor.current_event_idx for e in events}:
            with self.subTest(start=start):
                rest = list(yc_runs.Run(run.id, _runs=client.runs, _state=run._state).listen(
                    events_start_idx=start))
                self.assertEqual(rest[0].stream_cursor.current_event_idx, start)
                self.assertEqual("".join(e.delta for e in rest), "Привет, мир!")

    def test_listen_polls_on_501_and_on_a_json_answer_to_a_streaming_get(self) -> None:
        def unimplemented(conn: socket.socket, target: str) -> None:
            conn.sendall(json_response(501, {"code": 12, "message": "not implemented"}))

        def plain_json(conn: socket.socket, target: str) -> None:
            conn.sendall(json_response(200, response_json("R1", text="hi")))

        for stream in (unimplemented, plain_json):
            with self.subTest(stream.__name__):
                chain = ResponsesChain({"R1": [response_json("R1", text="hi")]},
                                   [response_json("R1", "queued")], stream)
                run = self.client(chain).runs.create("gpt://b1g/m/latest", stream=True)
                events = list(run.listen())
                self.assertEqual([(e.status, e.text) for e in events],
                                 [(yc_runs.StreamEvent.DONE, "hi")])

    def test_a_stream_that_ends_before_its_final_event_gets_the_final_state(self) -> None:
        def two_events(conn: socket.socket, target: str) -> bool:
            first = capture_events("plain.sse")[:2]
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n"
                         + one_chunk(b"".join(raw for _, raw in first)) + b"0\r\n\r\n")
            return False

        chain = ResponsesChain({"R1": [response_json("R1", "cancelled")]},
                           [response_json("R1", "queued")], two_events)
        run = self.client(chain).runs.create("gpt://b1g/m/latest", stream=True)
        started = time.monotonic()
        events = list(run.listen())
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertEqual([e.status for e in events], [yc_runs.StreamEvent.ERROR])

    def test_runs_sharing_a_chain_follow_its_newest_response(self) -> None:
        chain = ResponsesChain({"R1": [response_json("R1", calls=1)], "R2": [response_json("R2", text="ok")]},
                           [response_json("R1", "queued"), response_json("R2", "queued")])
        run = self.client(chain).runs.create("gpt://b1g/m/latest")
        latest = run.refresh()
        latest.submit_tool_results({"name": "get_weather", "content": "1"})
        self.assertEqual(run.wait(poll_interval=0.01).text, "ok")
        self.assertEqual((run.id, run.response_ids), ("R2", ("R1", "R2")))
        self.assertEqual(run.refresh().response_ids, ("R1", "R2"))

    def test_a_key_echoed_in_a_run_error_is_redacted(self) -> None:
        key = "AQVN-SECRET-ECHOED-123456"
        failed = response_json("R1", "failed", error={"code": "invalid_prompt",
                                                      "message": "bad Api-Key %s" % key})
        client = self.client(ResponsesChain({"R1": [failed]}, []), api_key=key)
        self.assertNotIn(key, str(client.runs.get("R1").result.error))

    def test_listen_past_the_last_event_is_an_error(self) -> None:
        run = self.client(ResponsesService()).runs.create("gpt://b1g/m/latest", stream=True)
        with self.assertRaisesRegex(ValueError, "events_start_idx 50 is past the run's last event"):
            list(run.listen(events_start_idx=50))

    def test_model_names_agent_ids_and_argument_mistakes(self) -> None:
        create = yc_runs._encode_response_create
        self.assertEqual(create("yandexgpt-lite", folder_id="b1g"), {"model": "gpt://b1g/yandexgpt-lite"})
        self.assertEqual(create("fvtg2ofl0t1ht1f5hi4e"), {"prompt": {"id": "fvtg2ofl0t1ht1f5hi4e"}})
        client = self.client(ResponsesChain({}, []))
        with self.assertRaisesRegex(TypeError, "tools"):
            client.runs.create("gpt://b1g/m/latest", tools=5)
        with self.assertRaisesRegex(TypeError, "run"):
            client.runs.get(None)
        with self.assertRaisesRegex(ValueError, "name="):
            client.threads.create(["x"], name="a", labels={"name": "b"})


class ResponsesCapturesThroughClientTest(RawServerTestCase):
    """Both captured streams through Client(api="responses") and AsyncClient, sent in pieces
    of 1 to 13 bytes (boundaries inside lines and UTF-8 characters), and at sampled two-piece
    splits: the events and final results they hold. (Every split of the bytes is checked on
    the sans-IO stream state in ResponsesCapturedStreamTest.)"""

    def serve_pieces(self, split: Callable[[bytes], List[bytes]]) -> RawServer:
        def handler(conn: socket.socket, request: bytes) -> bool:
            name = "func.sse" if capture_final("func.sse")["id"] in request_target(request) else "plain.sse"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            for piece in split(capture_bytes(name)):
                conn.sendall(one_chunk(piece))
            conn.sendall(b"0\r\n\r\n")
            return False

        return self.serve(handler)

    def check(self, name: str, events: List[yc_runs.RunStreamEvent]) -> None:
        final = events[-1]
        if name == "plain.sse":
            self.assertEqual((final.status, final.text), (yc_runs.StreamEvent.DONE, "Привет, мир!"))
            self.assertEqual([e.delta for e in events], ["Привет", ", мир!", ""])
        else:
            self.assertEqual(final.status, yc_runs.StreamEvent.TOOL_CALLS)
            call = final.tool_calls[0]
            self.assertEqual((call.name, call.arguments), ("get_weather", {"city": "Казань"}))
        want = capture_final(name)["usage"]
        self.assertEqual((final.usage.prompt_tokens, final.usage.completion_tokens,
                          final.usage.total_tokens),
                         (want["input_tokens"], want["output_tokens"], want["total_tokens"]))

    def test_captures_in_small_pieces_sync_and_async(self) -> None:
        rng = random.Random(7)

        def pieces(data: bytes) -> List[bytes]:
            out, pos = [], 0
            while pos < len(data):
                size = rng.randint(1, 13)
                out.append(data[pos:pos + size])
                pos += size
            return out

        server = self.serve_pieces(pieces)
        client = self.client_for(server, api="responses")
        for name in ("plain.sse", "func.sse"):
            response_id = capture_final(name)["id"]
            self.check(name, list(client.runs.listen(response_id)))

            async def main(response_id: str) -> List[yc_runs.RunStreamEvent]:
                async with yc_runs.AsyncClient(base_url=server.url, api_key="k",
                                               api="responses") as aclient:
                    return [e async for e in aclient.runs.listen(response_id)]

            self.check(name, asyncio.run(main(response_id)))

    def test_captures_at_sampled_two_piece_splits(self) -> None:
        where = {"split": 0}
        server = self.serve_pieces(lambda data: [data[:where["split"]], data[where["split"]:]])
        client = self.client_for(server, api="responses")
        for name in ("plain.sse", "func.sse"):
            size = len(capture_bytes(name))
            for split in range(1, size, 61):
                where["split"] = split
                with self.subTest(name=name, split=split):
                    self.check(name, list(client.runs.listen(capture_final(name)["id"])))


class ThreadsAssistantAPITest(EmulatorTestCase):
    """client.threads on the Assistant API, against the emulator's ThreadService and
    MessageService."""

    def test_create_write_read_list_delete(self) -> None:
        client = self.client
        thread = client.threads.create(["Привет"], name="support", labels={"team": "ml"})
        self.assertEqual((thread.name, thread.labels), ("support", {"team": "ml"}))
        self.assertEqual(client.threads.get(thread.id).id, thread.id)
        message = thread.write("ещё одно")
        self.assertEqual(message.text, "ещё одно")
        self.assertEqual([m.text for m in thread.messages()], ["ещё одно", "Привет"])
        run = client.runs.create("asst", thread, additional_messages=["hi"])
        self.assertEqual(run.response_ids, (run.id,))
        self.assertEqual(run.wait(poll_interval=0.01).status, yc_runs.RunStatus.COMPLETED)
        self.assertIn(thread.id, [t.id for t in client.threads.list(page_size=1)])
        thread.delete()
        with self.assertRaises(yc_runs.NotFoundError):
            client.threads.get(thread.id)
        with self.assertRaises(yc_runs.UnsupportedOperationError) as caught:
            client.runs.create("asst", "t", instructions="be brief")
        self.assertIn("Assistant", str(caught.exception))
        with self.assertRaises(ValueError):
            yc_runs.Client(base_url=self.emu.url, api_key="k", api="assistants").threads.create(["x"])

    def test_async_threads_on_both_wires(self) -> None:
        conversations = RawServer(conversations_service)
        self.addCleanup(conversations.close)

        async def main() -> Tuple[List[str], List[str]]:
            async with yc_runs.AsyncClient(base_url=self.emu.url, api_key="k", folder_id="f",
                                           api="assistants") as old, \
                    yc_runs.AsyncClient(base_url=conversations.url, api_key="k",
                                        api="responses") as new:
                thread = await old.threads.create(["one"], name="n")
                await thread.write("two")
                self.assertEqual((await old.threads.get(thread.id)).name, "n")
                self.assertIn(thread.id, [t.id async for t in old.threads.list()])
                texts = [m.text async for m in thread.messages()]
                await thread.delete()
                conversation = await new.threads.create(["hi"], name="support")
                await conversation.write("more")
                self.assertEqual((await new.threads.get("conv-1")).name, "support")
                with self.assertRaises(yc_runs.UnsupportedOperationError):
                    await new.threads.delete("conv-1")
                return texts, [m.text async for m in conversation.messages()]

        self.assertEqual(asyncio.run(main()), (["two", "one"], ["two", "three"]))


class DeadlineTest(RawServerTestCase):
    """timeout, listen's timeout, poll_timeout and total_timeout as the README's table says."""

    def test_get_timeout_is_a_deadline_for_a_trickling_body(self) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n"
        server = self.serve(trickle(head, b"{" + b" " * 9999, 0.02, self.release_event()))
        started = time.monotonic()
        with self.assertRaises(yc_runs.APITimeoutError):
            self.client_for(server, timeout=0.15, max_retries=3).runs.get("r")
        self.assertLess(time.monotonic() - started, 2.0)  # a byte per 0.02 s: 200 s otherwise

    def test_listen_timeout_is_the_longest_wait_for_an_event_blank_lines_included(self) -> None:
        release = self.release_event()

        def blank_lines(conn: socket.socket, request: bytes) -> bool:
            conn.sendall(stream_head())
            while not release.wait(0.01):
                conn.sendall(one_chunk(b"\n"))
            return False

        run = yc_runs.Run("r", _runs=self.client_for(self.serve(blank_lines)).runs)
        started = time.monotonic()
        with self.assertRaises(yc_runs.StreamError) as caught:
            list(run.listen(timeout=0.1, resume=False))
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertIn("before its first event", str(caught.exception))

    def test_wait_poll_timeout_bounds_a_poll_in_flight(self) -> None:
        release = self.release_event()

        def stall(conn: socket.socket, request: bytes) -> bool:
            release.wait(30)
            return False

        client = self.client_for(self.serve(stall), timeout=20, max_retries=3)
        started = time.monotonic()
        with self.assertRaises(yc_runs.WaitTimeoutError) as caught:
            yc_runs.Run("r", _runs=client.runs).wait(poll_timeout=0.1)
        self.assertLess(time.monotonic() - started, 2.5)
        self.assertEqual(caught.exception.run_id, "r")

    def test_total_timeout_bounds_a_call_with_its_retries(self) -> None:
        busy = error_response(503, {"code": 14, "message": "busy"}, ("Retry-After", "0.05"))
        server = self.serve(busy)
        client = self.client_for(server, max_retries=50, total_timeout=0.2)
        started = time.monotonic()
        with self.assertRaises(yc_runs.ServerError):
            client.runs.get("r")
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertLess(len(server.requests), 6)
        with self.assertRaises(ValueError):
            yc_runs.Client(base_url=server.url, api_key="k", total_timeout=0)

    def test_listen_ends_after_the_final_event_whatever_follows(self) -> None:
        for extra in (b"\n", listen_line("PARTIAL_MESSAGE", 5, "more") + b"\n"):
            server = self.serve(done_then(extra, 0.05, self.release_event()))
            run = yc_runs.Run("r", _runs=self.client_for(server).runs)
            started = time.monotonic()
            self.assertEqual("".join(run.text_stream(timeout=5)), "Hello")
            self.assertLess(time.monotonic() - started, 2.0)
            self.assertEqual(len(server.requests), 1)

    def test_a_clean_end_after_an_unknown_event_type_ends_the_stream(self) -> None:
        unknown = json.dumps({"result": {"eventType": "BRAND_NEW_FINAL",
                                         "streamCursor": {"currentEventIdx": "1"}}}).encode()
        body = (one_chunk(listen_line("PARTIAL_MESSAGE", 0, "Hi") + b"\n")
                + one_chunk(unknown + b"\n") + b"0\r\n\r\n")
        server = self.serve(stream_handler(body))
        run = yc_runs.Run("r", _runs=self.client_for(server, max_retries=5).runs)
        events = list(run.listen())
        self.assertEqual([e.status for e in events],
                         [yc_runs.StreamEvent.PARTIAL_MESSAGE, yc_runs.StreamEvent.UNKNOWN])
        self.assertEqual(len(server.requests), 1)  # no reconnection

    def test_infinite_or_huge_timeouts_are_refused_at_construction(self) -> None:
        for cls in (yc_runs.Client, yc_runs.AsyncClient):
            for value in (float("inf"), 1e10, float("nan")):
                with self.subTest(cls=cls.__name__, value=value), self.assertRaises(ValueError) as caught:
                    cls(base_url="http://127.0.0.1:9", api_key="k", timeout=value)
                self.assertIn("timeout", str(caught.exception))
        client = self.client_for("http://127.0.0.1:9")
        with self.assertRaises(ValueError):
            client.runs.get("r", timeout=float("inf"))


class ExactlyOnceTest(RawServerTestCase):
    def test_repeated_and_decreasing_cursors_on_one_connection_are_delivered_once(self) -> None:
        lines = [listen_line("PARTIAL_MESSAGE", 0, "Hello"),
                 listen_line("PARTIAL_MESSAGE", 1, "Hello!"),
                 listen_line("PARTIAL_MESSAGE", 1, "Hello!"),
                 listen_line("PARTIAL_MESSAGE", 0, "Hello"),
                 listen_line("DONE", 2, "Hello!")]
        body = b"".join(one_chunk(line + b"\n") for line in lines) + b"0\r\n\r\n"
        run = yc_runs.Run("r", _runs=self.client_for(self.serve(stream_handler(body))).runs)
        events = list(run.listen())
        self.assertEqual([e.stream_cursor.current_event_idx for e in events], [0, 1, 2])
        self.assertEqual("".join(e.delta for e in events), "Hello!")


class ToolRoundOnALaggingServiceTest(RawServerTestCase):
    def test_run_tools_runs_each_call_once_against_a_lagging_service(self) -> None:
        service = LaggingService(stale=3)
        client = self.client_for(self.serve(service))
        ran: List[Tuple[int, int]] = []

        def add(a: int, b: int) -> int:
            ran.append((a, b))
            return a + b

        result = yc_runs.Run("r", _runs=client.runs).run_tools({"add": add}, poll_interval=0.001)
        self.assertEqual((result.status, result.text), (yc_runs.RunStatus.COMPLETED, "5"))
        self.assertEqual((ran, service.submits), ([(2, 3)], 1))

    def test_async_run_tools_runs_each_call_once_against_a_lagging_service(self) -> None:
        service = LaggingService(stale=3)
        server = self.serve(service)
        ran: List[int] = []

        async def add(a: int, b: int) -> int:
            ran.append(a + b)
            return a + b

        async def main() -> yc_runs.RunResult:
            async with yc_runs.AsyncClient(base_url=server.url, api_key=API_KEY) as client:
                return await yc_runs.AsyncRun("r", _runs=client.runs).run_tools(
                    {"add": add}, poll_interval=0.001)

        result = asyncio.run(main())
        self.assertEqual((result.text, ran, service.submits), ("5", [5], 1))


class StatusTest(RawServerTestCase):
    def test_every_2xx_is_success(self) -> None:
        created = json_response(201, RUN_JSON)
        accepted = json_response(202, RUN_JSON)
        no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
        client = self.client_for(self.serve(created, accepted, no_content))
        run = client.runs.create("fvt-asst", "fvt-thread")
        self.assertEqual(run.id, "fvt-run-1")  # the run exists: its body is not thrown away
        self.assertEqual(client.runs.get(run.id).id, "fvt-run-1")
        self.assertIsNone(run.submit_tool_results({"name": "f", "content": "1"}))

    def test_a_non_ascii_digit_in_content_length_is_a_broken_response(self) -> None:
        bad = "HTTP/1.1 200 OK\r\nContent-Length: 1\u00b2\r\n\r\n{}".encode("utf-8")
        with self.assertRaises(yc_runs.APIConnectionError) as caught:
            self.client_for(self.serve(bad)).runs.get("r")
        self.assertIn("Content-Length", str(caught.exception))

    def test_a_head_with_bare_lf_line_ends_is_read(self) -> None:
        body = json.dumps(RUN_JSON).encode()
        bare = b"HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: %d\n\n%s" % (
            len(body), body)
        client = self.client_for(self.serve(bare))
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")

        async def main() -> str:
            async with yc_runs.AsyncClient(base_url=client._config.base_url, api_key="k") as aclient:
                return (await aclient.runs.get("r")).id

        self.assertEqual(asyncio.run(main()), "fvt-run-1")

    def test_an_http_error_on_listen_after_the_retries_is_raised_as_its_own_class(self) -> None:
        html = http_response(502, b"<html><title>502 Bad Gateway</title></html>",
                             (("Content-Type", "text/html"),), reason="Bad Gateway")
        server = self.serve(html)
        run = yc_runs.Run("r", _runs=self.client_for(server, max_retries=2).runs)
        with self.assertRaises(yc_runs.ServerError) as caught:
            list(run.listen())
        self.assertEqual(caught.exception.status, 502)
        self.assertEqual(len(server.requests), 3)

        async def main() -> None:
            async with yc_runs.AsyncClient(base_url=server.url, api_key="k", max_retries=1,
                                           retry_delay=0) as client:
                async for _ in yc_runs.AsyncRun("r", _runs=client.runs).listen():
                    pass

        with self.assertRaises(yc_runs.ServerError):
            asyncio.run(main())


class ForkTest(RawServerTestCase):
    """A client made before forking workers: no process reads another's answers."""

    def forked(self, work: Callable[[int], int], workers: int = 4) -> List[int]:
        pids = []
        for n in range(workers):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 1
                try:
                    code = work(n)
                finally:
                    os._exit(code)
            pids.append(pid)
        work(-1)  # the parent goes on using the client meanwhile
        return [os.waitpid(pid, 0)[1] for pid in pids]

    def test_forked_workers_never_share_a_pooled_socket(self) -> None:
        client = self.client_for(self.serve(echo_id))
        self.assertEqual(client.runs.get("warm").id, "warm")  # one socket in the pool now

        def work(n: int) -> int:
            wrong = sum(client.runs.get("w%d-%d" % (n, i)).id != "w%d-%d" % (n, i)
                        for i in range(30))
            return min(wrong, 100)

        self.assertEqual(self.forked(work), [0, 0, 0, 0])

    def test_forked_workers_with_an_async_client(self) -> None:
        server = self.serve(echo_id)
        client = yc_runs.AsyncClient(base_url=server.url, api_key="k")

        async def gets(n: int) -> int:
            ids = ["a%d-%d" % (n, i) for i in range(20)]
            runs = await asyncio.gather(*[client.runs.get(i) for i in ids])
            return sum(run.id != i for run, i in zip(runs, ids))

        asyncio.run(gets(-2))
        self.assertEqual(self.forked(lambda n: min(asyncio.run(gets(n)), 100)), [0, 0, 0, 0])


class ResourcesTest(RawServerTestCase):
    @unittest.skipUnless(os.path.isdir("/proc/self/fd"), "needs /proc/self/fd")
    def test_an_unclosed_client_frees_its_sockets_without_the_cycle_collector(self) -> None:
        server = self.serve(echo_id)
        baseline = open_fds()
        gc.disable()
        self.addCleanup(gc.enable)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            for _ in range(5):
                client = yc_runs.Client(base_url=server.url, api_key="k")
                client.runs.get("r")
                del client
        self.assertLessEqual(open_fds(baseline), baseline)  # others' sockets may close meanwhile
        self.assertEqual([w for w in caught if issubclass(w.category, ResourceWarning)], [])

    @unittest.skipUnless(os.path.isdir("/proc/self/fd"), "needs /proc/self/fd")
    def test_one_async_client_over_many_asyncio_runs_leaves_no_socket(self) -> None:
        server = self.serve(echo_id)
        client = yc_runs.AsyncClient(base_url=server.url, api_key="k")
        baseline = open_fds()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            for i in range(50):
                self.assertEqual(asyncio.run(client.runs.get("r%d" % i)).id, "r%d" % i)
            gc.collect()
        self.assertLessEqual(open_fds(baseline), baseline)  # others' sockets may close meanwhile
        self.assertEqual([str(w.message) for w in caught if issubclass(w.category, ResourceWarning)], [])

    def test_one_async_client_shared_by_threads_with_their_own_loops(self) -> None:
        server = self.serve(echo_id)
        client = yc_runs.AsyncClient(base_url=server.url, api_key="k")
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        self.addCleanup(sys.setswitchinterval, interval)

        def worker(n: int) -> int:
            async def main() -> int:
                ids = ["t%d-%d" % (n, i) for i in range(10)]
                wrong = 0
                for _ in range(3):
                    runs = await asyncio.gather(*[client.runs.get(i) for i in ids])
                    wrong += sum(run.id != i for run, i in zip(runs, ids))
                return wrong

            return asyncio.run(main())

        with ThreadPoolExecutor(8) as pool:
            self.assertEqual(list(pool.map(worker, range(8))), [0] * 8)


class LoggingTest(RawServerTestCase):
    """The yc_runs logger: a record per request (DEBUG), per retry and per resume (INFO);
    never a credential."""

    def test_retries_and_resumes_are_logged_without_the_key(self) -> None:
        busy = error_response(503, {"code": 14, "message": "busy, key Api-Key %s" % API_KEY},
                          ("Retry-After", "0"))
        lines = [listen_line("PARTIAL_MESSAGE", 0, "Hel"), listen_line("DONE", 1, "Hello")]
        cut = stream_handler(one_chunk(lines[0] + b"\n"))
        whole = stream_handler(b"".join(one_chunk(line + b"\n") for line in lines) + b"0\r\n\r\n")
        server = self.serve(busy, json_response(200, RUN_JSON), cut, whole)
        client = self.client_for(server, max_retries=3)
        with self.assertLogs("yc_runs", level="DEBUG") as logs:
            client.runs.get("r")
            self.assertEqual("".join(yc_runs.Run("r", _runs=client.runs).text_stream()), "Hello")
        text = "\n".join(logs.output)
        self.assertRegex(text, r"INFO:yc_runs:GET /assistants/v1/runs/r failed: .*HTTP 503"
                               r".*retrying in 0\.00 s \(retry 1 of 3\)")
        self.assertRegex(text, r"DEBUG:yc_runs:GET /assistants/v1/runs/r: HTTP 200 in [\d.]+ s "
                               r"\(x-client-request-id [0-9a-f-]+")
        self.assertRegex(text, r"INFO:yc_runs:listen of run r: .*resuming after event 0 \(attempt 1 of 3\)")
        self.assertNotIn(API_KEY, text)

    def test_nothing_is_printed_without_logging_configured(self) -> None:
        code = ("import logging, sys, yc_runs\n"
                "c = yc_runs.Client(base_url=sys.argv[1], api_key='k', max_retries=1, api='assistants')\n"
                "try:\n    c.runs.get('r')\nexcept yc_runs.ServerError:\n    pass\n")
        server = self.serve(error_response(503, {"code": 14, "message": "busy"}, ("Retry-After", "0")))
        done = subprocess.run([sys.executable, "-c", code, server.url], capture_output=True,
                              text=True, env=command_line_env(), timeout=30)
        self.assertEqual((done.returncode, done.stdout, done.stderr), (0, "", ""))


class LibrarySurfaceTest(EmulatorTestCase):
    """Issue 14, the library surface."""

    def test_statuses_print_as_their_names(self) -> None:
        result = self.client.runs.create("asst", "t", additional_messages=["x"]).wait(
            poll_interval=0.01)
        self.assertEqual(str(result.status), "COMPLETED")
        self.assertEqual("%s|%s|%-10s|" % (result.status, yc_runs.StreamEvent.DONE,
                                           yc_runs.MessageStatus.TRUNCATED),
                         "COMPLETED|DONE|TRUNCATED |")
        self.assertEqual(f"{result.status}", "COMPLETED")
        self.assertEqual((int(result.status), "%d" % result.status, f"{result.status:d}"),
                         (4, "4", "4"))
        self.assertEqual(result.status, 4)  # still an IntEnum

    def test_error_repr_has_the_status_and_request_id(self) -> None:
        with self.assertRaises(yc_runs.NotFoundError) as caught:
            self.client.runs.get("no-such-run")
        shown = repr(caught.exception)
        self.assertTrue(shown.startswith("NotFoundError('"), shown)
        self.assertIn("status=404", shown)
        self.assertIn("request_id=%r" % caught.exception.request_id, shown)
        self.assertIsNotNone(caught.exception.request_id)
        self.assertIn("client_request_id=", shown)

    def test_emulator_repr_says_where_it_listens(self) -> None:
        self.client.runs.create("asst", "t")
        shown = repr(self.emu)
        self.assertIn(self.emu.url, shown)
        self.assertIn("1 runs", shown)
        with yc_runs.Emulator(api_key="emulator-secret-key") as other:
            self.assertNotIn("emulator-secret-key", repr(other))
        self.assertIn("not running", repr(other))

    def test_help_explains_the_client_and_the_calls(self) -> None:
        import pydoc

        for cls in (yc_runs.Client, yc_runs.AsyncClient):
            text = pydoc.render_doc(cls, renderer=pydoc.plaintext)
            for words in ("api_key", "iam_token", "folder_id", "base_url", "YC_RUNS_BASE_URL",
                          "timeout", "max_retries", "allow_insecure", "client.runs"):
                self.assertIn(words, text, cls)
        for documented in (yc_runs.RunStatus, yc_runs.StreamEvent, yc_runs.MessageStatus,
                           yc_runs.Run.submit_tool_results_and_wait,
                           yc_runs.AsyncRun.submit_tool_results_and_wait):
            self.assertTrue(documented.__doc__, documented)

    def test_create_and_wait_and_stream_spell_out_create_arguments(self) -> None:
        import inspect

        for runs in (yc_runs.Runs, yc_runs.AsyncRuns):
            create = set(inspect.signature(runs.create).parameters)
            for shortcut, extra, missing in ((runs.create_and_wait, {"poll_timeout", "poll_interval"},
                                              set()),
                                             (runs.create_and_stream, {"resume"}, {"stream"})):
                with self.subTest(shortcut=shortcut.__qualname__):
                    parameters = inspect.signature(shortcut).parameters
                    self.assertEqual(set(parameters), create - missing | extra)
                    self.assertFalse(any(p.kind == p.VAR_KEYWORD for p in parameters.values()))
        result = self.client.runs.create_and_wait("asst", "t", additional_messages=["hello"],
                                                  labels={"k": "v"}, poll_interval=0.01)
        self.assertEqual(result.text, "hello")
        self.assertEqual("".join(e.delta for e in self.client.runs.create_and_stream(
            "asst", "t", additional_messages=["streamed"])), "streamed")

    def test_every_argument_mistake_names_the_argument(self) -> None:
        cases: List[Tuple[Dict[str, Any], type, str]] = [
            ({"additional_messages": 123}, TypeError, "additional_messages"),
            ({"additional_messages": [5]}, TypeError, "additional_messages[0]"),
            ({"additional_messages": [{"text": "x"}]}, ValueError, "additional_messages[0]"),
            ({"tools": 5}, TypeError, "tools"),
            ({"tools": "get_weather"}, TypeError, "tools"),
            ({"tools": [5]}, TypeError, "tools[0]"),
            ({"stream": "yes"}, TypeError, "stream"),
            ({"labels": {"k": 1}}, TypeError, "labels"),
            ({"labels": ["k"]}, TypeError, "labels"),
            ({"custom_temperature": "hot"}, TypeError, "custom_temperature"),
            ({"custom_max_tokens": -1}, ValueError, "custom_max_tokens"),
            ({"custom_max_prompt_tokens": 1.5}, TypeError, "custom_max_prompt_tokens"),
            ({"custom_response_format": 5}, TypeError, "custom_response_format"),
            ({"custom_response_format": "xml"}, ValueError, "custom_response_format"),
            ({"custom_prompt_truncation_strategy": 3}, TypeError, "custom_prompt_truncation_strategy"),
            ({"custom_prompt_truncation_strategy": {"last_messages": "x"}}, TypeError,
             "custom_prompt_truncation_strategy"),
            ({"extra_body": []}, TypeError, "extra_body"),
            ({"timeout": "soon"}, TypeError, "timeout"),
        ]
        for kwargs, error, name in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaises(error) as caught:
                    self.client.runs.create("asst", "t", **kwargs)
                self.assertIn(name, str(caught.exception))
        for assistant, thread, name in ((5, "t", "assistant"), ("a", None, "thread")):
            with self.assertRaises(TypeError) as caught:
                self.client.runs.create(assistant, thread)
            self.assertIn(name, str(caught.exception))
        self.assertEqual(self.emu.requests, [])

    def test_a_base_url_with_the_api_path_is_the_same_base(self) -> None:
        for suffix in ("/assistants/v1", "/assistants/v1/", "/Assistants/V1"):
            with self.subTest(suffix=suffix), yc_runs.Client(
                    base_url=self.emu.url + suffix, api_key="k", folder_id="f") as client:
                run = client.runs.create("asst", "t")
                self.assertEqual(client.runs.get(run.id).id, run.id)
                self.assertEqual(self.emu.requests[-1].path, "/assistants/v1/runs/" + run.id)

    def test_list_without_a_folder_is_an_argument_error(self) -> None:
        with yc_runs.Client(base_url=self.emu.url, api_key="k") as client:
            with self.assertRaises(ValueError) as caught:
                client.runs.list()
            self.assertNotIsInstance(caught.exception, yc_runs.CredentialsError)
            self.assertIn("folder_id", str(caught.exception))
            with self.assertRaises(ValueError) as caught:  # the argument first
                client.runs.list(page_size=-1)
            self.assertIn("page_size", str(caught.exception))
        self.assertEqual(self.emu.requests, [])

    def test_clients_read_yc_runs_base_url(self) -> None:
        with clean_env(YC_RUNS_BASE_URL=self.emu.url, YC_API_KEY="k"):
            with yc_runs.Client() as client:
                run = client.runs.create("asst", "from-env")
            self.assertIn(run.id, self.emu.runs)
            self.assertEqual(run.thread_id, "from-env")

            async def create() -> str:
                async with yc_runs.AsyncClient() as client:
                    return (await client.runs.create("asst", "async-env")).id
            self.assertIn(asyncio.run(create()), self.emu.runs)
        closed = "http://127.0.0.1:%d" % closed_port()
        with clean_env(YC_RUNS_BASE_URL=closed):  # an explicit base_url wins
            with yc_runs.Client(base_url=self.emu.url, api_key="k") as client:
                self.assertIn(client.runs.create("asst", "t").id, self.emu.runs)
            with yc_runs.Client(api_key="k", max_retries=0) as client, \
                    self.assertRaises(yc_runs.APIConnectionError):
                client.runs.create("asst", "t")


class CreateRequestTest(EmulatorTestCase):
    def sent(self) -> Any:
        return self.emu.requests[-1].json

    def test_minimal_create_sends_only_the_ids(self) -> None:
        self.client.runs.create("asst", "thr")
        request = self.emu.requests[-1]
        self.assertEqual((request.method, request.path), ("POST", "/assistants/v1/runs"))
        self.assertEqual(self.sent(), {"assistantId": "asst", "threadId": "thr"})

    def test_create_body_is_lower_camel_case_with_int64_as_strings(self) -> None:
        run = self.client.runs.create(
            "asst", "thr", stream=True, labels={"team": "qa"}, additional_messages=["hello"],
            custom_temperature=0.5, custom_max_tokens=100, custom_max_prompt_tokens=2000,
            custom_prompt_truncation_strategy={"last_messages": 3}, custom_response_format="json")
        self.assertEqual(self.sent(), {
            "assistantId": "asst", "threadId": "thr", "labels": {"team": "qa"},
            "additionalMessages": [{"content": {"content": [{"text": {"content": "hello"}}]}}],
            "customCompletionOptions": {"temperature": 0.5, "maxTokens": "100"},
            "customPromptTruncationOptions": {"maxPromptTokens": "2000",
                                              "lastMessagesStrategy": {"numMessages": "3"}},
            "customResponseFormat": {"jsonObject": True},
            "stream": True,
        })
        self.assertEqual(run.labels, {"team": "qa"})
        self.assertEqual((run.custom_temperature, run.custom_max_tokens), (0.5, 100))
        self.assertEqual(run.custom_prompt_truncation_options,
                         yc_runs.PromptTruncationOptions(2000, {"last_messages": 3}))
        self.assertEqual(run.custom_response_format, {"jsonObject": True})

    def test_explicit_zero_temperature_is_sent(self) -> None:
        run = self.client.runs.create("asst", "thr", custom_temperature=0)
        self.assertEqual(self.sent()["customCompletionOptions"], {"temperature": 0.0})
        self.assertEqual(run.custom_temperature, 0.0)
        self.client.runs.create("asst", "thr", custom_max_tokens=0)
        self.assertEqual(self.sent()["customCompletionOptions"], {"maxTokens": "0"})

    def test_truncation_strategy_auto_and_last_messages(self) -> None:
        self.client.runs.create("asst", "thr", custom_prompt_truncation_strategy="auto")
        self.assertEqual(self.sent()["customPromptTruncationOptions"], {"autoStrategy": {}})
        self.client.runs.create("asst", "thr", custom_prompt_truncation_strategy={"last_messages": 5})
        self.assertEqual(self.sent()["customPromptTruncationOptions"],
                         {"lastMessagesStrategy": {"numMessages": "5"}})

    def test_response_format_json_and_json_schema(self) -> None:
        schema = {"type": "object", "properties": {"city": {"type": "string"}}}
        self.client.runs.create("asst", "thr", custom_response_format="json")
        self.assertEqual(self.sent()["customResponseFormat"], {"jsonObject": True})
        run = self.client.runs.create("asst", "thr", custom_response_format={"json_schema": schema})
        self.assertEqual(self.sent()["customResponseFormat"], {"jsonSchema": {"schema": schema}})
        self.assertEqual(run.custom_response_format, {"jsonSchema": {"schema": schema}})
        self.client.runs.create("asst", "thr", custom_response_format={"json_schema": {"schema": schema}})
        self.assertEqual(self.sent()["customResponseFormat"], {"jsonSchema": {"schema": schema}})

    def test_function_tools_from_name_description_parameters(self) -> None:
        parameters = {"type": "object", "properties": {"city": {"type": "string"}},
                      "required": ["city"]}
        self.client.runs.create("asst", "thr", tools=[
            {"name": "get_weather", "description": "Weather now", "parameters": parameters},
            {"name": "ping"}])
        self.assertEqual(self.sent()["tools"], [
            {"function": {"name": "get_weather", "description": "Weather now",
                          "parameters": parameters}},
            {"function": {"name": "ping", "parameters": {"type": "object", "properties": {}}}}])

    def test_tools_in_the_api_shape_pass_through(self) -> None:
        tools = [{"function": {"name": "f", "description": "d", "parameters": {"type": "object"}}},
                 {"searchIndex": {"searchIndexIds": ["idx1"], "maxNumResults": "5",
                                  "callStrategy": {"alwaysCall": {}}}},
                 {"genSearch": {"options": {"site": {"site": ["example.com"]}}, "description": "web"}}]
        self.client.runs.create("asst", "thr", tools=tools)
        self.assertEqual(self.sent()["tools"], tools)

    def test_additional_messages_from_strings_and_message_data(self) -> None:
        data = {"author": {"id": "user-1", "role": "USER"}, "labels": {"k": "v"},
                "content": {"content": [{"text": {"content": "from dict"}}]}}
        self.client.runs.create("asst", "thr", additional_messages=["plain", data])
        self.assertEqual(self.sent()["additionalMessages"], [
            {"content": {"content": [{"text": {"content": "plain"}}]}}, data])
        self.client.runs.create("asst", "thr", additional_messages="just one")
        self.assertEqual(self.sent()["additionalMessages"],
                         [{"content": {"content": [{"text": {"content": "just one"}}]}}])
        self.client.runs.create("asst", "thr", additional_messages=[{"role": "user", "content": "hi"}])
        self.assertEqual(self.sent()["additionalMessages"], [
            {"author": {"role": "USER"}, "content": {"content": [{"text": {"content": "hi"}}]}}])

    def test_extra_body_is_merged(self) -> None:
        self.client.runs.create("asst", "thr", custom_temperature=0.1,
                                extra_body={"newOption": {"x": "1"}, "stream": True})
        body = self.sent()
        self.assertEqual(body["newOption"], {"x": "1"})
        self.assertIs(body["stream"], True)
        self.assertEqual(body["customCompletionOptions"], {"temperature": 0.1})

    def test_assistant_and_thread_accept_objects_with_an_id(self) -> None:
        run = self.client.runs.create(types.SimpleNamespace(id="asst-obj"),
                                      types.SimpleNamespace(id="thr-obj"))
        self.assertEqual(self.sent(), {"assistantId": "asst-obj", "threadId": "thr-obj"})
        self.assertEqual(self.client.runs.get_last_by_thread(types.SimpleNamespace(id="thr-obj")).id,
                         run.id)
        self.assertEqual(self.client.runs.get(run).id, run.id)

    def test_bad_arguments_raise_errors_naming_the_argument_before_any_request(self) -> None:
        runs = self.client.runs
        run = yc_runs.Run("run-1", _runs=runs)
        cases: List[Tuple[type, str, Callable[[], Any]]] = [
            (TypeError, "assistant", lambda: runs.create(123, "t")),
            (ValueError, "thread", lambda: runs.create("a", "")),
            (TypeError, "labels", lambda: runs.create("a", "t", labels={"k": 1})),
            (TypeError, "labels", lambda: runs.create("a", "t", labels=["k"])),  # type: ignore[arg-type]
            (TypeError, "custom_temperature", lambda: runs.create("a", "t", custom_temperature="hot")),  # type: ignore[arg-type]
            (TypeError, "custom_max_tokens", lambda: runs.create("a", "t", custom_max_tokens=1.5)),  # type: ignore[arg-type]
            (TypeError, "custom_max_tokens", lambda: runs.create("a", "t", custom_max_tokens=True)),
            (ValueError, "custom_max_tokens", lambda: runs.create("a", "t", custom_max_tokens=-1)),
            (ValueError, "custom_max_prompt_tokens",
             lambda: runs.create("a", "t", custom_max_prompt_tokens=-5)),
            (ValueError, "custom_prompt_truncation_strategy",
             lambda: runs.create("a", "t", custom_prompt_truncation_strategy="newest")),
            (TypeError, "last_messages",
             lambda: runs.create("a", "t", custom_prompt_truncation_strategy={"last_messages": "3"})),  # type: ignore[dict-item]
            (ValueError, "custom_response_format",
             lambda: runs.create("a", "t", custom_response_format="xml")),
            (TypeError, "tools[0]", lambda: runs.create("a", "t", tools=[42])),
            (ValueError, "tools[0]", lambda: runs.create("a", "t", tools=[{"description": "x"}])),
            (TypeError, "additional_messages[1]",
             lambda: runs.create("a", "t", additional_messages=["ok", 42])),
            (ValueError, "additional_messages[0]",
             lambda: runs.create("a", "t", additional_messages=[{"author": {}}])),
            (TypeError, "extra_body", lambda: runs.create("a", "t", extra_body=[1])),  # type: ignore[arg-type]
            (TypeError, "timeout", lambda: runs.create("a", "t", timeout="5")),  # type: ignore[arg-type]
            (ValueError, "timeout", lambda: runs.get("r", timeout=0)),
            (TypeError, "run", lambda: runs.get(None)),
            (TypeError, "run", lambda: runs.get(42)),
            (ValueError, "run", lambda: runs.get("")),
            (TypeError, "thread", lambda: runs.get_last_by_thread(3.5)),
            (TypeError, "page_size", lambda: runs.list(page_size="10")),  # type: ignore[arg-type]
            (ValueError, "page_size", lambda: runs.list(page_size=-1)),
            (ValueError, "events_start_idx", lambda: run.listen(events_start_idx=-1)),
            (ValueError, "events_start_idx", lambda: run.listen(events_start_idx="1")),  # type: ignore[arg-type]
            (TypeError, "timeout", lambda: run.listen(timeout="1")),  # type: ignore[arg-type]
            (TypeError, "tool_results", lambda: run.submit_tool_results("text")),
            (ValueError, "tool_results", lambda: run.submit_tool_results([])),
            (ValueError, "content", lambda: run.submit_tool_results({"name": "f"})),
            (TypeError, "tool_results[0]", lambda: run.submit_tool_results([{"content": "x"}])),
            (TypeError, "tool_results[0]",
             lambda: run.submit_tool_results({"name": "f", "content": {1, 2}})),
            (ValueError, "poll_timeout", lambda: run.wait(poll_timeout=-1)),
            (TypeError, "poll_interval", lambda: run.wait(poll_interval="1")),  # type: ignore[arg-type]
        ]
        for kind, name, call in cases:
            with self.subTest(name=name, kind=kind.__name__):
                with self.assertRaises(kind) as caught:
                    call()
                self.assertIn(name, str(caught.exception))
        self.assertEqual(self.emu.requests, [])

    def test_bad_client_arguments_raise_errors_naming_the_argument(self) -> None:
        url = self.emu.url
        cases: List[Tuple[type, str, Dict[str, Any]]] = [
            (ValueError, "timeout", {"timeout": -1}),
            (TypeError, "timeout", {"timeout": "5"}),
            (ValueError, "max_retries", {"max_retries": -1}),
            (ValueError, "max_retries", {"max_retries": 1.5}),
            (ValueError, "base_url", {"base_url": "ftp://127.0.0.1/"}),
            (TypeError, "base_url", {"base_url": 5}),  # None: $YC_RUNS_BASE_URL or the default
            (ValueError, "base_url", {"base_url": "http://user:pw@127.0.0.1:1"}),
            (ValueError, "folder_id", {"folder_id": "a\nb"}),
            (ValueError, "folder_id", {"folder_id": ""}),
            (ValueError, "folder_id", {"folder_id": "\u043f\u0430\u043f\u043a\u0430"}),
            (TypeError, "ssl_context", {"ssl_context": "strict"}),
        ]
        for kind, name, kwargs in cases:
            with self.subTest(kwargs=kwargs):
                arguments = dict({"api_key": API_KEY, "base_url": url}, **kwargs)
                with self.assertRaises(kind) as caught:
                    yc_runs.Client(**arguments)
                self.assertIn(name, str(caught.exception))


class MalformedResponseTest(RawServerTestCase):
    def test_run_that_is_not_an_object_raises_malformed(self) -> None:
        for value in ([], 5, "run", True, None):
            with self.subTest(value=value), self.assertRaises(yc_runs.MalformedResponseError):
                decode_run(value)

    def test_wrong_types_raise_malformed_naming_the_field_path(self) -> None:
        cases: List[Tuple[Tuple[Any, ...], Any, str]] = [
            (("state",), 5, "Run.state"),
            (("state", "status"), {}, "Run.state.status"),
            (("state", "error"), "boom", "Run.state.error"),
            (("state", "toolCallList"), [], "Run.state.toolCallList"),
            (("state", "toolCallList", "toolCalls"), {}, "Run.state.toolCallList.toolCalls"),
            (("state", "toolCallList", "toolCalls", 0, "functionCall", "arguments"), [1],
             "Run.state.toolCallList.toolCalls[0].functionCall.arguments"),
            (("state", "toolCallList", "toolCalls", 0, "functionCall", "name"), {},
             "Run.state.toolCallList.toolCalls[0].functionCall.name"),
            (("usage",), [], "Run.usage"),
            (("usage", "promptTokens"), {}, "Run.usage.promptTokens"),
            (("usage", "totalTokens"), "many", "Run.usage.totalTokens"),
            (("labels",), ["a"], "Run.labels"),
            (("createdAt",), 5, "Run.createdAt"),
            (("id",), [], "Run.id"),
            (("customCompletionOptions",), 1, "Run.customCompletionOptions"),
            (("tools",), {}, "Run.tools"),
        ]
        sample = recorded_run("TOOL_CALLS")
        for path, value, where in cases:
            with self.subTest(path=path):
                with self.assertRaises(yc_runs.MalformedResponseError) as caught:
                    decode_run(with_value_at(sample, path, value))
                self.assertIn(where, str(caught.exception))
        message_cases = [
            (("state", "completedMessage"), "hi", "Run.state.completedMessage"),
            (("state", "completedMessage", "content", "content"), {},
             "Run.state.completedMessage.content.content"),
            (("state", "completedMessage", "author"), [], "Run.state.completedMessage.author"),
            (("state", "completedMessage", "citations"), {}, "Run.state.completedMessage.citations"),
        ]
        completed = recorded_run("COMPLETED")
        for path, value, where in message_cases:
            with self.subTest(path=path):
                with self.assertRaises(yc_runs.MalformedResponseError) as caught:
                    decode_run(with_value_at(completed, path, value))
                self.assertIn(where, str(caught.exception))

    def test_wrong_types_anywhere_in_a_run_never_crash(self) -> None:
        wrong = [[], {}, [{}], 7, -1, 2.5, 10 ** 30, "x", "", "-", "\u00b2", True, False]
        decoded = 0
        for sample in recorded()["get_run"].values():
            for path in json_paths(sample):
                for value in wrong:
                    try:
                        decode_run(with_value_at(sample, path, value))
                        decoded += 1
                    except yc_runs.MalformedResponseError:
                        pass
                    except Exception as exc:
                        self.fail("%s = %r crashed the decoder: %s: %s"
                                  % (path, value, type(exc).__name__, exc))
        self.assertGreater(decoded, 0)

    def test_wrong_types_anywhere_in_a_stream_line_raise_stream_error(self) -> None:
        wrong = [[], {}, [{}], 7, 2.5, 10 ** 30, "x", "", "\u00b2", True]
        for line in recorded()["listen_lines"]:
            sample = json.loads(line)
            for path in json_paths(sample):
                for value in wrong:
                    data = json.dumps(with_value_at(sample, path, value)).encode()
                    try:
                        decode_lines([data])
                    except yc_runs.StreamError:
                        pass
                    except Exception as exc:
                        self.fail("%s = %r crashed the stream decoder: %s: %s"
                                  % (path, value, type(exc).__name__, exc))

    def test_stream_line_with_a_wrong_type_names_the_field(self) -> None:
        line = json.dumps({"result": {"eventType": "DONE", "completedMessage": []}}).encode()
        with self.assertRaises(yc_runs.StreamError) as caught:
            decode_lines([line])
        self.assertIn("StreamEvent.completedMessage", str(caught.exception))
        line = json.dumps({"result": {"eventType": "DONE", "streamCursor": []}}).encode()
        with self.assertRaises(yc_runs.StreamError) as caught:
            decode_lines([line])
        self.assertIn("StreamEvent.streamCursor", str(caught.exception))

    def test_stream_line_that_is_not_an_object_raises_stream_error(self) -> None:
        for line in (b"[1, 2]", b"5", b'"text"', b'{"result": 5}', b'{"result": [] }', b"not json",
                     b'{"result": {"eventType": "DONE"'):
            with self.subTest(line=line), self.assertRaises(yc_runs.StreamError):
                decode_lines([line])

    def test_server_answering_wrong_json_raises_malformed(self) -> None:
        cases = [
            (json_response(200, []), "expected an object"),
            (json_response(200, {"id": "r", "state": 5}), "Run.state"),
            (json_response(200, {"assistantId": "a"}), "no run id"),
            (json_response(200, {"id": "r", "usage": {"promptTokens": "lots"}}), "Run.usage.promptTokens"),
            (b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 27\r\n\r\n"
             b"<html><b>hello</b>\n</html>\n", "not JSON"),
        ]
        for response, where in cases:
            with self.subTest(where=where):
                client = self.client_for(self.serve(response))
                with self.assertRaises(yc_runs.MalformedResponseError) as caught:
                    client.runs.get("r")
                self.assertIn(where, str(caught.exception))
                self.assertNotIn("\n", str(caught.exception))

    def test_list_page_with_wrong_types_raises_malformed(self) -> None:
        for page, where in (({"runs": {}}, "ListRunsResponse.runs"),
                            ({"runs": [], "nextPageToken": []}, "ListRunsResponse.nextPageToken"),
                            ([], "ListRunsResponse"),
                            ({"runs": [5]}, "ListRunsResponse.runs[]")):
            with self.subTest(page=page):
                client = self.client_for(self.serve(json_response(200, page)))
                with self.assertRaises(yc_runs.MalformedResponseError) as caught:
                    list(client.runs.list())
                self.assertIn(where, str(caught.exception))


# ============================================================================
# Credentials
# ============================================================================


class CredentialsTest(RawServerTestCase):
    def token_server(self, *answers: Any) -> RawServer:
        return self.serve(*[json_response(200, a) if isinstance(a, dict) else a for a in answers])

    def auths(self, server: RawServer) -> List[Optional[str]]:
        return [request_header(r, "Authorization") for r in server.requests]

    def test_api_key_and_iam_token_callables_are_called_for_every_request(self) -> None:
        server = self.serve()
        keys = iter(["k1", "k2", "k3"])
        client = self.client_for(server, api_key=lambda: next(keys))
        for _ in range(3):
            client.runs.get("r")
        tokens = iter(["t1", "t2"])
        client = self.client_for(server, api_key=None, iam_token=lambda: next(tokens))
        client.runs.get("r")
        client.runs.get("r")
        self.assertEqual(self.auths(server), ["Api-Key k1", "Api-Key k2", "Api-Key k3",
                                              "Bearer t1", "Bearer t2"])

    def test_environment_credentials_are_reread_before_every_request(self) -> None:
        server = self.serve()
        for name, scheme in (("YC_API_KEY", "Api-Key"), ("YC_IAM_TOKEN", "Bearer"),
                             ("YC_TOKEN", "Bearer")):
            with self.subTest(name=name), clean_env(**{name: "first-value"}):
                client = self.client_for(server, api_key=None)
                client.runs.get("r")
                os.environ[name] = "second-value"
                client.runs.get("r")
                self.assertEqual(self.auths(server)[-2:], ["%s first-value" % scheme,
                                                           "%s second-value" % scheme])
                del os.environ[name]
                with self.assertRaises(yc_runs.CredentialsError) as caught:
                    client.runs.get("r")
                self.assertIn(name, str(caught.exception))

    def test_yc_api_key_wins_over_iam_tokens_in_the_environment(self) -> None:
        server = self.serve()
        os.environ.update(YC_TOKEN="tok", YC_IAM_TOKEN="iam", YC_API_KEY="key")
        self.client_for(server, api_key=None).runs.get("r")
        del os.environ["YC_API_KEY"]
        self.client_for(server, api_key=None).runs.get("r")
        self.assertEqual(self.auths(server), ["Api-Key key", "Bearer iam"])

    def test_oauth_and_metadata_from_the_environment_contact_nothing_until_needed(self) -> None:
        os.environ["YC_OAUTH_TOKEN"] = "y0_oauth-secret-value"
        client = yc_runs.Client(base_url="http://127.0.0.1:1", allow_insecure=True)
        credentials = client._config.credentials
        self.assertIsInstance(credentials, yc_runs.OAuthCredentials)
        self.assertEqual(credentials.url, yc_runs.IAM_TOKEN_URL)  # type: ignore[attr-defined]
        self.assertNotIn("y0_oauth-secret-value", repr(client))
        self.assertEqual(client._transport.connections_opened, 0)
        del os.environ["YC_OAUTH_TOKEN"]
        os.environ["YC_METADATA_CREDENTIALS"] = "1"
        client = yc_runs.Client(base_url="http://127.0.0.1:1")
        self.assertIsInstance(client._config.credentials, yc_runs.MetadataCredentials)
        self.assertEqual(client._config.credentials.url, yc_runs.METADATA_TOKEN_URL)  # type: ignore[attr-defined]
        self.assertEqual(client._transport.connections_opened, 0)  # contacted only when a call needs it

    def test_oauth_token_is_exchanged_once_and_cached(self) -> None:
        expires = rfc3339(datetime.now(UTC) + timedelta(hours=12))
        iam = self.token_server({"iamToken": "iam-1", "expiresAt": expires})
        api = self.serve()
        credentials = yc_runs.OAuthCredentials("y0_oauth-token", url=iam.url + "/iam/v1/tokens")
        client = self.client_for(api, api_key=None, credentials=credentials)
        for _ in range(3):
            client.runs.get("r")
        self.assertEqual(len(iam.requests), 1)
        line, headers = request_head(iam.requests[0])
        self.assertEqual(line, "POST /iam/v1/tokens HTTP/1.1")
        self.assertEqual(headers["content-type"], "application/json")
        self.assertEqual(request_body(iam.requests[0]), {"yandexPassportOauthToken": "y0_oauth-token"})
        self.assertEqual(self.auths(api), ["Bearer iam-1"] * 3)

    def test_oauth_token_close_to_expiry_is_refreshed_before_use(self) -> None:
        soon = rfc3339(datetime.now(UTC) + timedelta(seconds=50))
        later = rfc3339(datetime.now(UTC) + timedelta(hours=12))
        iam = self.token_server({"iamToken": "iam-1", "expiresAt": soon},
                                {"iamToken": "iam-2", "expiresAt": later})
        api = self.serve()
        credentials = yc_runs.OAuthCredentials("y0_oauth-token", url=iam.url + "/tokens")
        client = self.client_for(api, api_key=None, credentials=credentials)
        for _ in range(3):
            client.runs.get("r")
        self.assertEqual(len(iam.requests), 2)
        self.assertEqual(self.auths(api), ["Bearer iam-1", "Bearer iam-2", "Bearer iam-2"])

    def test_metadata_credentials_send_metadata_flavor_and_cache(self) -> None:
        metadata = self.token_server({"access_token": "meta-1", "expires_in": 3600,
                                      "token_type": "Bearer"})
        api = self.serve()
        url = metadata.url + "/computeMetadata/v1/instance/service-accounts/default/token"
        client = self.client_for(api, api_key=None, credentials=yc_runs.MetadataCredentials(url))
        for _ in range(3):
            client.runs.get("r")
        self.assertEqual(len(metadata.requests), 1)
        line, headers = request_head(metadata.requests[0])
        self.assertEqual(line, "GET /computeMetadata/v1/instance/service-accounts/default/token "
                               "HTTP/1.1")
        self.assertEqual(headers["metadata-flavor"], "Google")
        self.assertEqual(self.auths(api), ["Bearer meta-1"] * 3)

    def test_metadata_token_close_to_expiry_is_refreshed(self) -> None:
        metadata = self.token_server({"access_token": "meta-1", "expires_in": 30},
                                     {"access_token": "meta-2", "expires_in": 3600})
        api = self.serve()
        client = self.client_for(api, api_key=None,
                                 credentials=yc_runs.MetadataCredentials(metadata.url + "/token"))
        client.runs.get("r")
        client.runs.get("r")
        client.runs.get("r")
        self.assertEqual(len(metadata.requests), 2)
        self.assertEqual(self.auths(api), ["Bearer meta-1", "Bearer meta-2", "Bearer meta-2"])

    def test_401_with_refreshing_credentials_refreshes_once_and_retries(self) -> None:
        metadata = self.token_server({"access_token": "meta-1", "expires_in": 3600},
                                     {"access_token": "meta-2", "expires_in": 3600})
        unauthorized = error_response(401, {"error": {"grpcCode": 16, "httpCode": 401,
                                                  "message": "token expired"}})
        api = self.serve(unauthorized, json_response(200, RUN_JSON))
        client = self.client_for(api, api_key=None,
                                 credentials=yc_runs.MetadataCredentials(metadata.url + "/token"))
        self.assertEqual(client.runs.get("r").id, "fvt-run-1")
        self.assertEqual(len(metadata.requests), 2)
        self.assertEqual(self.auths(api), ["Bearer meta-1", "Bearer meta-2"])

    def test_listen_after_a_401_refreshes_the_token_once_and_streams(self) -> None:
        metadata = self.token_server({"access_token": "meta-1", "expires_in": 3600},
                                     {"access_token": "meta-2", "expires_in": 3600})
        unauthorized = error_response(401, {"error": {"grpcCode": 16, "httpCode": 401,
                                                  "message": "token expired"}})
        done = stream_handler(one_chunk(listen_line("DONE", 0, "ok") + b"\n")
                                   + b"0\r\n\r\n")
        api = self.serve(unauthorized, done)
        client = self.client_for(api, api_key=None,
                                 credentials=yc_runs.MetadataCredentials(metadata.url + "/token"))
        events = list(yc_runs.Run("r", _runs=client.runs).listen())
        self.assertEqual([e.text for e in events], ["ok"])
        self.assertEqual(self.auths(api), ["Bearer meta-1", "Bearer meta-2"])

    def test_persistent_401_with_refreshing_credentials_retries_only_once(self) -> None:
        metadata = self.token_server({"access_token": "meta-1", "expires_in": 3600},
                                     {"access_token": "meta-2", "expires_in": 3600})
        api = self.serve(error_response(401, {"error": {"grpcCode": 16, "httpCode": 401,
                                                    "message": "no"}}))
        client = self.client_for(api, api_key=None, max_retries=3,
                                 credentials=yc_runs.MetadataCredentials(metadata.url + "/token"))
        with self.assertRaises(yc_runs.AuthenticationError):
            client.runs.get("r")
        self.assertEqual((len(api.requests), len(metadata.requests)), (2, 2))

    def test_401_with_an_api_key_is_not_retried(self) -> None:
        api = self.serve(error_response(401, {"error": {"grpcCode": 16, "httpCode": 401,
                                                    "message": "no"}}))
        with self.assertRaises(yc_runs.AuthenticationError):
            self.client_for(api, max_retries=3).runs.get("r")
        self.assertEqual(len(api.requests), 1)

    def test_token_service_errors_raise_credentials_error_without_the_token(self) -> None:
        iam = self.token_server(error_response(401, {"message": "bad oauth y0_oauth-secret-token"}))
        api = self.serve()
        credentials = yc_runs.OAuthCredentials("y0_oauth-secret-token", url=iam.url + "/tokens")
        with self.assertRaises(yc_runs.CredentialsError) as caught:
            self.client_for(api, api_key=None, credentials=credentials).runs.get("r")
        self.assertIn("401", str(caught.exception))
        self.assertNotIn("y0_oauth-secret-token", str(caught.exception))
        self.assertEqual(api.requests, [])
        for answer in (json_response(200, {"expiresAt": "x"}), json_response(200, []),
                       http_response(200, b"<html>")):
            with self.subTest(answer=answer):
                iam = self.token_server(answer)
                credentials = yc_runs.OAuthCredentials("y0_oauth-secret-token", url=iam.url)
                with self.assertRaises(yc_runs.CredentialsError):
                    self.client_for(api, api_key=None, credentials=credentials).runs.get("r")

    def test_unreachable_token_service_raises_credentials_error(self) -> None:
        url = "http://127.0.0.1:%d/token" % closed_port()
        client = self.client_for(self.serve(), api_key=None,
                                 credentials=yc_runs.MetadataCredentials(url, timeout=2))
        with self.assertRaises(yc_runs.CredentialsError) as caught:
            client.runs.get("r")
        self.assertIn("cannot get an IAM token", str(caught.exception))

    def test_folder_id_from_the_environment(self) -> None:
        server = self.serve()
        os.environ["YC_FOLDER_ID"] = "env-folder"
        client = yc_runs.Client(base_url=server.url, api_key=API_KEY)
        self.addCleanup(client.close)
        self.assertEqual(client.folder_id, "env-folder")
        client.runs.get("r")
        list(client.runs.list())
        self.client_for(server, folder_id="explicit").runs.get("r")
        self.assertEqual([request_header(r, "x-folder-id") for r in server.requests],
                         ["env-folder", "env-folder", "explicit"])
        self.assertIn("folderId=env-folder", request_target(server.requests[1]))

    def test_no_credential_raises_credentials_error_naming_the_options(self) -> None:
        with self.assertRaises(yc_runs.CredentialsError) as caught:
            yc_runs.Client(base_url="http://127.0.0.1:1")
        for option in ("api_key", "iam_token", "YC_API_KEY", "YC_IAM_TOKEN", "YC_TOKEN",
                       "YC_OAUTH_TOKEN"):
            self.assertIn(option, str(caught.exception))
        with self.assertRaises(yc_runs.CredentialsError) as caught:
            yc_runs.Client(base_url="http://127.0.0.1:1", api_key="a", iam_token="b")
        self.assertIn("only one", str(caught.exception))

    def test_crlf_in_a_credential_is_refused_without_echoing_it(self) -> None:
        server = self.serve()
        bad = "abc\r\nX-Injected: yes"
        for kwargs in ({"api_key": bad}, {"api_key": None, "iam_token": bad},
                       {"api_key": "ok\x00"}):
            with self.subTest(kwargs=kwargs), self.assertRaises(yc_runs.CredentialsError) as caught:
                yc_runs.Client(base_url=server.url, **kwargs)
            self.assertNotIn("X-Injected", str(caught.exception))
            self.assertNotIn("abc", str(caught.exception))
        client = self.client_for(server, api_key=lambda: bad)
        with self.assertRaises(yc_runs.CredentialsError) as caught:
            client.runs.get("r")
        self.assertNotIn("X-Injected", str(caught.exception))
        os.environ["YC_API_KEY"] = "env\nX-Injected: 1"
        client = self.client_for(server, api_key=None)
        with self.assertRaises(yc_runs.CredentialsError) as caught:
            client.runs.get("r")
        self.assertNotIn("X-Injected", str(caught.exception))
        self.assertEqual(server.requests, [])

    def test_non_ascii_credential_is_refused_without_echoing_it(self) -> None:
        server = self.serve()
        secret = "s\u00e9cret\u2026key-value"
        with self.assertRaises(yc_runs.CredentialsError) as caught:
            yc_runs.Client(base_url=server.url, api_key=secret)
        self.assertNotIn(secret, repr(caught.exception))
        client = self.client_for(server, api_key=lambda: secret)
        with self.assertRaises(yc_runs.CredentialsError) as caught:
            client.runs.get("r")
        self.assertNotIn(secret, repr(caught.exception))
        self.assertEqual(server.requests, [])

    def test_repr_never_shows_the_secret(self) -> None:
        clients = [
            yc_runs.Client(base_url="http://127.0.0.1:1", api_key=TEST_SECRET),
            yc_runs.Client(base_url="http://127.0.0.1:1", iam_token=TEST_SECRET),
            yc_runs.Client(base_url="http://127.0.0.1:1", api_key=lambda: TEST_SECRET),
            yc_runs.Client(base_url="http://127.0.0.1:1",
                           credentials=yc_runs.OAuthCredentials(TEST_SECRET, url="http://127.0.0.1:1")),
        ]
        for client in clients:
            self.assertNotIn(TEST_SECRET, repr(client))
            self.assertNotIn(TEST_SECRET, repr(client._config.credentials))
            self.assertIn("***", repr(client))

    def test_emulator_echo_of_a_wrong_api_key_is_redacted(self) -> None:
        with yc_runs.Emulator(api_key="right") as emu, \
                yc_runs.Client(base_url=emu.url, api_key=TEST_SECRET) as client:
            with self.assertRaises(yc_runs.AuthenticationError) as caught:
                client.runs.get("r")
            with self.assertRaises(yc_runs.AuthenticationError):
                client.runs.create("a", "t")
        exc = caught.exception
        for text in (str(exc), repr(exc), exc.message, repr(exc.args)):
            self.assertNotIn(TEST_SECRET, text)
        self.assertIn("***", str(exc))
        self.assertEqual((exc.status, exc.grpc_code), (401, 16))

    def test_secret_quoted_anywhere_in_an_error_is_redacted(self) -> None:
        body = {"error": {"grpcCode": 3, "httpCode": 400,
                          "message": "request from %s rejected" % TEST_SECRET}}
        server = self.serve(error_response(400, body, ("x-request-id", "req-" + TEST_SECRET)))
        with self.assertRaises(yc_runs.BadRequestError) as caught:
            self.client_for(server, api_key=TEST_SECRET).runs.get("r")
        self.assertNotIn(TEST_SECRET, str(caught.exception))
        self.assertNotIn(TEST_SECRET, repr(caught.exception.request_id))

    def test_secret_quoted_in_a_stream_error_line_is_redacted(self) -> None:
        line = json.dumps({"error": {"grpcCode": 16, "httpCode": 401,
                                     "message": "credential %s was revoked" % TEST_SECRET}}).encode()
        server = self.serve(stream_handler(one_chunk(line + b"\n"), b"0\r\n\r\n"))
        client = self.client_for(server, api_key=TEST_SECRET)
        with self.assertRaises(yc_runs.AuthenticationError) as caught:
            list(yc_runs.Run("r", _runs=client.runs).listen())
        self.assertNotIn(TEST_SECRET, str(caught.exception))


class AsyncCredentialsTest(AsyncEmulatorTestCase):
    async def test_coroutine_function_as_api_key_provider(self) -> None:
        calls = []

        async def provider() -> str:
            calls.append(1)
            await asyncio.sleep(0)
            return "async-key-000111"

        self.emu.api_key = "async-key-000111"
        client = self.async_client(api_key=provider)
        run = await client.runs.create("asst", "t")
        await client.runs.get(run.id)
        self.assertEqual(len(calls), 2)
        self.assertTrue(all(r.headers["Authorization"] == "Api-Key ***" for r in self.emu.requests))

    async def test_coroutine_provider_returning_a_wrong_key_is_an_authentication_error(self) -> None:
        async def provider() -> str:
            return "wrong-key-999888"

        self.emu.api_key = "right-key-000111"
        with self.assertRaises(yc_runs.AuthenticationError) as caught:
            await self.async_client(api_key=provider).runs.get("r")
        self.assertNotIn("wrong-key-999888", str(caught.exception))


class AsyncProviderInSyncClientTest(EnvTestCase):
    def test_sync_client_refuses_a_provider_that_returns_an_awaitable(self) -> None:
        async def provider() -> str:
            return "k-0001234"

        with RawServer(lambda conn, request: False) as server:
            client = yc_runs.Client(base_url=server.url, api_key=provider)
            self.addCleanup(client.close)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                with self.assertRaises(yc_runs.CredentialsError) as error:
                    client.runs.get("r")
                gc.collect()
            self.assertIn("AsyncClient", str(error.exception))
            self.assertEqual([w for w in caught if "never awaited" in str(w.message)], [])
            self.assertEqual(server.connections, 0)


# ============================================================================
# Command line and packaging: the one file, the wheel, the import, the README
# ============================================================================


class CliCommandTest(CliCase):
    def test_create_prints_the_run(self) -> None:
        result = self.cli("create", "asst", "th-1", "-m", "hello")
        self.assertExit(result, 0)
        lines = result.stdout.splitlines()
        match = re.match(r"run (\S+)  (PENDING|IN_PROGRESS|COMPLETED)$", lines[0])
        self.assertIsNotNone(match, lines[0])
        assert match is not None
        self.assertIn(match.group(1), self.emu.runs)
        self.assertIn("  assistant  asst", lines)
        self.assertIn("  thread     th-1", lines)
        body = self.requests_to("POST", "/assistants/v1/runs")[-1].json
        self.assertEqual(body["additionalMessages"],
                         [{"content": {"content": [{"text": {"content": "hello"}}]}}])
        self.assertNotIn("stream", body)

    def test_create_options_reach_the_request(self) -> None:
        result = self.cli("create", "asst", "th-2", "-m", "first", "--message", "second",
                          "--temperature", "0", "--max-tokens", "7", "--label", "team=ml",
                          "--label", "note=a=b", "--json")
        self.assertExit(result, 0)
        [run] = json_lines(self, result.stdout)
        self.assertEqual(run["labels"], {"team": "ml", "note": "a=b"})
        self.assertEqual(run["custom_temperature"], 0.0)
        self.assertEqual(run["custom_max_tokens"], 7)
        self.assertEqual(run["assistant_id"], "asst")
        body = self.requests_to("POST", "/assistants/v1/runs")[-1].json
        self.assertEqual([m["content"]["content"][0]["text"]["content"]
                          for m in body["additionalMessages"]], ["first", "second"])
        self.assertEqual(body["customCompletionOptions"], {"temperature": 0.0, "maxTokens": "7"})
        self.assertEqual(body["labels"], {"team": "ml", "note": "a=b"})

    def test_create_stream_prints_the_reply_text(self) -> None:
        result = self.cli("create", "asst", "th-3", "-m", "the quick brown fox jumps over",
                          "--stream")
        self.assertExit(result, 0)
        lines = result.stdout.splitlines()
        self.assertRegex(lines[0], r"^run \S+$")
        self.assertEqual(lines[1:], ["the quick brown fox jumps over", "[DONE]"])
        self.assertIs(self.requests_to("POST", "/assistants/v1/runs")[-1].json["stream"], True)

    def test_create_stream_json_is_one_object_per_event(self) -> None:
        self.emu.script("pieces", replies=[["Hel", "lo, ", "world"]])
        result = self.cli("--json", "create", "pieces", "th-4", "-m", "hi", "--stream")
        self.assertExit(result, 0)
        run, *events = json_lines(self, result.stdout)  # the run first: a script needs its id
        self.assertIn(run["id"], self.emu.runs)
        self.assertEqual(run["assistant_id"], "pieces")
        self.assertEqual([e["event"] for e in events], ["PARTIAL_MESSAGE", "PARTIAL_MESSAGE", "DONE"])
        self.assertEqual([e["index"] for e in events], [0, 1, 2])
        self.assertEqual([e["text"] for e in events], ["Hel", "Hello, ", "Hello, world"])
        self.assertEqual("".join(e["delta"] for e in events), "Hello, world")

    def test_create_with_tools_then_submit_pairs_then_wait(self) -> None:
        tools = write_json_file(self, [{"function": {
            "name": "get_weather", "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}}}])
        created = self.cli("create", "asst", "th-5", "-m", "Moscow", "--tools", tools, "--wait",
                           "--poll-interval", "0.01")
        self.assertExit(created, 0)
        self.assertRegex(created.stdout, r"^run \S+  TOOL_CALLS\n")
        self.assertIn('  tool call  get_weather({"city": "Moscow"})', created.stdout)
        run_id = created.stdout.split()[1]
        body = self.requests_to("POST", "/assistants/v1/runs")[-1].json
        self.assertEqual(body["tools"][0]["function"]["name"], "get_weather")

        submitted = self.cli("submit", run_id, "get_weather=sunny, +21")
        self.assertExit(submitted, 0)
        self.assertEqual(submitted.stdout, "submitted 1 tool result(s) to run %s\n" % run_id)
        body = self.requests_to("PATCH", "/assistants/v1/runs/submit")[-1].json
        self.assertEqual(body, {"runId": run_id, "toolResultList": {"toolResults": [
            {"functionResult": {"name": "get_weather", "content": "sunny, +21"}}]}})

        waited = self.cli("wait", run_id, "--poll-interval", "0.05")
        self.assertExit(waited, 0)
        self.assertRegex(waited.stdout, r"^run %s  COMPLETED\n" % run_id)
        self.assertIn("  text       get_weather returned sunny, +21", waited.stdout)

    def test_submit_results_file(self) -> None:
        self.emu.script("tooly", tool_calls=[{"name": "lookup", "arguments": {"q": "x"}},
                                             {"name": "calc", "arguments": {"a": 1}},
                                             {"name": "extra", "arguments": {}}],
                        replies=["all done"])
        run = self.client.runs.create("tooly", "th-6")
        self.assertEqual(self.finished(run).status, yc_runs.RunStatus.TOOL_CALLS)
        results = write_json_file(self, [{"name": "lookup", "content": "found"},
                                        {"name": "calc", "content": {"sum": 3}}])
        result = self.cli("submit", run.id, "extra=1", "--results", results, "--json")
        self.assertExit(result, 0)
        self.assertEqual(json_lines(self, result.stdout), [{"submitted": 3, "run_id": run.id}])
        sent = self.requests_to("PATCH", "/assistants/v1/runs/submit")[-1].json
        self.assertEqual(sent["toolResultList"]["toolResults"], [
            {"functionResult": {"name": "lookup", "content": "found"}},
            {"functionResult": {"name": "calc", "content": '{"sum": 3}'}},
            {"functionResult": {"name": "extra", "content": "1"}}])  # the file first, then pairs
        self.assertEqual(self.finished(run).text, "all done")

    def test_get_last_and_list(self) -> None:
        runs = [self.client.runs.create("asst", "th-%d" % (i % 3), additional_messages=["m%d" % i])
                for i in range(5)]
        with yc_runs.Client(base_url=self.emu.url, api_key="k", folder_id="elsewhere") as other:
            other.runs.create("asst", "th-0")
        for run in runs:
            self.finished(run)

        got = self.cli("get", runs[1].id)
        self.assertExit(got, 0)
        self.assertRegex(got.stdout, r"^run %s  COMPLETED\n" % runs[1].id)
        self.assertIn("  text       m1", got.stdout)
        [obj] = json_lines(self, self.cli("get", runs[1].id, "--json").stdout)
        self.assertEqual((obj["id"], obj["status"], obj["result"]["text"]),
                         (runs[1].id, "COMPLETED", "m1"))

        last = self.cli("last", "th-1", "--json")
        self.assertExit(last, 0)
        self.assertEqual(json_lines(self, last.stdout)[0]["id"], runs[4].id)

        listed = self.cli("list")
        self.assertExit(listed, 0)
        self.assertEqual([line.split()[0] for line in listed.stdout.splitlines()],
                         [r.id for r in runs])

        before = len(self.emu.requests)
        limited = self.cli("list", "--page-size", "2", "--limit", "3")
        self.assertExit(limited, 0)
        self.assertEqual([line.split()[0] for line in limited.stdout.splitlines()],
                         [r.id for r in runs[:3]])
        pages = self.emu.requests[before:]
        self.assertEqual(len(pages), 2)  # the third page is never fetched
        for page in pages:
            self.assertEqual((page.method, page.path), ("GET", "/assistants/v1/runs"))
            self.assertEqual((page.query["folderId"], page.query["pageSize"]), ("folder-1", "2"))

        before = len(self.emu.requests)
        every = self.cli("list", "--page-size", "2", "--json")
        self.assertExit(every, 0)
        self.assertEqual([o["id"] for o in json_lines(self, every.stdout)], [r.id for r in runs])
        self.assertEqual(len(self.emu.requests) - before, 3)  # 2 + 2 + 1, no empty fourth page

    def test_listen_from_an_index(self) -> None:
        self.emu.script("pieces", replies=[["a ", "b ", "c ", "d"]])
        run = self.client.runs.create("pieces", "th-7", stream=True)
        self.finished(run)
        whole = self.cli("listen", run.id)
        self.assertExit(whole, 0)
        self.assertEqual(whole.stdout, "a b c d\n[DONE]\n")
        tail = self.cli("listen", run.id, "--from", "2", "--json")
        self.assertExit(tail, 0)
        events = json_lines(self, tail.stdout)
        self.assertEqual([(e["index"], e["event"]) for e in events],
                         [(2, "PARTIAL_MESSAGE"), (3, "DONE")])
        self.assertEqual(events[-1]["text"], "a b c d")
        listen = self.requests_to("GET", "/assistants/v1/runs/listen")[-1]
        self.assertEqual(listen.query, {"runId": run.id, "eventsStartIdx": "2"})

    def test_a_bad_poll_flag_is_refused_before_create_makes_a_run(self) -> None:
        before = len(self.emu.runs)
        result = self.cli("create", "asst", "t", "-m", "x", "--wait", "--poll-interval", "-1")
        line = self.assertErrorLine(result, 2)
        self.assertIn("--poll-interval", line)
        self.assertEqual(len(self.emu.runs), before)

    def test_wait_times_out_with_exit_4(self) -> None:
        self.emu.script("slow", replies=["eventually"], delay=60)
        run = self.client.runs.create("slow", "th-8")
        started = time.monotonic()
        result = self.cli("wait", run.id, "--poll-timeout", "0.1", "--poll-interval", "0.02")
        line = self.assertErrorLine(result, 4)
        self.assertIn("still", line)
        self.assertIn(run.id, line)
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(result.stdout, "")

    def test_wait_json(self) -> None:
        run = self.client.runs.create("asst", "th-9", additional_messages=["ready"])
        result = self.cli("wait", run.id, "--poll-interval", "0.02", "--json")
        self.assertExit(result, 0)
        [obj] = json_lines(self, result.stdout)
        self.assertEqual((obj["status"], obj["result"]["text"]), ("COMPLETED", "ready"))

    def test_help_on_every_command(self) -> None:
        invocations = [("--help",), ("--version",)] + [(c, "--help") for c in COMMANDS]
        results = [run_main(*args) for args in invocations]
        for args, result in zip(invocations, results):
            with self.subTest(args=args):
                self.assertExit(result, 0)
                if args == ("--version",):
                    self.assertEqual(result.stdout.strip(), "yc_runs %s" % yc_runs.__version__)
                else:
                    self.assertIn("usage: python -m yc_runs", result.stdout)
        for command in COMMANDS:
            self.assertIn(command, results[0].stdout)

    def test_demo(self) -> None:
        started = time.monotonic()
        result = run_main("demo", "--event-delay", "0.001")
        elapsed = time.monotonic() - started
        self.assertExit(result, 0)
        self.assertLess(elapsed, 30)
        self.assertEqual(result.stderr, "")
        self.assertIn("-> tool call: get_weather", result.stdout)
        self.assertIn("It is sunny and +21 \u00b0C in Moscow right now.\n[DONE]\n", result.stdout)
        self.assertIn("  text       It is sunny and +21 \u00b0C in Moscow right now.", result.stdout)


class CliErrorTest(CliCase):
    def test_a_failed_run_exits_1(self) -> None:
        self.emu.script("broken", error="boom")
        streamed = self.cli("create", "broken", "t", "-m", "x", "--stream")
        self.assertExit(streamed, 1)
        self.assertTrue(streamed.stdout.endswith("[ERROR: boom]\n"), streamed.stdout)
        waited = self.cli("create", "broken", "t", "-m", "x", "--wait", "--json",
                          "--poll-interval", "0.01")
        self.assertExit(waited, 1)
        [obj] = json_lines(self, waited.stdout)
        self.assertEqual((obj["status"], obj["result"]["error"]["message"]), ("FAILED", "boom"))
        self.assertIsNone(obj["result"]["text"])
        self.assertExit(self.cli("get", obj["id"]), 1)
        self.assertExit(self.cli("wait", obj["id"]), 1)
        listened = self.cli("listen", obj["id"], "--json")
        self.assertExit(listened, 1)
        self.assertEqual(json_lines(self, listened.stdout)[-1]["event"], "ERROR")

    def test_a_bad_json_file_is_named_in_the_error(self) -> None:
        bad_json = write_json_file(self, {})
        with open(bad_json, "w") as handle:
            handle.write("[not json")
        line = self.assertErrorLine(self.cli("create", "a", "t", "--tools", bad_json), 2)
        self.assertIn("--tools %s is not valid JSON" % bad_json, line)
        line = self.assertErrorLine(self.cli("submit", "r", "--results", "/nonexistent.json"), 2)
        self.assertIn("--results /nonexistent.json", line)

    def test_usage_errors_exit_2(self) -> None:
        bad_json = write_json_file(self, {})
        with open(bad_json, "w") as handle:
            handle.write("[not json")
        cases: List[Tuple[str, ...]] = [
            (), ("frobnicate",), ("create", "only-assistant"), ("get",),
            ("create", "a", "t", "--temperature", "hot"), ("list", "--page-size", "many"),
            ("create", "a", "t", "--label", "novalue"),
            ("create", "a", "t", "--tools", "/nonexistent/tools.json"),
            ("create", "a", "t", "--tools", bad_json),
            ("submit", "r"), ("submit", "r", "=x"), ("submit", "r", "novalue"),
            ("list", "--page-size", "-1"), ("wait", "r", "--poll-timeout", "0"),
            ("get", "r", "--timeout", "-1"), ("listen", "r", "--from", "-1"),
        ]
        for args in cases:
            with self.subTest(args=args):
                result = self.cli(*args)
                self.assertExit(result, 2)
                self.assertEqual(result.stdout, "")
                self.assertTrue(result.stderr.strip())
        self.assertEqual(self.emu.requests, [])

    def test_credential_problems_exit_2(self) -> None:
        missing = run_main("get", "r", "--base-url", self.emu.url)
        self.assertIn("no credential", self.assertErrorLine(missing, 2))
        both = run_main("get", "r", "--base-url", self.emu.url, "--api-key", "a1", "--iam-token", "b2")
        self.assertIn("only one", self.assertErrorLine(both, 2))
        insecure = run_main("get", "r", "--base-url", "http://example.invalid", "--api-key", "k")
        self.assertIn("https", self.assertErrorLine(insecure, 2))
        for broken in (TEST_SECRET + "\r\nX-Evil: 1", TEST_SECRET + "\n", "\r" + TEST_SECRET):
            result = self.cli("get", "r", api_key=broken)
            line = self.assertErrorLine(result, 2)
            self.assertIn("CR, LF or NUL", line)
            self.assertNotIn(TEST_SECRET, result.stdout + result.stderr)
        self.assertEqual(self.emu.requests, [])

    def test_api_errors_exit_3_with_the_request_id(self) -> None:
        line = self.assertErrorLine(self.cli("get", "no-such-run"), 3)
        self.assertIn("HTTP 404", line)
        self.assertRegex(line, r"request id fvt\w+")
        self.assertIn("HTTP 404", self.assertErrorLine(self.cli("listen", "no-such-run"), 3))
        self.assertIn("HTTP 404", self.assertErrorLine(self.cli("last", "no-such-thread"), 3))
        run = self.client.runs.create("asst", "t", additional_messages=["x"])
        self.finished(run)
        line = self.assertErrorLine(self.cli("submit", run.id, "f=1"), 3)
        self.assertIn("HTTP 400", line)
        self.assertIn("not waiting for tool results", line)

    def test_unreachable_server_exits_3(self) -> None:
        started = time.monotonic()
        result = run_main("get", "r", "--base-url", "http://127.0.0.1:%d" % closed_port(),
                          "--api-key", TEST_SECRET, "--max-retries", "0")
        line = self.assertErrorLine(result, 3)
        self.assertIn("cannot connect", line)
        self.assertNotIn(TEST_SECRET, result.stderr)
        self.assertLess(time.monotonic() - started, 20)  # no retries asked for

    def test_zero_timeout_is_a_usage_error_not_the_default(self) -> None:
        line = self.assertErrorLine(self.cli("get", "r", "--timeout", "0"), 2)
        self.assertIn("timeout must be positive", line)

    def test_scripted_replies_are_successive_answers_across_runs(self) -> None:
        self.emu.script("scripted", replies=["first", ["sec", "ond"], "third"])
        texts = [self.finished(self.client.runs.create("scripted", "t-%d" % i)).text
                 for i in range(4)]
        self.assertEqual(texts, ["first", "second", "third", "third"])
        self.emu.script("scripted", replies=["again"])  # scripting anew starts over
        self.assertEqual(self.finished(self.client.runs.create("scripted", "t")).text, "again")

    def test_a_request_timeout_exits_4(self) -> None:
        run = self.client.runs.create("asst", "t")
        self.emu.inject(yc_runs.Fault.stall(3.0), on="get")
        line = self.assertErrorLine(self.cli("get", run.id, "--timeout", "0.1"), 4)
        self.assertIn("0.1", line)

    def test_the_credential_is_never_printed(self) -> None:
        with yc_runs.Emulator(api_key="other", implicit=True) as emu:
            base = ("--base-url", emu.url, "--folder-id", "f")
            variants: List[Tuple[Tuple[str, ...], Dict[str, str], bool]] = [
                (("get", "r", "--api-key", TEST_SECRET), {}, False),
                (("get", "r", "--api-key", TEST_SECRET, "--json"), {}, False),
                (("get", "r", "--api-key", TEST_SECRET, "--debug"), {}, True),
                (("list", "--api-key", TEST_SECRET), {}, False),
                (("listen", "r", "--api-key", TEST_SECRET), {}, False),
                (("create", "a", "t", "-m", "hi", "--iam-token", TEST_SECRET), {}, False),
                (("get", "r"), {"YC_API_KEY": TEST_SECRET}, False),
                (("submit", "r", "f=1"), {"YC_IAM_TOKEN": TEST_SECRET}, False),
                (("wait", "r", "--debug"), {"YC_API_KEY": TEST_SECRET}, True),
            ]
            for args, env, debug in variants:
                with self.subTest(args=args, env=sorted(env)):
                    result = run_main(*args, *base, env=env)
                    self.assertEqual(result.returncode, 3, result.stderr)
                    self.assertNotIn(TEST_SECRET, result.stdout + result.stderr)
                    self.assertNotIn("abc123xyz", result.stdout + result.stderr)
                    self.assertIn("Unknown api key", result.stderr)
                    self.assertIn("HTTP 401", result.stderr)
                    if debug:
                        self.assertIn("Traceback", result.stderr)
                    else:
                        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
            # the emulator did echo the key: the CLI is what kept it out of the output
            self.assertTrue(any(r.headers.get("Authorization", "").endswith("***")
                                for r in emu.requests))


class CliSignalTest(CliCase):
    """Ctrl-C in this process: a KeyboardInterrupt where the command line meets it
    (CliProcessTest sends a real SIGINT to a process)."""

    def test_ctrl_c_during_listen_exits_130(self) -> None:
        self.emu.script("slow", replies=[["a ", "b ", "c ", "d ", "e ", "f"]], delay=0.01)
        for json_mode in (True, False):
            with self.subTest(json=json_mode):
                run = self.client.runs.create("slow", "t", stream=True)
                args = ["listen", run.id, "--base-url", self.emu.url, "--api-key", TEST_SECRET]
                # the first event is printed; Ctrl-C comes while the second one is
                interrupting = FailingStdout(KeyboardInterrupt(), ok=1, once=True)
                result = run_main(*(args + ["--json"] if json_mode else args), stdout=interrupting)
                self.assertEqual(result.returncode, 130, result)
                self.assertEqual(result.stderr, "interrupted\n")
                if json_mode:
                    events = [json.loads(line) for line in result.stdout.splitlines()]
                    self.assertEqual((events[0]["event"], events[0]["index"]), ("PARTIAL_MESSAGE", 0))
                    for event in events:
                        self.assertEqual(event["event"], "PARTIAL_MESSAGE")
                else:  # the interrupted line is finished with a newline
                    self.assertRegex(result.stdout, r"^a (b (c (d (e )?)?)?)?\n$")
                self.assertNotIn(TEST_SECRET, result.stdout + result.stderr)

    def test_serve_logs_each_request_and_stops_on_ctrl_c(self) -> None:
        expected = {("POST", "/assistants/v1/runs", "200"), ("GET", "/assistants/v1/runs/listen", "200"),
                    ("GET", "/assistants/v1/runs/missing", "404"), ("GET", "/assistants/v1/runs/x", "401")}
        served: List[str] = []

        def work(url: str, lines: Callable[[int], List[str]]) -> None:
            served.append(url)
            with yc_runs.Client(base_url=url, api_key=TEST_SECRET, folder_id="f",
                                timeout=10) as client:
                run = client.runs.create("a", "t", additional_messages=["hi there"], stream=True)
                self.assertEqual("".join(run.text_stream()), "hi there")
                with self.assertRaises(yc_runs.NotFoundError):
                    client.runs.get("missing")
            conn = http.client.HTTPConnection("127.0.0.1", urlsplit(url).port, timeout=10)
            conn.request("GET", "/assistants/v1/runs/x")  # no Authorization
            self.assertEqual(conn.getresponse().status, 401)
            conn.close()
            logged = set()
            for line in lines(len(expected)):
                self.assertNotIn(TEST_SECRET, line)
                self.assertNotIn("?", line)  # the query is not logged
                parts = re.fullmatch(r"(GET|POST|PATCH) (\S+) (\d{3}) \d+(\.\d+)?ms\n", line)
                self.assertIsNotNone(parts, line)
                assert parts is not None
                logged.add(parts.group(1, 2, 3))
            self.assertEqual(logged, expected)

        result = run_serve("--port", "0", "--event-delay", "0.001", work=work)
        self.assertEqual(result.returncode, 0, result)
        first = result.stdout.splitlines(True)[0]
        match = re.match(r"yc_runs emulator on (http://127\.0\.0\.1:\d+) ", first)
        self.assertIsNotNone(match, first)
        assert match is not None
        self.assertEqual([match.group(1)], served)
        self.assertEqual(result.stdout, first + "stopped\n")
        self.assertEqual(len(result.stderr.splitlines()), len(expected))  # nothing more
        self.assertNotIn("Traceback", result.stderr)


class CliProcessTest(CliCase):
    """What only a process shows, so these few run ``python -m yc_runs`` as one: that it
    runs, its exit status as a shell sees it, Ctrl-C as a signal, and a stdout that is
    closed or full as the interpreter exits (buffered, as by default, and with
    PYTHONUNBUFFERED). Every other command-line test runs main() in this process."""

    def closed_stdout(self, *args: str, **options: Any) -> "subprocess.CompletedProcess[str]":
        """The command with a stdout whose reader is already gone (as after ``| head``)."""
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            return self.process(*args, stdout=write_end, **options)
        finally:
            os.close(write_end)

    def test_python_m_yc_runs_end_to_end(self) -> None:
        self.emu.script("pieces", replies=[["Hel", "lo, ", "world"]])
        result = self.process("create", "pieces", "th-1", "-m", "hi", "--stream")
        self.assertExit(result, 0)
        lines = result.stdout.splitlines()
        self.assertRegex(lines[0], r"^run \S+$")
        self.assertIn(lines[0].split()[1], self.emu.runs)
        self.assertEqual(lines[1:], ["Hello, world", "[DONE]"])
        self.assertEqual(result.stderr, "")

    def test_exit_codes_as_a_process_sees_them(self) -> None:
        # one code main returns, argparse's own SystemExit, and success: the mapping of every
        # other code is CliErrorTest's, in this process
        cases: List[Tuple[int, Tuple[str, ...]]] = [
            (0, ("--version",)), (2, ("frobnicate",)), (3, ("get", "no-such-run"))]
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(lambda case: self.process(*case[1]), cases))
        for (code, args), result in zip(cases, results):
            with self.subTest(args=args):
                self.assertExit(result, code)
        self.assertEqual(results[0].stdout.strip(), "yc_runs %s" % yc_runs.__version__)
        self.assertTrue(results[1].stderr.startswith("usage: python -m yc_runs "), results[1].stderr)
        self.assertTrue(results[2].stderr.startswith("error: "), results[2].stderr)

    def test_sigint_during_listen_exits_130(self) -> None:
        # 0.15 s an event: the run still has 0.75 s to go when the first piece is out
        self.emu.script("slow", replies=[["a ", "b ", "c ", "d ", "e ", "f"]], delay=0.15)
        run = self.client.runs.create("slow", "t", stream=True)
        proc = start_process("listen", run.id, "--base-url", self.emu.url, "--api-key", TEST_SECRET)
        self.addCleanup(stop_process, proc)
        out, err = ProcessOutput(proc.stdout), ProcessOutput(proc.stderr)
        # the text comes without a newline: wait for its first bytes
        self.assertEqual(out.wait_for(lambda data: len(data) >= 2), b"a ")
        self.assertIsNone(proc.poll())  # the run is still going
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(30), 130)
        self.assertEqual(err.everything(), b"interrupted\n")
        self.assertRegex(out.everything(), rb"^a (b (c (d (e )?)?)?)?\n$")  # the line is finished
        self.assertNotIn(TEST_SECRET.encode(), out.everything() + err.everything())

    def test_serve_stops_on_sigint_with_exit_0(self) -> None:
        proc = start_process("serve", "--port", "0", "--event-delay", "0.001")
        self.addCleanup(stop_process, proc)
        out, err = ProcessOutput(proc.stdout), ProcessOutput(proc.stderr)
        first = out.lines(1)[0].decode()
        match = re.match(r"yc_runs emulator on (http://127\.0\.0\.1:\d+) ", first)
        self.assertIsNotNone(match, first)
        assert match is not None
        with yc_runs.Client(base_url=match.group(1), api_key=TEST_SECRET, folder_id="f",
                            timeout=10) as client:
            run = client.runs.create("a", "t", additional_messages=["hi there"], stream=True)
            self.assertEqual("".join(run.text_stream()), "hi there")
        err.lines(2)  # the create and the listen, logged
        proc.send_signal(signal.SIGINT)
        self.assertEqual(proc.wait(30), 0)
        self.assertEqual(out.everything(), first.encode() + b"stopped\n")
        self.assertEqual(len(err.everything().splitlines()), 2)  # nothing more
        self.assertNotIn(b"Traceback", err.everything())
        self.assertNotIn(TEST_SECRET.encode(), err.everything())

    def test_a_closed_stdout_ends_quietly_with_141(self) -> None:
        for unbuffered in ("", "1"):
            env = {"PYTHONUNBUFFERED": unbuffered}
            with self.subTest(PYTHONUNBUFFERED=unbuffered):
                result = self.closed_stdout("create", "asst", "t", "-m", "a long reply " * 20,
                                            "--stream", env=env)
                self.assertEqual((result.returncode, result.stderr), (141, ""))
                helped = self.closed_stdout("create", "--help", env=env)  # argparse's own output
                self.assertEqual((helped.returncode, helped.stderr), (0, ""))

    def test_list_and_stream_into_head_end_quietly(self) -> None:
        for _ in range(3):
            self.client.runs.create("asst", "t", additional_messages=["x"]).wait(poll_interval=0.01)
        self.emu.script("long", replies=[["piece %d " % i for i in range(40)]], delay=0.05)
        cli = "%s -m yc_runs --base-url %s --api-key k --folder-id folder-1" % (sys.executable, self.emu.url)
        # list may finish before head closes the pipe (0); the 2 s stream cannot (141)
        for command, output, codes in (("%s list | head -1", 1, ("0", "141")),
                                       ("%s create long t -m x --stream | head -c 5", 0, ("141",))):
            with self.subTest(command=command):
                script = command % cli + '; echo "exit=${PIPESTATUS[0]}" >&2'
                done = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                                      env=command_line_env(PYTHONUNBUFFERED=""), cwd=HERE, timeout=60)
                self.assertIn(done.stderr, ["exit=%s\n" % code for code in codes])  # nothing else
                if output:
                    self.assertEqual(len(done.stdout.splitlines()), 1, done.stdout)
                else:
                    self.assertEqual(done.stdout, "run f")

    @unittest.skipUnless(os.path.exists("/dev/full"), "needs /dev/full")
    def test_a_failed_write_exits_5_quietly(self) -> None:
        run = self.client.runs.create("asst", "t", additional_messages=["x"])
        run.wait(poll_interval=0.01)
        for unbuffered in ("", "1"):
            with self.subTest(PYTHONUNBUFFERED=unbuffered), open("/dev/full", "w") as full:
                result = self.process("get", run.id, "--json", stdout=full,
                                      env={"PYTHONUNBUFFERED": unbuffered})
                self.assertExit(result, 5)
                self.assertEqual(result.stderr, "error: cannot write the output: No space left on device\n")


class CliSurfaceTest(CliCase):
    """Issue 14, the command line."""

    def test_errors_name_the_command_line_flags(self) -> None:
        no_folder = run_main("list", "--base-url", self.emu.url, "--api-key", "k")
        no_credential = run_main("get", "r", "--base-url", self.emu.url)
        insecure = run_main("get", "r", "--base-url", "http://example.invalid", "--api-key", "k")
        for result, flag in ((no_folder, "--folder-id"), (no_credential, "--api-key"),
                             (insecure, "--allow-insecure")):
            with self.subTest(flag=flag):
                self.assertQuiet(result, 2)
                self.assertIn(flag, result.stderr)
                self.assertNotRegex(result.stderr, r"\b(api_key|folder_id|allow_insecure|iam_token)=")
        self.assertNotIn("credentials=", no_credential.stderr)
        self.assertIn("error: --from must be",
                      self.cli("listen", "r", "--from", "-1").stderr)
        self.assertEqual(self.emu.requests, [])

    def test_help_uses_the_name_it_was_run_by(self) -> None:
        done = run_main("create", "--help", argv0="/usr/local/bin/yc-runs")  # the console script
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertTrue(done.stdout.startswith("usage: yc-runs create "), done.stdout[:100])
        self.assertTrue(run_main("--help").stdout.startswith("usage: python -m yc_runs "))

    def test_every_option_has_help_and_every_command_has_json(self) -> None:
        import argparse

        parser = yc_runs._cli_parser()
        [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        for name, sub in commands.choices.items():
            flags = {s for a in sub._actions for s in a.option_strings}
            with self.subTest(command=name):
                self.assertIn("--json", flags)
                for action in sub._actions:
                    self.assertTrue(action.help, "%s %s has no help" % (name, action.option_strings
                                                                       or action.dest))
                has_client_flags = bool(flags & {"--api-key", "--base-url", "--folder-id"})
                self.assertEqual(has_client_flags, name not in ("serve", "demo"), flags)
        top = run_main("--help").stdout
        self.assertIn("JSON Lines", top)
        self.assertIn("141", top)

    def test_tools_file_format_is_documented_and_the_sample_works(self) -> None:
        helped = run_main("create", "--help").stdout
        for words in ('"name"', '"parameters"', "JSON Schema", "--tools-from", "MODULE:FUNCTION"):
            self.assertIn(words, helped)
        sample = os.path.join(HERE, "examples", "tools.json")
        result = self.cli("create", "asst", "t", "-m", "Moscow", "--tools", sample, "--wait",
                          "--json", "--poll-interval", "0.01")
        self.assertQuiet(result, 0)
        [run] = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(run["status"], "TOOL_CALLS")
        sent = [r.json for r in self.emu.requests if r.method == "POST"][-1]
        self.assertEqual([t["function"]["name"] for t in sent["tools"]],
                         ["get_weather", "lookup_order"])
        self.assertEqual(sent["tools"][0]["function"]["parameters"]["required"], ["city"])

    def test_tools_from_a_python_function(self) -> None:
        folder = tempfile.mkdtemp(prefix="yc-runs-tools-")
        self.addCleanup(lambda: __import__("shutil").rmtree(folder, ignore_errors=True))
        with open(os.path.join(folder, "my_tools.py"), "w", encoding="utf-8") as handle:
            handle.write("def add(a: int, b: int = 1) -> int:\n    '''Add two numbers.'''\n"
                         "    return a + b\n\nBOTH = [add, add]\n")
        self.addCleanup(sys.modules.pop, "my_tools", None)  # the command imported it, in-process
        by_module = self.cli("create", "asst", "t", "--tools-from", "my_tools:add", cwd=folder)
        self.assertQuiet(by_module, 0)
        tool = [r.json for r in self.emu.requests if r.method == "POST"][-1]["tools"][0]["function"]
        self.assertEqual((tool["name"], tool["description"], tool["parameters"]["required"]),
                         ("add", "Add two numbers.", ["a"]))
        self.assertEqual(tool["parameters"]["properties"]["a"], {"type": "integer"})
        by_path = self.cli("create", "asst", "t", "--tools-from",
                           os.path.join(HERE, "examples", "tools.py") + ":TOOLS")
        self.assertQuiet(by_path, 0)
        sent = [r.json for r in self.emu.requests if r.method == "POST"][-1]["tools"]
        self.assertEqual([t["function"]["name"] for t in sent], ["get_weather", "lookup_order"])
        for spec, words in (("nocolon", "MODULE:FUNCTION"), ("my_tools:nothing", "no function nothing"),
                            ("no_such_module_x:f", "cannot import no_such_module_x"),
                            ("/nonexistent/t.py:f", "no such file")):
            with self.subTest(spec=spec):
                result = self.cli("create", "asst", "t", "--tools-from", spec, cwd=folder)
                self.assertQuiet(result, 2)
                self.assertIn(words, result.stderr)

    def test_create_stream_json_prints_the_run_first_so_a_script_can_submit(self) -> None:
        result = self.cli("create", "asst", "t", "-m", "Moscow", "--stream", "--json", "--tools",
                          os.path.join(HERE, "examples", "tools.json"))
        self.assertQuiet(result, 0)
        run, *events = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(events[-1]["event"], "TOOL_CALLS")
        submitted = self.cli("submit", run["id"], "get_weather=sunny", "--json")
        self.assertQuiet(submitted, 0)
        self.assertEqual(self.client.runs.get(run["id"]).wait(poll_interval=0.01).text,
                         "get_weather returned sunny")

    def test_listen_follows_a_tool_call_run_once_results_are_in(self) -> None:
        run = self.client.runs.create("asst", "t", additional_messages=["Moscow"], stream=True,
                                      tools=[{"name": "get_weather", "parameters": {
                                          "type": "object", "properties": {"city": {"type": "string"}}}}])
        self.assertEqual(run.wait(poll_interval=0.01).status, yc_runs.RunStatus.TOOL_CALLS)
        waiting = self.cli("listen", run.id)
        self.assertQuiet(waiting, 0)
        self.assertEqual(waiting.stdout, '-> tool call: get_weather({"city": "Moscow"})\n[TOOL_CALLS]\n')
        run.submit_tool_results({"name": "get_weather", "content": "sunny"})
        run.wait(poll_interval=0.01)
        followed = self.cli("listen", run.id)
        self.assertQuiet(followed, 0)
        self.assertEqual(followed.stdout, '-> tool call: get_weather({"city": "Moscow"})\n'
                         "[TOOL_CALLS]\nget_weather returned sunny\n[DONE]\n")
        stopped = self.cli("listen", run.id, "--no-follow", "--json")
        self.assertEqual([json.loads(line)["event"] for line in stopped.stdout.splitlines()],
                         ["TOOL_CALLS"])

    def test_serve_and_demo_speak_json_lines(self) -> None:
        demo = run_main("demo", "--json", "--event-delay", "0.001")
        self.assertQuiet(demo, 0)
        objects = [json.loads(line) for line in demo.stdout.splitlines()]
        self.assertTrue(all(isinstance(o, dict) for o in objects))
        self.assertEqual(objects[-1]["status"], "COMPLETED")
        self.assertIn({"submitted": [{"name": "get_weather", "content": {
            "city": "Moscow", "temperature_c": 21, "sky": "sunny"}}], "run_id": objects[-1]["id"]},
            objects)


class CliOutputTest(CliCase):
    """Issue 11 item 16: a closed or failing stdout, passwords in URLs, deep JSON."""

    def test_a_closed_stdout_ends_quietly_with_141(self) -> None:
        import errno

        for i in range(3):
            self.emu.script("asst-%d" % i, replies=["r%d" % i])
            self.client.runs.create("asst-%d" % i, "t").wait(poll_interval=0.01)
        run = self.client.runs.create("asst-0", "t")
        for args in (("list",), ("list", "--json"), ("get", run.id),
                     ("create", "asst", "t", "-m", "a long reply " * 20, "--stream"),
                     ("create", "asst", "t", "-m", "hi", "--stream", "--json")):
            with self.subTest(args=args):
                result = self.cli(*args, stdout=FailingStdout(BrokenPipeError(errno.EPIPE, "Broken pipe")))
                self.assertQuiet(result, 141)
                self.assertEqual(result.stderr, "")
        helped = self.cli("create", "--help",  # argparse itself ignores the closed pipe
                          stdout=FailingStdout(BrokenPipeError(errno.EPIPE, "Broken pipe")))
        self.assertEqual((helped.returncode, helped.stderr), (0, ""))

    def test_a_failed_write_is_an_output_error_not_a_usage_error(self) -> None:
        import errno

        run = self.client.runs.create("asst", "t", additional_messages=["x"])
        run.wait(poll_interval=0.01)
        for args in (("get", run.id), ("get", run.id, "--json"), ("list",)):
            with self.subTest(args=args):
                full = FailingStdout(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
                result = self.cli(*args, stdout=full)
                self.assertQuiet(result, 5)
                self.assertEqual(result.stderr, "error: cannot write the output: No space left on device\n")

    def test_a_password_in_the_base_url_is_never_echoed(self) -> None:
        urls = ["https://user:%s@rest.example:notaport" % PASSWORD,
                "http://user:%s@example.invalid/" % PASSWORD,
                "https://user:%s@127.0.0.1:1/" % PASSWORD,
                "https://%s@127.0.0.1:99999" % PASSWORD,
                "ftp://user:%s@example.invalid" % PASSWORD]
        for url in urls:
            for debug in ((), ("--debug",)):
                with self.subTest(url=url, debug=debug):
                    result = run_main("get", "r", "--base-url", url, "--api-key", "k", *debug)
                    self.assertEqual(result.returncode, 2, result.stderr)
                    self.assertNotIn(PASSWORD, result.stdout + result.stderr)
                    self.assertIn("--base-url", result.stderr)
            with self.subTest(url=url, env=True):
                result = run_main("get", "r", "--api-key", "k", env={"YC_RUNS_BASE_URL": url})
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertNotIn(PASSWORD, result.stdout + result.stderr)
        with self.assertRaises(ValueError) as caught:
            yc_runs.Client(base_url=urls[0], api_key="k")
        self.assertNotIn(PASSWORD, str(caught.exception))
        self.assertIn("***@", str(caught.exception))

    def test_get_json_of_tool_arguments_nested_900_deep(self) -> None:
        self.emu.script("deep", tool_calls=[{"name": "f", "arguments": nested_json(900)}])
        run = self.client.runs.create("deep", "t", tools=[{"name": "f"}])
        self.assertEqual(run.wait(poll_interval=0.01).status, yc_runs.RunStatus.TOOL_CALLS)
        as_json = self.cli("get", run.id, "--json")
        self.assertQuiet(as_json, 0)
        [obj] = [json.loads(line) for line in as_json.stdout.splitlines()]
        self.assertEqual(json_depth(obj["result"]["tool_calls"][0]["function"]["arguments"]), 900)
        as_text = self.cli("get", run.id)
        self.assertQuiet(as_text, 0)
        self.assertIn('  tool call  f({"a": {"a": ', as_text.stdout)


class CliResponsesTest(RawServerTestCase):
    """The command line on the Responses wire: --api, a model URI or agent id, threads."""

    def test_create_stream_submit_and_listen_on_responses(self) -> None:
        service = ResponsesService()
        server = self.serve(service)
        common = ("--base-url", server.url, "--api-key", API_KEY, "--api", "responses")
        code, out, err = run_main("create", "gpt://b1g/aliceai-llm/latest", "--stream", "--json",
                                   "-m", "Погода?", "--instructions", "Ты — Джарвис.", *common)
        self.assertEqual((code, err), (0, ""))
        lines = [json.loads(line) for line in out.splitlines()]
        self.assertEqual(lines[0]["id"], service.func["id"])  # the run first, to submit to
        self.assertEqual(lines[-1]["event"], "TOOL_CALLS")
        self.assertEqual(service.bodies[0]["instructions"], "Ты — Джарвис.")
        self.assertNotIn("conversation", service.bodies[0])  # no thread: a stateless run
        code, out, _ = run_main("submit", service.func["id"], "get_weather=-3", "--json", *common)
        self.assertEqual((code, json.loads(out)["run_id"]), (0, service.plain["id"]))
        code, out, _ = run_main("listen", service.plain["id"], *common)
        self.assertEqual((code, out.splitlines()[0]), (0, "Привет, мир!"))
        self.assertNotIn(API_KEY, out)

    def test_thread_commands_on_responses(self) -> None:
        server = self.serve(conversations_service)
        common = ("--base-url", server.url, "--api-key", API_KEY, "--api", "responses")
        code, out, _ = run_main("thread", "create", "-m", "hi", "--name", "support", "--json", *common)
        self.assertEqual((code, json.loads(out)["id"], json.loads(out)["name"]), (0, "conv-1", "support"))
        code, out, _ = run_main("thread", "write", "conv-1", "more", "text", *common)
        self.assertEqual(code, 0)
        self.assertIn("more text", out)
        code, out, _ = run_main("thread", "messages", "conv-1", "--json", *common)
        self.assertEqual([json.loads(line)["parts"] for line in out.splitlines()], [["two"], ["three"]])
        code, _, err = run_main("thread", "get", "conv-404", *common)
        self.assertEqual(code, 3)
        self.assertIn("no such conversation", err)

    def test_an_unknown_api_is_a_usage_error(self) -> None:
        code, _, err = run_main("get", "r", "--api", "grpc", "--api-key", "k")
        self.assertEqual(code, 2)
        self.assertIn("--api", err)

    def test_debug_logs_requests_without_the_key(self) -> None:
        import logging

        server = self.serve(json_response(200, capture_final("plain.sse")))
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        self.addCleanup(lambda: (root.handlers.__setitem__(slice(None), handlers), root.setLevel(level)))
        root.handlers[:] = []
        code, out, err = run_main("get", "ff635965-2c99-44f5-aa1e-2d84ffc68733", "--debug",
                                   "--base-url", server.url, "--api-key", API_KEY, "--api", "responses")
        self.assertEqual(code, 0)
        self.assertIn("GET /v1/responses/ff635965-2c99-44f5-aa1e-2d84ffc68733: HTTP 200", err)
        self.assertNotIn(API_KEY, err + out)


class ServeFlagsTest(EnvTestCase):
    def test_serve_strict_refuses_unknown_threads_and_keep_requests_is_checked(self) -> None:
        served: List[str] = []

        def work(url: str, lines: Callable[[int], List[str]]) -> None:
            served.append(url)
            with yc_runs.Client(base_url=url, api_key="k", api="assistants") as client, \
                    self.assertRaises(yc_runs.NotFoundError):
                client.runs.create("asst", "no-such-thread")
            lines(1)  # logged: nothing is being written when serve stops

        result = run_serve("--strict", "--port", "0", "--json", "--keep-requests", "5", work=work)
        self.assertEqual(result.returncode, 0, result)
        self.assertEqual([json.loads(line) for line in result.stdout.splitlines()],
                         [{"url": served[0]}, {"stopped": True}])
        code, _, err = run_main("serve", "--keep-requests", "0")
        self.assertEqual(code, 2)
        self.assertIn("--keep-requests", err)


class OneFileTest(unittest.TestCase):
    def test_the_copied_file_alone_is_the_command_line(self) -> None:
        import shutil

        folder = tempfile.mkdtemp(prefix="yc-runs-copy-")
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        shutil.copy(os.path.join(HERE, "yc_runs.py"), folder)
        done = subprocess.run([sys.executable, "-m", "yc_runs", "--version"], capture_output=True,
                              text=True, cwd=folder, env=isolated_env(), timeout=60)
        self.assertEqual((done.returncode, done.stdout.strip()), (0, "yc_runs " + yc_runs.__version__))
        with open(os.path.join(folder, "yc_runs.py"), encoding="utf-8") as handle:
            header = handle.read(4000)
        self.assertIn("SPDX-License-Identifier: MIT", header)


class WheelTest(unittest.TestCase):
    """``pip install`` gives a typed package; ``python -m yc_runs`` and ``yc-runs`` work."""

    def setUp(self) -> None:
        missing = tool_missing("mypy", "setuptools", "wheel")
        if missing:
            self.skipTest(missing)
        self.tmp = tempfile.mkdtemp(prefix="yc-runs-wheel-")
        self.addCleanup(lambda: __import__("shutil").rmtree(self.tmp, ignore_errors=True))

    def run_ok(self, *argv: str, cwd: Optional[str] = None, timeout: float = 300
               ) -> "subprocess.CompletedProcess[str]":
        done = subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd or self.tmp,
                              env=isolated_env(), timeout=timeout)
        self.assertEqual(done.returncode, 0, "%s\n%s\n%s" % (argv, done.stdout, done.stderr))
        return done

    def build_and_install(self) -> str:
        """The python of a fresh venv with the wheel built from this checkout installed."""
        import shutil

        source = os.path.join(self.tmp, "source")
        os.mkdir(source)
        for name in ("yc_runs.py", "setup.py", "pyproject.toml", "README.md", "LICENSE",
                     "MANIFEST.in", "CHANGELOG.md"):
            shutil.copy(os.path.join(HERE, name), source)
        wheels = os.path.join(self.tmp, "wheels")
        self.run_ok(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "--no-index", "--disable-pip-version-check",
                    "-w", wheels, source)
        [wheel] = os.listdir(wheels)
        venv = os.path.join(self.tmp, "venv")
        self.run_ok(sys.executable, "-m", "venv", venv)
        python = os.path.join(venv, "Scripts" if os.name == "nt" else "bin", "python")
        self.run_ok(python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps",
                    "--disable-pip-version-check", os.path.join(wheels, wheel))
        return python

    def test_installed_wheel_is_typed_and_runnable(self) -> None:
        python = self.build_and_install()
        where = self.run_ok(python, "-c", "import os, yc_runs; d = os.path.dirname(yc_runs.__file__); "
                            "print(os.path.basename(yc_runs.__file__), sorted(os.listdir(d)))")
        self.assertIn("__init__.py", where.stdout)
        for name in ("py.typed", "__main__.py"):
            self.assertIn(name, where.stdout)

        version = self.run_ok(python, "-m", "yc_runs", "--version")
        self.assertEqual(version.stdout.strip(), "yc_runs %s" % yc_runs.__version__)
        script = os.path.join(os.path.dirname(python), "yc-runs")
        helped = self.run_ok(script, "--help")
        self.assertTrue(helped.stdout.startswith("usage: yc-runs "), helped.stdout[:200])

        user_script = os.path.join(self.tmp, "user_script.py")
        with open(user_script, "w", encoding="utf-8") as handle:
            handle.write(PLANTED)
        planted = {i for i, line in enumerate(PLANTED.splitlines(), 1) if "# planted" in line}
        checked = subprocess.run(
            [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-executable",
             python, user_script], capture_output=True, text=True, cwd=self.tmp,
            env=isolated_env(), timeout=600)
        self.assertNotIn("missing library stubs or py.typed", checked.stdout)
        self.assertNotIn("Cannot find implementation", checked.stdout)
        reported = {int(m.group(1)) for m in re.finditer(r"user_script\.py:(\d+): error", checked.stdout)}
        self.assertEqual(reported, planted, checked.stdout)
        self.assertEqual(checked.returncode, 1, checked.stdout + checked.stderr)


class ImportTest(unittest.TestCase):
    def test_import_loads_no_heavy_modules(self) -> None:
        code = ("import sys, yc_runs; print([m for m in ('http.client', 'email', 'http.server', "
                "'asyncio', 'argparse', 'ssl') if m in sys.modules])")
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["PYTHONPATH"] = HERE
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, cwd=HERE, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "[]")


class LazyImportTest(unittest.TestCase):
    """What ``import yc_runs`` leaves for later: socket is imported at its first use."""

    def test_socket_is_imported_by_its_first_use(self) -> None:
        probe = ("import sys, yc_runs; before = 'socket' in sys.modules; "
                 "family = yc_runs.socket.AF_INET; import socket; "
                 "print(before, yc_runs.socket is socket, family == socket.AF_INET)")
        # -S: no site, so no .pth file (coverage's, in CI) imports socket before yc_runs does
        done = subprocess.run([sys.executable, "-S", "-c", probe], capture_output=True,
                              text=True, cwd=os.path.dirname(os.path.abspath(__file__)),
                              timeout=60)
        self.assertEqual(done.stdout.split(), ["False", "True", "True"], done.stderr)


class ReadmeTest(EnvTestCase):
    """The README's Python blocks, run in order as written, against the emulator (the
    service URL and credentials from the variables the README names)."""

    def test_the_readme_python_blocks_run_against_the_emulator(self) -> None:
        import io

        with open(os.path.join(HERE, "README.md"), encoding="utf-8") as handle:
            blocks = re.findall(r"```python\n(.*?)```", handle.read(), re.S)
        self.assertGreaterEqual(len(blocks), 8)
        emu = yc_runs.Emulator(event_delay=0).start()  # every run finished by its first poll
        self.addCleanup(emu.stop)
        os.environ.update(YC_RUNS_BASE_URL=emu.url, YC_API_KEY="AQVN-readme-key",
                          YC_FOLDER_ID="b1gxxxxxxxxxxxxxxxxx")
        del os.environ["YC_RUNS_API"]  # the README's default: the Responses wire
        namespace: Dict[str, Any] = {"__name__": "readme"}
        for number, block in enumerate(blocks, 1):
            with self.subTest(block=number, first_line=block.splitlines()[0]), \
                    contextlib.redirect_stdout(io.StringIO()):
                exec(compile(block, "README.md python block %d" % number, "exec"), namespace)
        client = namespace.get("client")
        if client is not None:
            client.close()


# ============================================================================
# Emulator: both wires, strict as the service, shaped like its bytes
# ============================================================================


class EmulatorScriptTest(EmulatorTestCase):
    def test_default_echo_in_cumulative_pieces(self) -> None:
        run = self.client.runs.create("echo", "t", additional_messages=["one two three four five six"],
                                      stream=True)
        events = list(run.listen())
        self.assertEqual([e.status for e in events], [yc_runs.StreamEvent.PARTIAL_MESSAGE] * 2
                         + [yc_runs.StreamEvent.DONE])
        self.assertEqual([e.text for e in events],
                         ["one two ", "one two three four ", "one two three four five six"])
        self.assertEqual([e.stream_cursor.current_event_idx for e in events], [0, 1, 2])
        self.assertEqual(events[-1].completed_message.author.role, "ASSISTANT")  # type: ignore[union-attr]

    def test_default_greeting_and_the_threads_last_user_message(self) -> None:
        self.assertEqual(self.client.runs.create_and_wait("a", "empty", poll_interval=0.01).text,
                         "Hello! How can I help you?")
        self.client.runs.create_and_wait("a", "t", additional_messages=["remember me"],
                                         poll_interval=0.01)
        again = self.client.runs.create_and_wait("a", "t", poll_interval=0.01)
        self.assertEqual(again.text, "remember me")  # the assistant's own reply is skipped

    def test_a_string_reply_is_one_final_event(self) -> None:
        self.emu.script("s", replies=["just this"])
        events = list(self.client.runs.create("s", "t", stream=True).listen())
        self.assertEqual([(e.status, e.text) for e in events],
                         [(yc_runs.StreamEvent.DONE, "just this")])

    def test_reply_pieces_are_cumulative_partial_messages(self) -> None:
        self.emu.script("p", replies=[["Hel", "lo ", "there"]])
        events = list(self.client.runs.create("p", "t", stream=True).listen())
        self.assertEqual([e.text for e in events], ["Hel", "Hello ", "Hello there"])
        self.assertEqual([e.delta for e in events], ["Hel", "lo ", "there"])
        self.assertEqual(events[0].partial_message.text, "Hel")  # type: ignore[union-attr]
        # without stream=True, Listen yields only the final event
        quiet = list(self.client.runs.create("p", "t2").listen())
        self.assertEqual([(e.status, e.text) for e in quiet],
                         [(yc_runs.StreamEvent.DONE, "Hello there")])

    def test_scripted_tool_calls_then_the_reply(self) -> None:
        self.emu.script("t", tool_calls=[{"name": "f", "arguments": {"x": 1}}], replies=["after tools"])
        run = self.client.runs.create("t", "t", stream=True)
        [event] = list(run.listen())
        self.assertEqual(event.status, yc_runs.StreamEvent.TOOL_CALLS)
        self.assertEqual([(c.name, c.arguments) for c in event.tool_calls], [("f", {"x": 1})])
        result = run.wait(poll_interval=0.01)
        self.assertEqual(result.status, yc_runs.RunStatus.TOOL_CALLS)
        run.submit_tool_results({"name": "f", "content": "2"})
        rest = list(run.listen(events_start_idx=1))
        self.assertEqual([(e.status, e.stream_cursor.current_event_idx, e.text) for e in rest],
                         [(yc_runs.StreamEvent.DONE, 1, "after tools")])
        self.assertEqual(rest[0].stream_cursor.num_user_events_received, 1)
        self.assertEqual(run.wait(poll_interval=0.01).text, "after tools")

    def test_a_scripted_error_fails_the_run(self) -> None:
        self.emu.script("bad", error="boom")
        run = self.client.runs.create("bad", "t", stream=True)
        [event] = list(run.listen())
        self.assertEqual((event.status, str(event.error)), (yc_runs.StreamEvent.ERROR, "boom"))
        result = run.wait(poll_interval=0.01)
        self.assertEqual((result.status, str(result.error)), (yc_runs.RunStatus.FAILED, "boom"))
        self.assertIsNone(result.text)
        with self.assertRaises(ValueError):
            result.message  # noqa: B018

    def test_a_scripted_delay_spaces_the_events(self) -> None:
        self.emu.script("slow", replies=[["a", "b", "c"]], delay=0.05)
        started = time.monotonic()
        arrivals = []
        for _ in self.client.runs.create("slow", "t", stream=True).listen():
            arrivals.append(time.monotonic() - started)
        self.assertEqual(len(arrivals), 3)
        for i, arrival in enumerate(arrivals):  # due 0.05 s apart from the create: lower bounds
            self.assertGreaterEqual(arrival, 0.05 * (i + 1) - 0.01)

    def test_function_tools_ask_for_the_first_tool_then_answer_with_the_result(self) -> None:
        def get_weather(city: str) -> str:
            """The weather."""
            return "sunny"

        def other(x: int) -> int:
            return x

        run = self.client.runs.create("a", "t", additional_messages=["Paris"],
                                      tools=[get_weather, other])
        result = run.wait(poll_interval=0.01)
        self.assertEqual(result.status, yc_runs.RunStatus.TOOL_CALLS)
        self.assertEqual([(c.name, c.arguments) for c in result.tool_calls],
                         [("get_weather", {"city": "Paris"})])
        final = run.run_tools({"get_weather": get_weather, "other": other}, poll_interval=0.01)
        self.assertEqual((final.status, final.text),
                         (yc_runs.RunStatus.COMPLETED, "get_weather returned sunny"))

    def test_state_machine(self) -> None:
        # the emulator on the test's clock: each state is seen by moving the clock, not waiting
        clock = FakeClock()
        emu = yc_runs.Emulator(clock=clock, implicit=True).start()
        self.addCleanup(emu.stop)
        client = yc_runs.Client(base_url=emu.url, api_key="k", folder_id="f", timeout=5)
        self.addCleanup(client.close)
        S = yc_runs.RunStatus

        def statuses(run: yc_runs.Run, seen: List[yc_runs.RunStatus]) -> List[Tuple[float, S]]:
            """The status at each quarter second until finished: (seconds, status) at changes."""
            changes, started = [(0.0, seen[0])], clock.now
            for _ in range(40):
                clock.now += 0.25
                status = run.get_status()
                if status != changes[-1][1]:
                    changes.append((clock.now - started, status))
                if status.is_finished:
                    return changes
            self.fail("never finished: %r" % changes)

        emu.script("ok", replies=["x"], delay=1.0)
        emu.script("bad", error="no", delay=1.0)
        emu.script("tools", tool_calls=[{"name": "f"}], replies=["done"], delay=1.0)
        ok = client.runs.create("ok", "t")
        # in progress half way to the first event, finished with it (delay=1.0 s)
        self.assertEqual(statuses(ok, [ok.status]),
                         [(0.0, S.PENDING), (0.5, S.IN_PROGRESS), (1.0, S.COMPLETED)])
        bad = client.runs.create("bad", "t")
        self.assertEqual(statuses(bad, [bad.status]),
                         [(0.0, S.PENDING), (0.5, S.IN_PROGRESS), (1.0, S.FAILED)])
        tools = client.runs.create("tools", "t")
        self.assertEqual(statuses(tools, [tools.status]),
                         [(0.0, S.PENDING), (0.5, S.IN_PROGRESS), (1.0, S.TOOL_CALLS)])
        tools.submit_tool_results({"name": "f", "content": "1"})
        self.assertEqual(statuses(tools, [tools.get_status()]),
                         [(0.0, S.IN_PROGRESS), (1.0, S.COMPLETED)])
        streamed = client.runs.create("ok", "t", stream=True)
        with self.assertRaises(yc_runs.StreamError):  # nothing is due until the clock moves
            list(streamed.listen(timeout=0.1, resume=False))
        clock.now += 10  # every event is due: the stream waits for nothing
        self.assertEqual([e.text for e in streamed.listen() if e.status is yc_runs.StreamEvent.DONE],
                         ["x"])

    def test_submit_to_a_run_not_waiting_for_tools_is_400(self) -> None:
        self.emu.script("slow", replies=["x"], delay=30)
        for run in (self.client.runs.create("slow", "t"),
                    self.client.runs.create("a", "t", additional_messages=["hi"])):
            if run.assistant_id == "a":
                run.wait(poll_interval=0.01)
            with self.assertRaises(yc_runs.BadRequestError) as caught:
                run.submit_tool_results({"name": "f", "content": "1"})
            self.assertEqual((caught.exception.status, caught.exception.grpc_code), (400, 9))
            self.assertIn("not waiting for tool results", caught.exception.message)

    def test_events_start_idx_replays(self) -> None:
        self.emu.script("p", replies=[["a", "b", "c", "d"]])
        run = self.client.runs.create("p", "t", stream=True)
        everything = list(run.listen())
        replay = list(run.listen(events_start_idx=2))
        self.assertEqual([(e.stream_cursor.current_event_idx, e.text) for e in replay],
                         [(e.stream_cursor.current_event_idx, e.text) for e in everything[2:]])
        self.assertEqual(self.emu.requests[-1].query, {"runId": run.id, "eventsStartIdx": "2"})


class EmulatorProtocolTest(EmulatorTestCase):
    def test_unknown_run_is_404_with_code_5(self) -> None:
        status, headers, body = raw_get(self.emu, "/assistants/v1/runs/nope",
                                            {"Authorization": "Api-Key k"})
        self.assertEqual(status, 404)
        self.assertEqual(body, {"code": 5, "message": "run nope not found", "details": []})
        self.assertTrue(headers["x-request-id"])
        with self.assertRaises(yc_runs.NotFoundError) as caught:
            self.client.runs.get("nope")
        error = caught.exception
        self.assertEqual((error.status, error.grpc_code, error.message), (404, 5, "run nope not found"))
        self.assertTrue(error.request_id)
        self.assertTrue(error.client_request_id)

    def test_missing_authorization_is_401_in_the_gateway_shape(self) -> None:
        status, _, body = raw_get(self.emu, "/assistants/v1/runs/x")
        self.assertEqual(status, 401)
        self.assertEqual(set(body), {"error"})
        error = body["error"]
        self.assertEqual((error["grpcCode"], error["httpCode"], error["httpStatus"], error["details"]),
                         (16, 401, "Unauthorized", []))
        self.assertIsInstance(error["message"], str)

    def test_a_wrong_api_key_is_echoed_like_the_service_does(self) -> None:
        with yc_runs.Emulator(api_key="right") as emu:
            status, _, body = raw_get(emu, "/assistants/v1/runs/x",
                                          {"Authorization": "Api-Key wrong-key-123"})
            self.assertEqual(status, 401)
            self.assertIn("wrong-key-123", body["error"]["message"])
            with yc_runs.Client(base_url=emu.url, api_key="wrong-key-123") as client, \
                    self.assertRaises(yc_runs.AuthenticationError) as caught:
                client.runs.get("x")
            self.assertNotIn("wrong-key-123", str(caught.exception))
            with yc_runs.Client(base_url=emu.url, api_key="right") as client, \
                    self.assertRaises(yc_runs.NotFoundError):
                client.runs.get("x")

    def test_bad_requests(self) -> None:
        auth = {"Authorization": "Api-Key k", "Content-Type": "application/json"}
        status, _, body = raw_get(self.emu, "/assistants/v1/nope", auth)
        self.assertEqual((status, body["code"]), (404, 5))
        for payload in (b"not json", b"[1]", b'{"threadId": "t"}', b'{"assistantId": "a"}',
                        b'{"assistantId": "a", "threadId": "t", "additionalMessages": "x"}'):
            status, _, body = raw_get(self.emu, "/assistants/v1/runs", auth, "POST", payload)
            self.assertEqual((status, body["error"]["grpcCode"]), (400, 3), payload)
        status, _, body = raw_get(self.emu, "/assistants/v1/runs", auth)  # no folderId
        self.assertEqual(status, 400)
        self.assertEqual(self.emu.runs, {})

    def test_list_pages_by_folder(self) -> None:
        mine = [self.client.runs.create("a", "t%d" % i) for i in range(5)]
        with yc_runs.Client(base_url=self.emu.url, api_key="k", folder_id="folder-2") as other:
            theirs = [other.runs.create("a", "u%d" % i) for i in range(2)]
            self.assertEqual([r.id for r in other.runs.list()], [r.id for r in theirs])
        before = len(self.emu.requests)
        self.assertEqual([r.id for r in self.client.runs.list(page_size=2)], [r.id for r in mine])
        pages = self.emu.requests[before:]
        self.assertEqual([dict(p.query, pageToken=bool(p.query.get("pageToken"))) for p in pages], [
            {"folderId": "folder-1", "pageSize": "2", "pageToken": False},
            {"folderId": "folder-1", "pageSize": "2", "pageToken": True},
            {"folderId": "folder-1", "pageSize": "2", "pageToken": True}])  # opaque tokens

    def test_requests_are_recorded_with_the_credential_masked(self) -> None:
        run = self.client.runs.create("a", "t", additional_messages=["hi"], labels={"k": "v"},
                                      stream=True)
        list(run.listen())
        self.client.runs.get(run.id)
        create, listen, get = self.emu.requests
        self.assertEqual((create.method, create.path, create.query), ("POST", "/assistants/v1/runs", {}))
        self.assertEqual(create.json, {
            "assistantId": "a", "threadId": "t", "labels": {"k": "v"}, "stream": True,
            "additionalMessages": [{"content": {"content": [{"text": {"content": "hi"}}]}}]})
        self.assertEqual((listen.method, listen.path, listen.query, listen.json),
                         ("GET", "/assistants/v1/runs/listen", {"runId": run.id, "eventsStartIdx": "0"},
                          None))
        self.assertEqual((get.method, get.path, get.query), ("GET", "/assistants/v1/runs/" + run.id, {}))
        for request in self.emu.requests:
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.assertEqual(headers["authorization"], "Api-Key ***")
            self.assertEqual(headers["x-folder-id"], "folder-1")
            self.assertRegex(headers["x-client-request-id"],
                             r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
        self.assertNotIn("test-key-123456", repr(self.emu.requests))
        with yc_runs.Client(base_url=self.emu.url, iam_token="iam-token-secret-1") as client, \
                self.assertRaises(yc_runs.NotFoundError):
            client.runs.get("x")
        self.assertEqual(self.emu.requests[-1].headers["Authorization"], "Bearer ***")
        self.assertNotIn("iam-token-secret-1", repr(self.emu.requests))


class EmulatorFaultTest(EmulatorTestCase):
    def client_with(self, **options: Any) -> yc_runs.Client:
        client = yc_runs.Client(base_url=self.emu.url, api_key="test-key-123456",
                                folder_id="folder-1",
                                **dict({"timeout": 5, "retry_delay": 0}, **options))
        self.addCleanup(client.close)
        return client

    def count(self, method: str, path_end: str) -> int:
        return sum(1 for r in self.emu.requests if r.method == method and r.path.endswith(path_end))

    def test_http_status_fault_a_number_of_times(self) -> None:
        run = self.client.runs.create("a", "t")
        self.emu.inject(yc_runs.Fault.http_status(429, retry_after=0), on="get", times=2)
        started = time.monotonic()
        self.assertEqual(self.client.runs.get(run.id).id, run.id)
        self.assertLess(time.monotonic() - started, 5)  # Retry-After: 0 is honoured
        self.assertEqual(self.count("GET", run.id), 3)
        self.client.runs.get(run.id)
        self.assertEqual(self.count("GET", run.id), 4)  # the fault is used up

    def test_http_status_fault_surfaces_when_retries_run_out(self) -> None:
        run = self.client.runs.create("a", "t")
        self.emu.inject(yc_runs.Fault.http_status(503, message="try later", retry_after=0),
                        on="get", times=3)
        with self.assertRaises(yc_runs.ServerError) as caught:
            self.client_with(max_retries=1).runs.get(run.id)
        error = caught.exception
        self.assertEqual((error.status, error.grpc_code, error.message, error.retry_after),
                         (503, 14, "try later", 0.0))
        self.assertEqual(self.count("GET", run.id), 2)

    def test_429_on_create_is_retried_and_503_is_not(self) -> None:
        self.emu.inject(yc_runs.Fault.http_status(429, retry_after=0), on="create", times=2)
        self.client.runs.create("a", "t")
        self.assertEqual((self.count("POST", "/runs"), len(self.emu.runs)), (3, 1))
        self.emu.inject(yc_runs.Fault.http_status(503, retry_after=0), on="create")
        with self.assertRaises(yc_runs.ServerError):
            self.client.runs.create("a", "t")  # it may have been processed: not repeated
        self.assertEqual((self.count("POST", "/runs"), len(self.emu.runs)), (4, 1))

    def test_a_fault_only_hits_its_endpoint(self) -> None:
        run = self.client.runs.create("a", "t", additional_messages=["hi"], stream=True)
        self.emu.inject(yc_runs.Fault.http_status(503), on="listen", times=None)
        self.client.runs.get(run.id)
        with self.assertRaises(yc_runs.ServerError):  # its own class, as around get
            list(self.client_with(max_retries=1).runs.get(run.id).listen())
        with self.assertRaises(ValueError):
            self.emu.inject(yc_runs.Fault.cut(), on="delete")

    def pattern(self, seed: int) -> List[bool]:
        with yc_runs.Emulator(seed=seed, event_delay=0.001, implicit=True) as emu:
            emu.inject(yc_runs.Fault.http_status(503), on="get", probability=0.5, times=None)
            with yc_runs.Client(base_url=emu.url, api_key="k", max_retries=0) as client:
                run = client.runs.create("a", "t")
                hits = []
                for _ in range(40):
                    try:
                        client.runs.get(run.id)
                        hits.append(False)
                    except yc_runs.ServerError:
                        hits.append(True)
                return hits

    def test_probability_with_a_seed_repeats(self) -> None:
        first, again, other = self.pattern(7), self.pattern(7), self.pattern(8)
        self.assertEqual(first, again)
        self.assertNotEqual(first, other)
        self.assertTrue(0 < sum(first) < 40)

    def test_times_caps_a_probability(self) -> None:
        run = self.client.runs.create("a", "t")
        self.emu.inject(yc_runs.Fault.http_status(503), on="get", probability=1.0, times=3)
        client = self.client_with(max_retries=0)
        outcomes = []
        for _ in range(6):
            try:
                client.runs.get(run.id)
                outcomes.append("ok")
            except yc_runs.ServerError:
                outcomes.append("503")
        self.assertEqual(outcomes, ["503"] * 3 + ["ok"] * 3)

    def reference(self, assistant: str) -> List[Tuple[int, str, str]]:
        run = self.client.runs.create(assistant, "ref", stream=True)
        return [(e.stream_cursor.current_event_idx, e.status.name, e.text or "") for e in run.listen()]

    def test_cut_mid_line_resumes_without_loss_or_duplicates(self) -> None:
        self.emu.script("p", replies=[["a ", "b ", "c ", "d ", "e"]])
        expected = self.reference("p")
        self.assertEqual(len(expected), 5)
        self.emu.inject(yc_runs.Fault.cut(after_bytes=250), on="listen")  # inside the second line
        run = self.client.runs.create("p", "t", stream=True)
        events = list(run.listen())
        self.assertEqual([(e.stream_cursor.current_event_idx, e.status.name, e.text) for e in events],
                         expected)
        self.assertEqual("".join(e.delta for e in events), "a b c d e")
        listens = [r.query["eventsStartIdx"] for r in self.emu.requests if r.path.endswith("/listen")]
        self.assertEqual(listens[-2:], ["0", "1"])
        self.emu.inject(yc_runs.Fault.cut(after_bytes=250), on="listen")
        seen = []
        with self.assertRaises(yc_runs.StreamError) as caught:
            for event in run.listen(resume=False):
                seen.append(event)
        self.assertEqual(len(seen), 1)
        self.assertEqual(caught.exception.last_event_idx, 0)

    def test_a_stall_past_the_read_timeout_resumes(self) -> None:
        self.emu.script("p", replies=[["a ", "b ", "c ", "d"]])
        expected = self.reference("p")
        self.emu.inject(yc_runs.Fault.stall(1.0, after_events=2), on="listen")
        run = self.client.runs.create("p", "t", stream=True)
        started = time.monotonic()
        events = list(run.listen(timeout=0.1))
        self.assertLess(time.monotonic() - started, 10)
        self.assertEqual([(e.stream_cursor.current_event_idx, e.status.name, e.text) for e in events],
                         expected)
        listens = [r.query["eventsStartIdx"] for r in self.emu.requests if r.path.endswith("/listen")]
        self.assertEqual(listens[-2:], ["0", "2"])
        self.emu.inject(yc_runs.Fault.stall(1.0, after_events=1), on="listen")
        with self.assertRaises(yc_runs.StreamError) as caught:
            list(run.listen(timeout=0.1, resume=False))
        self.assertIsInstance(caught.exception.__cause__, yc_runs.APITimeoutError)

    def test_a_stall_on_get_is_a_timeout(self) -> None:
        run = self.client.runs.create("a", "t")
        self.emu.inject(yc_runs.Fault.stall(2.0), on="get")
        started = time.monotonic()
        with self.assertRaises(yc_runs.APITimeoutError):
            self.client_with(timeout=0.1).runs.get(run.id)
        self.assertLess(time.monotonic() - started, 5)

    def test_a_malformed_line_is_a_stream_error(self) -> None:
        self.emu.script("p", replies=[["a ", "b ", "c"]])
        self.emu.inject(yc_runs.Fault.malformed_line(after_events=1), on="listen")
        run = self.client.runs.create("p", "t", stream=True)
        seen = []
        with self.assertRaises(yc_runs.StreamError) as caught:
            for event in run.listen():
                seen.append(event)
        self.assertEqual(len(seen), 1)
        self.assertEqual(caught.exception.last_event_idx, 0)
        self.assertIn("malformed", str(caught.exception))
        rest = list(run.listen(events_start_idx=1))  # the caller resumes after the bad line
        self.assertEqual([e.text for e in seen + rest], ["a ", "a b ", "a b c"])

    def test_clear_faults(self) -> None:
        run = self.client.runs.create("a", "t")
        self.emu.inject(yc_runs.Fault.http_status(503), on="get", times=None)
        client = self.client_with(max_retries=0)
        with self.assertRaises(yc_runs.ServerError):
            client.runs.get(run.id)
        self.emu.clear_faults()
        self.assertEqual(client.runs.get(run.id).id, run.id)


class EmulatorMalformedRequestsTest(EmulatorWireTestCase):
    def test_every_malformed_request_gets_its_status_code_and_field_and_changes_nothing(self) -> None:
        tool_run = self.create(assistantId="tools")["id"]
        done_run = self.create()["id"]
        self.assertEqual(self.client.runs.get(tool_run).wait(poll_interval=0.005).status,
                         yc_runs.RunStatus.TOOL_CALLS)
        self.client.runs.get(done_run).wait(poll_interval=0.005)
        before = (sorted(self.emu.runs), len(self.emu.threads), len(self.emu.threads.messages("thr-1")))
        self.assertGreaterEqual(len(MALFORMED_ASSISTANT_API_REQUESTS), 60)
        for what, method, target, body, head, status, code, field in MALFORMED_ASSISTANT_API_REQUESTS:
            with self.subTest(what):
                target = target.replace("{tool}", tool_run).replace("{done}", done_run)
                if isinstance(body, dict):
                    body = json.loads(json.dumps(body).replace("{tool}", tool_run)
                                      .replace("{done}", done_run))
                got_status, headers, answer, _ = self.call(method, target, body,
                                                           auth=what != "no Authorization",
                                                           head=head)
                self.assertEqual(got_status, status, answer)
                self.assertTrue(headers["x-request-id"])
                self.assertEqual(headers["content-type"], "application/json")
                if method == "HEAD":
                    continue
                got_code, message = grpc_refusal(answer)
                self.assertEqual(got_code, code, message)
                self.assertIn(field.replace("{done}", done_run), message)
                # and it keeps serving, on a new connection
                self.assertEqual(self.call("GET", RUNS + "/" + done_run)[0], 200)
        self.assertEqual((sorted(self.emu.runs), len(self.emu.threads),
                          len(self.emu.threads.messages("thr-1"))), before)  # no ghost runs
        self.assertEqual(self.client.runs.get(tool_run).status, yc_runs.RunStatus.TOOL_CALLS)

    def test_a_bad_request_line_gets_a_json_400(self) -> None:
        status, _, answer, _ = exchange(self.emu, b"garbage\r\n\r\n")
        self.assertEqual((status, grpc_refusal(answer)[0]), (400, 3))
        self.assertEqual(self.call("GET", THREADS + "/thr-1")[0], 200)


class EmulatorDefectsTest(EmulatorWireTestCase):
    def test_a_crashing_create_no_longer_poisons_the_thread(self) -> None:
        for bad in ([5], ["hi"]):
            status, _, answer, _ = self.call("POST", RUNS, dict(MINIMAL_RUN, additionalMessages=bad))
            self.assertEqual((status, grpc_refusal(answer)[0]), (400, 3))
        self.assertEqual(self.emu.runs, {})
        run = self.client.runs.create("asst", "thr-1", additional_messages=["still fine"])
        self.assertEqual(run.wait(poll_interval=0.005).text, "still fine")

    def test_a_tool_schema_of_any_json_gets_a_tool_call_not_a_crash(self) -> None:
        for parameters in ({"required": [{}], "properties": {}}, {"properties": [1]},
                           {"properties": {"x": {"type": ["string", "null"]}}}):
            run = self.create(tools=[{"function": {"name": "f", "parameters": parameters}}],
                              additionalMessages=[message_json("hi")])
            result = self.client.runs.get(run["id"]).wait(poll_interval=0.005)
            self.assertEqual([c.name for c in result.tool_calls], ["f"])

    def test_content_length_minus_one_is_answered_at_once(self) -> None:
        started = time.monotonic()
        status, headers, _, _ = exchange(self.emu, b"POST %s HTTP/1.1\r\nHost: e\r\n"
                                                  b"Content-Length: -1\r\n\r\n{}" % RUNS.encode())
        self.assertEqual((status, headers.get("connection")), (400, "close"))
        self.assertLess(time.monotonic() - started, 2)

    def test_garbage_is_refused_instead_of_stored(self) -> None:
        for field, value in (("labels", "x"), ("stream", "false"),
                             ("customCompletionOptions", {"temperature": "hot"})):
            status, _, answer, _ = self.call("POST", RUNS, dict(MINIMAL_RUN, **{field: value}))
            self.assertEqual(status, 400, answer)
            self.assertIn(field, grpc_refusal(answer)[1])
        self.assertEqual(list(self.client.runs.list()), [])
        self.create(labels={"k": "v"})
        self.assertEqual([r.labels for r in self.client.runs.list()], [{"k": "v"}])

    def test_negative_page_tokens_and_start_indexes_do_not_loop(self) -> None:
        ids = [self.create()["id"] for _ in range(3)]
        first = self.call("GET", RUNS + "?folderId=folder-1&pageSize=2")[2]
        self.assertEqual([r["id"] for r in first["runs"]], ids[:2])
        last = self.call("GET", RUNS + "?folderId=folder-1&pageSize=2&pageToken="
                         + first["nextPageToken"])[2]
        self.assertEqual([r["id"] for r in last["runs"]], ids[2:])
        self.assertNotIn("nextPageToken", last)  # the last page carries no token at all
        other = self.call("GET", RUNS + "?folderId=folder-2&pageToken=" + first["nextPageToken"])
        self.assertEqual(other[0], 400)  # a token belongs to its list
        for start in ("-2", "-99"):
            status, _, answer, _ = self.call("GET", RUNS + "/listen?runId=%s&eventsStartIdx=%s"
                                               % (ids[0], start))
            self.assertEqual((status, grpc_refusal(answer)[0]), (400, 3))

    def test_requests_are_a_ring_of_the_newest(self) -> None:
        with yc_runs.Emulator(keep_requests=3) as emu:
            for i in range(5):
                exchange(emu, raw_request("GET", "/assistants/v1/runs/r%d" % i))
            self.assertEqual([r.path for r in emu.requests],
                             ["/assistants/v1/runs/r%d" % i for i in (2, 3, 4)])
        with self.assertRaises(ValueError):
            yc_runs.Emulator(keep_requests=0)

    def test_the_path_is_recorded_as_sent_and_decoded(self) -> None:
        status, _, answer, _ = self.call("GET", RUNS + "/a%2Fb%20c")
        self.assertEqual((status, answer["message"]), (404, "run a/b c not found"))
        request = self.emu.requests[-1]
        self.assertEqual((request.raw_path, request.path), (RUNS + "/a%2Fb%20c", RUNS + "/a/b c"))

    def test_methods_the_api_lacks_get_json_not_html(self) -> None:
        for method in ("DELETE", "PUT", "OPTIONS", "TRACE", "BREW"):
            status, _, answer, raw = self.call(method, RUNS)
            self.assertEqual(status, 405, method)
            self.assertEqual(grpc_refusal(answer)[0], 12)
            self.assertNotIn(b"<html", raw.lower())

    def test_list_and_get_by_thread_are_safe_under_concurrent_writers(self) -> None:
        seconds = RACE_SECONDS
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)  # threads switch often: an unlocked iteration is caught
        self.addCleanup(sys.setswitchinterval, interval)
        with yc_runs.Emulator(event_delay=0.0, implicit=True) as emu:
            deadline = time.monotonic() + seconds
            failures: List[str] = []
            counts = [0]

            def writer(n: int) -> None:
                with yc_runs.Client(base_url=emu.url, api_key="k", folder_id="f",
                                    max_retries=0, timeout=10) as client:
                    while time.monotonic() < deadline:
                        client.runs.create("a", "t%d" % n, additional_messages=["x"])

            def reader(n: int) -> None:
                while time.monotonic() < deadline:
                    for target in (RUNS + "?folderId=f&pageSize=100",
                                   RUNS + ":getByThread?threadId=t%d" % n):
                        try:
                            status, _, _, _ = exchange(emu, raw_request("GET", target))
                        except (OSError, http.client.HTTPException) as error:
                            failures.append(repr(error))
                            continue
                        counts[0] += 1
                        if status not in (200, 404):
                            failures.append(str(status))

            with ThreadPoolExecutor(8) as pool:
                jobs = [pool.submit(writer, n) for n in range(4)] + \
                    [pool.submit(reader, n) for n in range(4)]
                for job in jobs:
                    job.result()
            self.assertEqual(failures, [])
            self.assertGreater(counts[0], 20)
            self.assertGreater(len(emu.runs), 20)


class EmulatorProto3JsonTest(EmulatorWireTestCase):
    def test_snake_case_int64_as_numbers_enums_by_number_and_unknown_fields(self) -> None:
        run = self.create(**{"assistant_id": "asst", "thread_id": "thr-1",
                             "assistantId": None, "threadId": None,
                             "custom_completion_options": {"max_tokens": 20, "temperature": "0.5"},
                             "customPromptTruncationOptions": {"maxPromptTokens": "300"},
                             "somethingNew": {"x": 1}})
        self.assertEqual(run["customCompletionOptions"], {"maxTokens": "20", "temperature": 0.5})
        self.assertEqual(run["customPromptTruncationOptions"],
                         {"maxPromptTokens": "300", "autoStrategy": {}})
        self.assertNotIn("somethingNew", run)
        status, _, thread, _ = self.call("POST", THREADS, {"folder_id": "f", "expirationConfig": {
            "expirationPolicy": 1, "ttl_days": 3}})
        self.assertEqual(status, 200, thread)
        self.assertEqual(thread["expirationConfig"], {"expirationPolicy": "STATIC", "ttlDays": "3"})

    def test_the_client_sends_what_the_checks_accept(self) -> None:
        def weather(city: str) -> str:
            """The weather."""
            return "sunny"

        run = self.client.runs.create(
            "asst", "thr-1", additional_messages=["Oslo"], labels={"k": "v"}, stream=True,
            tools=[weather], custom_temperature=0.0, custom_max_tokens=50,
            custom_max_prompt_tokens=400, custom_prompt_truncation_strategy={"last_messages": 3},
            custom_response_format="json")
        result = run.run_tools({"weather": weather}, poll_interval=0.005)
        self.assertEqual((result.status, result.text),
                         (yc_runs.RunStatus.COMPLETED, "weather returned sunny"))


class EmulatorResourcesTest(EmulatorWireTestCase):
    def test_a_run_needs_a_thread_and_an_assistant_that_exist(self) -> None:
        with self.assertRaises(yc_runs.NotFoundError) as caught:
            self.client.runs.create("asst", "no-such-thread")
        self.assertIn("threadId", caught.exception.message)
        with self.assertRaises(yc_runs.NotFoundError) as caught:
            self.client.runs.create("no-such-assistant", "thr-1")
        self.assertIn("assistantId", caught.exception.message)
        self.assertEqual(self.emu.runs, {})
        thread_id = self.emu.threads.create(messages=["from the setup"])
        self.assertRegex(thread_id, ID_PATTERN)
        with self.assertRaises(ValueError):
            self.emu.threads.create(thread_id)  # taken: its messages are not replaced
        with self.assertRaises(ValueError):
            self.emu.threads.create(messages=[{"content": 5}])
        self.assertEqual(self.client.runs.create("asst", thread_id).wait(poll_interval=0.005).text,
                         "from the setup")
        with yc_runs.Emulator(implicit=True) as emu, \
                yc_runs.Client(base_url=emu.url, api_key="k") as client:
            self.assertEqual(client.runs.create("any", "thing", additional_messages=["hi"])
                             .wait(poll_interval=0.005).text, "hi")

    def test_threads_and_messages_over_the_api(self) -> None:
        status, _, thread, _ = self.call("POST", THREADS, {"folderId": "folder-1", "name": "chat",
                                                     "messages": [message_json("first")]})
        self.assertEqual(status, 200)
        self.assertRegex(thread["id"], ID_PATTERN)
        self.assertEqual(self.call("GET", THREADS + "/" + thread["id"])[2], thread)
        status, _, message, _ = self.call("POST", MESSAGES, {"threadId": thread["id"], "content": {
            "content": [{"text": {"content": "second"}}]}, "labels": {"k": "v"}})
        self.assertEqual((status, message["author"]["role"], message["labels"]), (200, "USER",
                                                                                  {"k": "v"}))
        self.assertEqual(self.call("GET", MESSAGES + "/%s?threadId=%s" % (message["id"], thread["id"]))[2],
                         message)
        status, headers, _, raw = self.call("GET", MESSAGES + "?threadId=" + thread["id"])
        self.assertEqual((status, headers["transfer-encoding"]), (200, "chunked"))
        texts = [line["result"]["content"]["content"][0]["text"]["content"]
                 for line in ndjson_lines(raw)]
        self.assertEqual(texts, ["second", "first"])  # newest first
        listed = self.call("GET", THREADS + "?folderId=folder-1&pageSize=1")[2]
        self.assertEqual(len(listed["threads"]), 1)
        self.assertTrue(listed["nextPageToken"])
        renamed = self.call("PATCH", THREADS + "/" + thread["id"],
                            {"updateMask": "name", "name": "new"})[2]
        self.assertEqual(renamed["name"], "new")
        self.assertEqual(self.call("DELETE", THREADS + "/" + thread["id"])[:1], (200,))
        self.assertEqual(self.call("GET", THREADS + "/" + thread["id"])[0], 404)
        with self.assertRaises(yc_runs.NotFoundError):
            self.client.runs.create("asst", thread["id"])

    def test_submit_answers_the_pending_calls_by_name(self) -> None:
        run = self.client.runs.create("tools", "thr-1")
        self.assertEqual(run.wait(poll_interval=0.005).status, yc_runs.RunStatus.TOOL_CALLS)
        for results in ([{"name": "f", "content": "1"}],
                        [{"name": "f", "content": "1"}, {"name": "g", "content": "2"},
                         {"name": "h", "content": "3"}],
                        [{"name": "f", "content": "1"}, {"name": "f", "content": "2"}]):
            with self.assertRaises(yc_runs.BadRequestError) as caught:
                run.submit_tool_results(results)
            self.assertEqual(caught.exception.grpc_code, 3)
        run.submit_tool_results([{"name": "g", "content": "2"}, {"name": "f", "content": "1"}])
        self.assertEqual(run.wait(poll_interval=0.005).text, "done")
        self.emu.script("twice", tool_calls=[{"name": "f"}, {"name": "f"}])
        twice = self.client.runs.create("twice", "thr-1")
        twice.wait(poll_interval=0.005)
        with self.assertRaises(yc_runs.BadRequestError) as caught:
            twice.submit_tool_results([{"name": "f", "content": "1"}])
        self.assertEqual(caught.exception.grpc_code, 9)
        self.assertIn("should have one function call with name f", caught.exception.message)


class EmulatorRecordedShapeTest(EmulatorWireTestCase):
    def setUp(self) -> None:
        super().setUp()
        with open(RECORDED, encoding="utf-8") as f:
            self.recorded = json.load(f)

    def get(self, run_id: str) -> Dict[str, Any]:
        status, _, run, _ = self.call("GET", RUNS + "/" + run_id)
        self.assertEqual(status, 200)
        return run  # type: ignore[no-any-return]

    def test_runs_in_each_state_are_shaped_like_the_recordings(self) -> None:
        self.emu.script("slow", delay=30)
        self.emu.script("special", tool_calls=[
            {"name": "special_operation", "arguments": {"numbers": [5, 4, 1]}}],
            replies=["\u0421 \u0447\u0438\u0441\u043b\u0430\u043c\u0438 5, 4 \u0438 1"])
        self.emu.script("fails", error="failed to fit messages within the maximum prompt tokens")
        pending = self.get(self.create(assistantId="slow")["id"])
        tools = self.create(assistantId="special")["id"]
        self.client.runs.get(tools).wait(poll_interval=0.005)
        tool_calls = self.get(tools)
        self.assertEqual(tool_calls["state"]["toolCallList"]["toolCalls"][0]["functionCall"]
                         ["arguments"], {"numbers": [5.0, 4.0, 1.0]})  # as a Struct sends them
        self.client.runs.get(tools).submit_tool_results({"name": "special_operation", "content": "20"})
        self.client.runs.get(tools).wait(poll_interval=0.005)
        completed = self.get(tools)
        failed_id = self.create(assistantId="fails", customCompletionOptions={"temperature": 0})["id"]
        self.client.runs.get(failed_id).wait(poll_interval=0.005)
        failed = self.get(failed_id)
        for state, run in (("PENDING", pending), ("TOOL_CALLS", tool_calls),
                           ("COMPLETED", completed), ("FAILED", failed)):
            with self.subTest(state):
                assert_same_shape(self, self.recorded["get_run"][state], run, state)
                for key in ("id", "createdBy"):
                    self.assertRegex(run[key], ID_PATTERN)
                self.assertRegex(run["createdAt"], STAMP_PATTERN)
        before, after = tool_calls["usage"], completed["usage"]
        self.assertGreater(int(after["promptTokens"]), int(before["promptTokens"]))
        self.assertGreater(int(after["completionTokens"]), int(before["completionTokens"]))
        self.assertEqual(int(after["totalTokens"]),
                         int(after["promptTokens"]) + int(after["completionTokens"]))

    def test_listen_lines_are_shaped_like_the_recording(self) -> None:
        self.emu.script("hello", replies=[["Hello", "! How can I help you?", ""]])
        run = self.create(assistantId="hello", stream=True)
        status, headers, _, raw = self.call("GET", RUNS + "/listen?runId=" + run["id"])
        self.assertEqual((status, headers["transfer-encoding"]), (200, "chunked"))
        self.assertRegex(headers["x-request-id"], ID_PATTERN)
        lines = ndjson_lines(raw)
        recorded = [json.loads(line) for line in self.recorded["listen_lines"]]
        self.assertEqual(len(lines), len(recorded))
        for i, (line, want) in enumerate(zip(lines, recorded)):
            assert_same_shape(self, want, line, "line %d" % i)
            self.assertEqual(line["result"]["streamCursor"], want["result"]["streamCursor"])
        message = lines[-1]["result"]["completedMessage"]
        self.assertRegex(message["id"], ID_PATTERN)
        self.assertRegex(message["createdAt"], STAMP_PATTERN)
        self.assertEqual([line["result"].get("partialMessage") for line in lines[:2]],
                         [r["result"]["partialMessage"] for r in recorded[:2]])

    def test_threads_and_messages_carry_only_documented_fields(self) -> None:
        documented = {"id", "folderId", "name", "description", "defaultMessageAuthorId",
                      "createdBy", "createdAt", "updatedBy", "updatedAt", "expirationConfig",
                      "expiresAt", "labels", "tools"}  # runs-rest.md, Thread
        status, _, thread, _ = self.call("POST", THREADS, {
            "folderId": "folder-1", "name": "n", "labels": {"k": "v"},
            "messages": [message_json("hi")]})
        self.assertEqual(status, 200)
        self.assertLessEqual(set(thread), documented)
        self.assertEqual(thread["expirationConfig"], {"expirationPolicy": "SINCE_LAST_ACTIVE",
                                                      "ttlDays": "7"})
        for key in ("createdAt", "updatedAt", "expiresAt"):
            self.assertRegex(thread[key], STAMP_PATTERN)
        self.assertNotIn("description", thread)  # proto3 leaves out what is not set
        [line] = ndjson_lines(self.call("GET", MESSAGES + "?threadId=" + thread["id"])[3])
        recorded_message = self.recorded["get_run"]["COMPLETED"]["state"]["completedMessage"]
        message = line["result"]
        self.assertEqual(message["author"]["role"], "USER")
        assert_same_shape(self, recorded_message, message, "message")

    def test_errors_are_shaped_like_the_documented_ones(self) -> None:
        gateway = {"error": {"grpcCode": 16, "httpCode": 401, "message": "Unknown api key '…'",
                             "httpStatus": "Unauthorized", "details": []}}
        service = {"code": 5, "message": "run not found", "details": []}
        with yc_runs.Emulator(api_key="right") as emu:
            status, _, answer, _ = exchange(emu, raw_request("GET", RUNS + "/x"))
            self.assertEqual(status, 401)
            assert_same_shape(self, gateway, answer, "401")
            self.assertEqual(answer["error"]["message"], "Unknown api key 'k'")
        status, _, answer, _ = self.call("GET", RUNS + "/x")
        self.assertEqual(status, 404)
        assert_same_shape(self, service, answer, "404")


class EmulatorKnobsTest(EmulatorWireTestCase):
    def test_an_http_status_fault_has_its_standard_grpc_code_and_retry_after_only_when_asked(
            self) -> None:
        run_id = self.create()["id"]
        for status, code in ((400, 3), (403, 7), (404, 5), (409, 10), (429, 8), (500, 13),
                             (502, 14), (503, 14), (504, 4)):
            self.emu.inject(yc_runs.Fault.http_status(status), on="get")
            got, headers, answer, _ = self.call("GET", RUNS + "/" + run_id)
            self.assertEqual((got, grpc_refusal(answer)[0]), (status, code))
            self.assertNotIn("retry-after", headers)
        self.emu.inject(yc_runs.Fault.http_status(429, retry_after=2), on="get")
        self.assertEqual(self.call("GET", RUNS + "/" + run_id)[1]["retry-after"], "2")

    def test_a_fixed_latency_delays_answers_past_a_short_timeout(self) -> None:
        with yc_runs.Emulator(latency=0.05, implicit=True) as emu:
            with yc_runs.Client(base_url=emu.url, api_key="k", timeout=0.02, max_retries=0
                                ) as hasty, self.assertRaises(yc_runs.APITimeoutError):
                hasty.runs.get("x")
            with yc_runs.Client(base_url=emu.url, api_key="k", timeout=5) as patient:
                started = time.monotonic()
                run = patient.runs.create("a", "t", additional_messages=["a b c"], stream=True)
                self.assertGreaterEqual(time.monotonic() - started, 0.05)
                self.assertEqual("".join(run.text_stream()), "a b c")
        for wrong in (-1, "fast", True):
            with self.assertRaises(ValueError):
                yc_runs.Emulator(latency=wrong)  # type: ignore[arg-type]
        for clock in (5, "now"):
            with self.assertRaises(TypeError) as caught:
                yc_runs.Emulator(clock=clock)  # type: ignore[arg-type]
            self.assertIn("clock", str(caught.exception))

    def test_realistic_latency_keeps_a_fresh_run_running(self) -> None:
        with yc_runs.Emulator(latency="realistic", implicit=True) as emu, \
                yc_runs.Client(base_url=emu.url, api_key="k", timeout=5) as client:
            run = client.runs.create("a", "t")
            self.assertTrue(client.runs.get(run.id).status.is_running)

    def chunks(self, emu: yc_runs.Emulator, run_id: str) -> List[bytes]:
        """The chunks of a Listen body, as framed on the wire."""
        sock = socket.create_connection(("127.0.0.1", urlsplit(emu.url).port), timeout=10)
        with sock, sock.makefile("rb") as f:
            sock.sendall(raw_request("GET", RUNS + "/listen?runId=" + run_id))
            while f.readline() not in (b"\r\n", b""):
                pass
            pieces = []
            while True:
                size = int(f.readline(), 16)
                if size == 0:
                    return pieces
                pieces.append(f.read(size))
                f.readline()

    def test_random_chunking_cuts_inside_lines_and_repeats_with_a_seed(
            self) -> None:
        text = ["привет ", "мир ", "🌍 ", "!"]
        seen = []
        for chunking, seed in (("random", 5), ("random", 5), ("lines", 5)):
            with yc_runs.Emulator(chunking=chunking, seed=seed, event_delay=0.001) as emu:
                emu.script("u", replies=[text])
                thread = emu.threads.create()
                with yc_runs.Client(base_url=emu.url, api_key="k") as client:
                    run = client.runs.create("u", thread, stream=True)
                    self.assertEqual("".join(run.text_stream()), "".join(text))
                    seen.append([len(c) for c in self.chunks(emu, run.id)])
                    pieces = self.chunks(emu, run.id)
            if chunking == "lines":
                self.assertTrue(all(p.endswith(b"\n") for p in pieces))
            else:
                self.assertTrue(any(not p.endswith(b"\n") for p in pieces))
        self.assertEqual(seen[0], seen[1])
        self.assertNotEqual(seen[0], seen[2])
        with self.assertRaises(ValueError):
            yc_runs.Emulator(chunking="bytes")

    def test_usage_accumulates_across_tool_rounds_and_shows_while_in_progress(self) -> None:
        clock = FakeClock()  # the emulator's: each round ends when the test moves it
        with yc_runs.Emulator(clock=clock, implicit=True) as emu, \
                yc_runs.Client(base_url=emu.url, api_key="k") as client:
            emu.script("slow-tools", tool_calls=[{"name": "f"}], replies=["ok"], delay=0.2)
            run = client.runs.create("slow-tools", "thr-1")
            clock.now += 1
            first = run.wait().usage
            run.submit_tool_results({"name": "f", "content": "1"})
            during = client.runs.get(run.id)
            self.assertEqual((during.status, during.usage), (yc_runs.RunStatus.IN_PROGRESS, first))
            clock.now += 1
            final = run.wait().usage
        assert first is not None and final is not None
        self.assertGreater(final.total_tokens, first.total_tokens)


class EmulatorResponsesMalformedRequestsTest(EmulatorResponsesTestCase):
    def test_every_malformed_request_gets_its_status_code_and_field_and_changes_nothing(
            self) -> None:
        background = self.post(RESPONSES, dict(MINIMAL_RESPONSE, background=True))
        self.assertEqual(background["status"], "queued")
        self.assertEqual(self.finished(background["id"])["status"], "completed")
        foreground = self.post(RESPONSES, MINIMAL_RESPONSE)
        self.assertEqual(foreground["status"], "completed")  # answered once it is finished
        conversation = self.post(CONVERSATIONS, {"items": [input_message("hello")]})["id"]
        ids = {"{bg}": background["id"], "{fg}": foreground["id"], "{conv}": conversation}
        before = (sorted(self.emu.responses), sorted(self.emu.conversations),
                  len(self.emu.conversations[conversation].items))
        self.assertGreaterEqual(len(MALFORMED_RESPONSES_REQUESTS), 25)
        self.assertGreaterEqual(len(MALFORMED_RESPONSES_REQUESTS) + len(MALFORMED_ASSISTANT_API_REQUESTS), 60)
        for what, method, target, body, status, code, param in MALFORMED_RESPONSES_REQUESTS:
            with self.subTest(what):
                for name, value in ids.items():
                    target = target.replace(name, value)
                    if isinstance(body, dict):
                        body = json.loads(json.dumps(body).replace(name, value))
                got, headers, answer, _ = self.call(method, target, body,
                                                    auth=what != "no Authorization")
                self.assertEqual(got, status, answer)
                self.assertTrue(headers["x-request-id"])
                self.assertEqual(headers["content-type"], "application/json")
                got_code, message, got_param = openai_refusal(answer)
                self.assertEqual((got_code, got_param), (code, param), message)
                if param is not None and status == 400:
                    self.assertIn(re.findall(r"[A-Za-z_]+", param)[-1], message)
                # and it keeps serving, on a new connection
                self.assertEqual(self.call("GET", RESPONSES + "/" + background["id"])[0], 200)
        self.assertEqual((sorted(self.emu.responses), sorted(self.emu.conversations),
                          len(self.emu.conversations[conversation].items)), before)

    def test_fields_yandex_does_not_support_are_ignored_and_show_their_defaults(self) -> None:
        answer = self.post(RESPONSES, dict(MINIMAL_RESPONSE, metadata={"a": "b"}, truncation="auto",
                                          reasoning={"effort": "low"}, service_tier="flex",
                                          safety_identifier="u", prompt_cache_key="k"))
        self.assertEqual((answer["metadata"], answer["truncation"], answer["reasoning"],
                          answer["service_tier"], answer["safety_identifier"]),
                         ({}, None, None, "default", None))

    def test_a_scripted_agent_is_known_by_its_prompt_id_and_implicit_knows_any(self) -> None:
        self.emu.script("agent-7", replies=["Я агент."])
        answer = self.post(RESPONSES, {"prompt": {"id": "agent-7"}, "input": "кто ты?"})
        self.assertEqual(answer["output"][0]["content"][0]["text"], "Я агент.")
        self.assertEqual(answer["prompt"]["id"], "agent-7")
        with yc_runs.Emulator(implicit=True) as emu:
            status, _, answer, _ = exchange(emu, raw_request(
                "POST", RESPONSES, {"prompt": {"id": "anyone"}, "conversation": "any-conv"}))
            self.assertEqual((status, answer["conversation"]), (200, {"id": "any-conv"}))

    def test_cancel_stops_a_background_response_and_delete_forgets_it(self) -> None:
        self.emu.script(MODEL, replies=[["a ", "b"]], delay=0.5)
        queued = self.post(RESPONSES, dict(MINIMAL_RESPONSE, background=True))
        cancelled = self.post(RESPONSES + "/" + queued["id"] + "/cancel", None)
        self.assertEqual((cancelled["status"], cancelled["output"]), ("cancelled", []))
        self.assertEqual(self.post(RESPONSES + "/" + queued["id"] + "/cancel", None)["status"],
                         "cancelled")  # twice is once
        response = self.emu.responses[queued["id"]]
        self.assertEqual(response.status(time.monotonic() + 60), "cancelled")  # and it stays
        self.assertEqual([e["type"] for _, e in response.events], ["response.created"])
        status, _, deleted, _ = self.call("DELETE", RESPONSES + "/" + queued["id"])
        self.assertEqual((status, deleted), (200, {"id": queued["id"], "object": "response.deleted",
                                                   "deleted": True}))
        self.assertEqual(self.call("GET", RESPONSES + "/" + queued["id"])[0], 404)

    def test_items_page_by_limit_order_and_after(self) -> None:
        conversation = self.post(CONVERSATIONS, {"items": [input_message(str(i)) for i in range(5)],
                                            "metadata": {"topic": "t"}})
        self.assertEqual((conversation["object"], conversation["metadata"]),
                         ("conversation", {"topic": "t"}))
        self.assertIsInstance(conversation["created_at"], int)
        target = CONVERSATIONS + "/" + conversation["id"] + "/items?limit=2&order=asc"
        page = self.call("GET", target)[2]
        texts = [item["content"][0]["text"] for item in page["data"]]
        self.assertEqual((texts, page["has_more"], page["last_id"]),
                         (["0", "1"], True, page["data"][1]["id"]))
        rest = self.call("GET", target.replace("limit=2", "limit=100") + "&after="
                         + page["last_id"])[2]
        self.assertEqual(([i["content"][0]["text"] for i in rest["data"]], rest["has_more"]),
                         (["2", "3", "4"], False))
        newest = self.call("GET", CONVERSATIONS + "/" + conversation["id"] + "/items?limit=1")[2]
        self.assertEqual(newest["data"][0]["content"][0]["text"], "4")  # desc by default
        response = self.post(RESPONSES, dict(MINIMAL_RESPONSE,
                                              input=[input_message("a"), input_message("b")]))
        items = self.call("GET", RESPONSES + "/" + response["id"] + "/input_items?order=asc")[2]
        self.assertEqual([i["content"][0]["text"] for i in items["data"]], ["a", "b"])


class EmulatorResponsesCapturedShapeTest(EmulatorResponsesTestCase):
    """The emulator's streams and Response objects against the captures, field by field."""

    def stream(self, body: Dict[str, Any]) -> bytes:
        status, headers, _, raw = self.call("POST", RESPONSES, dict(body, stream=True))
        self.assertEqual((status, headers["content-type"]), (200, "text/event-stream"))
        return raw

    def test_streams_and_responses_have_the_captured_keys_types_order_and_framing(self) -> None:
        func_tool = capture_final("func.sse")["tools"][0]
        requests = {
            "plain.sse": {"model": MODEL, "input": "Привет, мир!", "temperature": 0.1,
                          "max_output_tokens": 32},
            "func.sse": {"model": MODEL, "input": "Погода в Казани?",
                         "instructions": "Ты — Джарвис.", "temperature": 0.2,
                         "max_output_tokens": 300, "tools": [{
                             k: v for k, v in func_tool.items()
                             if k in ("type", "name", "description", "parameters")}]},
        }
        emulated = {name: self.stream(body) for name, body in requests.items()}
        captured_shapes: Dict[str, Dict[str, Set[str]]] = {}
        emulated_shapes: Dict[str, Dict[str, Set[str]]] = {}
        for name, raw in emulated.items():
            with self.subTest(name):
                capture = capture_bytes(name)
                self.assertRegex(raw, rb"\A(data:\{[^\n]*\}\nevent:[a-z_.]+\n\n)+\Z")
                self.assertNotIn(b"[DONE]", raw)
                self.assertRegex(raw, rb'"created_at":1\.[0-9]+E9,')  # as the service's Java writes it
                self.assertEqual(raw.count(b'"valid":true,"valid":true'),
                                 capture.count(b'"valid":true,"valid":true'))  # and twice, too
                kinds, numbers, shapes = shapes_of(raw)
                want_kinds, _, want_shapes = shapes_of(capture)
                self.assertEqual(collapse(kinds), collapse(want_kinds))
                self.assertEqual(numbers, list(range(1, len(numbers) + 1)))
                for store, found in ((emulated_shapes, shapes), (captured_shapes, want_shapes)):
                    for kind, paths in found.items():
                        for key, types in paths.items():
                            store.setdefault(kind, {}).setdefault(key, set()).update(types)
        # the Response object of a Get, too, against the captured terminal events'
        got: Dict[str, Set[str]] = {}
        want: Dict[str, Set[str]] = {}
        for name, body in requests.items():
            response_id = self.post(RESPONSES, dict(body, background=True))["id"]
            for key, kind in typed_paths(self.finished(response_id)):
                got.setdefault(key, set()).add(kind)
            for key, kind in typed_paths(capture_final(name)):
                want.setdefault(key, set()).add(kind)
        emulated_shapes["get"], captured_shapes["get"] = got, want
        for kind, want_paths in captured_shapes.items():
            with self.subTest(kind):
                got_paths = emulated_shapes[kind]
                self.assertEqual(set(got_paths) - set(want_paths), set(), "keys never captured")
                self.assertEqual(set(want_paths) - set(got_paths), set(), "captured keys missing")
                for key, types in got_paths.items():
                    self.assertLessEqual(types, want_paths[key], key)
        final = capture_final("plain.sse")
        self.assertRegex(response_id, r"\A[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                      r"[0-9a-f]{12}\Z")  # a UUID, as the service's ids
        got_final = self.finished(response_id)
        self.assertEqual(list(got_final), list(final))  # the keys in the service's order
        self.assertIsNone(got_final["completed_at"])
        self.assertLess(abs(got_final["created_at"] - time.time()), 60)  # seconds, a float


class EmulatorResponsesLifecycleTest(EnvTestCase, ResponsesLifecycleScenarios):
    def setUp(self) -> None:
        super().setUp()
        self.emu = yc_runs.Emulator(event_delay=0.001, seed=5, chunking="random").start()
        self.addCleanup(self.emu.stop)

    def test_a_run_through_three_cuts_and_a_tool_round_on_a_conversation(self) -> None:
        self.arm()
        client = yc_runs.Client(base_url=self.emu.url, api_key="k", api="responses",
                                folder_id="b1gxxxxxxxxxxxxxxxxx", max_retries=5)
        self.addCleanup(client.close)
        thread = client.threads.create(["Погода в Казани?"])
        run = client.runs.create("yandexgpt/latest", thread, stream=True,
                                 instructions="Ты — Джарвис.", tools=[WEATHER_TOOL])
        first_id = run.id
        events = list(run.listen())
        self.emu.inject(yc_runs.Fault.cut(after_bytes=1500), on="listenResponse")
        run.submit_tool_results({"name": "get_weather", "content": '{"t": 21}'})
        events += list(run.listen(events_start_idx=events[-1].stream_cursor.current_event_idx + 1))
        self.check(events, run.id, client.runs.get(run.id).status, first_id)
        followup = [r.json for r in self.emu.requests if r.method == "POST"][-1]
        self.assertEqual((followup["conversation"], followup["instructions"], followup["tools"]),
                         (thread.id, "Ты — Джарвис.", [WEATHER_TOOL]))  # settings sent again
        self.assertEqual(run.wait().text, "Солнечно и +21 в Казани.")

    def test_a_stateless_run_through_three_cuts_async(self) -> None:
        self.arm()

        async def main() -> Tuple[List[yc_runs.RunStreamEvent], str, Any, str]:
            async with yc_runs.AsyncClient(base_url=self.emu.url, api_key="k", api="responses",
                                           max_retries=5) as client:
                run = await client.runs.create(MODEL, stream=True,
                                               additional_messages=["Погода в Казани?"],
                                               tools=[WEATHER_TOOL])
                first_id = run.id
                events = [e async for e in run.listen()]
                self.emu.inject(yc_runs.Fault.cut(after_bytes=1500), on="listenResponse")
                await run.submit_tool_results({"name": "get_weather", "content": "21"})
                events += [e async for e in run.listen(
                    events_start_idx=events[-1].stream_cursor.current_event_idx + 1)]
                return events, run.id, (await client.runs.get(run.id)).status, first_id

        events, run_id, status, first_id = asyncio.run(main())
        self.check(events, run_id, status, first_id)
        followup = [r.json for r in self.emu.requests if r.method == "POST"][-1]
        self.assertEqual(followup["previous_response_id"], first_id)

    def test_the_default_assistant_calls_the_first_tool_then_answers_with_its_output(self) -> None:
        client = yc_runs.Client(base_url=self.emu.url, api_key="k", api="responses")
        self.addCleanup(client.close)
        run = client.runs.create(MODEL, additional_messages=["Kazan"], tools=[WEATHER_TOOL])
        result = run.run_tools({"get_weather": lambda city: "sunny in " + city}, poll_interval=0.005)
        self.assertEqual(result.text, "get_weather returned sunny in Kazan")
        echo = client.runs.create(MODEL, additional_messages=["echo me"]).wait(
            poll_interval=0.005)
        self.assertEqual(echo.text, "echo me")

    def test_latency_paces_answers_and_events_on_responses(self) -> None:
        with yc_runs.Emulator(latency=0.02) as emu:
            started = time.monotonic()
            status, _, answer, _ = exchange(emu, raw_request(
                "POST", RESPONSES, dict(MINIMAL_RESPONSE, input="a b c")))  # foreground: when finished
            elapsed = time.monotonic() - started
        self.assertEqual((status, answer["status"]), (200, "completed"))
        self.assertGreaterEqual(elapsed, 0.02 * 5)  # the answer's delay, the first event, 3 deltas

    def test_max_output_tokens_truncates_and_emu_threads_serve_both_wires(self) -> None:
        thread_id = self.emu.threads.create(messages=["one two three four five"])
        client = yc_runs.Client(base_url=self.emu.url, api_key="k", api="responses")
        self.addCleanup(client.close)
        run = client.runs.create(MODEL, thread_id, custom_max_tokens=2)
        result = run.wait(poll_interval=0.005)
        assert result.completed_message is not None
        self.assertEqual((result.text, result.completed_message.status),
                         ("one two", yc_runs.MessageStatus.TRUNCATED))
        self.assertEqual(self.emu.responses[run.id].status(time.monotonic()), "incomplete")
        untooled = client.runs.create(MODEL, additional_messages=["x"], tools=[WEATHER_TOOL],
                                      extra_body={"tool_choice": "none"})
        self.assertEqual(untooled.wait(poll_interval=0.005).text, "x")

    def test_a_scripted_error_fails_the_run(self) -> None:
        self.emu.script("gpt://b1g/broken/latest", error="the model is down")
        client = yc_runs.Client(base_url=self.emu.url, api_key="k", api="responses")
        self.addCleanup(client.close)
        run = client.runs.create("gpt://b1g/broken/latest", stream=True, additional_messages=["x"])
        events = list(run.listen())
        self.assertEqual(events[-1].status, yc_runs.StreamEvent.ERROR)
        self.assertIn("the model is down", str(run.wait().error))


class EmulatorResponsesThreadsTest(EnvTestCase):
    def test_threads_are_conversations_with_their_messages(self) -> None:
        with yc_runs.Emulator(event_delay=0.001) as emu, yc_runs.Client(
                base_url=emu.url, api_key="k", api="responses") as client:
            thread = client.threads.create(["первое", "второе"], name="support",
                                           labels={"team": "ml"})
            self.assertEqual((thread.name, thread.labels), ("support", {"team": "ml"}))
            self.assertEqual(emu.conversations[thread.id].json["metadata"],
                             {"team": "ml", "name": "support"})
            self.assertEqual(thread.write("третье").text, "третье")
            got = client.threads.get(thread.id)
            self.assertEqual((got.id, got.name, got.labels), (thread.id, "support", {"team": "ml"}))
            result = client.runs.create(MODEL, thread).wait(poll_interval=0.005)
            self.assertEqual(result.text, "третье")  # the default assistant echoes the last
            self.assertEqual([(m.author.role, m.text) for m in thread.messages()],
                             [("ASSISTANT", "третье"), ("USER", "третье"), ("USER", "второе"),
                              ("USER", "первое")])
            with self.assertRaises(yc_runs.NotFoundError):
                client.threads.get("nope")
            for action in (lambda: client.threads.delete(thread), lambda: list(client.threads.list())):
                with self.assertRaises(yc_runs.UnsupportedOperationError):
                    action()
            many = client.threads.create(["m%d" % i for i in range(20)])
            for i in range(20, 130):  # past a page of 100
                emu.conversations[many.id].items.append((0.0, {
                    "type": "message", "id": "i%d" % i, "role": "user", "status": "completed",
                    "content": [{"type": "input_text", "text": "m%d" % i}]}))
            self.assertEqual([m.text for m in many.messages()], ["m%d" % i for i in range(129, -1, -1)])


class EmulatorResponsesDemoTest(EnvTestCase):
    def test_demo_runs_the_lifecycle_on_both_wires(self) -> None:
        for api, assistant in (("responses", "gpt://demo-folder/yandexgpt/latest"),
                               ("assistants", "demo-assistant")):
            with self.subTest(api):
                code, out, err = run_main("demo", "--event-delay", "0.001",
                                          *(["--api", api] if api == "assistants" else []))
                self.assertEqual((code, err), (0, ""))
                self.assertIn("%s wire" % api, out)
                self.assertIn("created thread ", out)
                self.assertIn("-> tool call: get_weather", out)
                self.assertIn("It is sunny and +21 \u00b0C in Moscow right now.\n[DONE]\n", out)
                self.assertIn("  assistant  " + assistant, out)
        self.assertFalse(hasattr(yc_runs, "get_weather"))

    def test_demo_json_on_responses(self) -> None:
        result = run_main("demo", "--json", "--event-delay", "0.001")
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        objects = [json.loads(line) for line in result.stdout.splitlines()]
        submitted = next(o for o in objects if "submitted" in o)
        final = objects[-1]
        self.assertEqual((final["status"], final["id"], final["assistant_id"]),
                         ("COMPLETED", submitted["run_id"], "gpt://demo-folder/yandexgpt/latest"))
        self.assertRegex(final["thread_id"], r"\A[0-9a-f-]{36}\Z")  # a conversation


# ============================================================================
# Hostile input
# ============================================================================


class HostileInputTest(EnvTestCase):
    tried = 0

    @classmethod
    def tearDownClass(cls) -> None:
        print("\n[hostile] %d cases tried" % cls.tried)
        super().tearDownClass()

    def case(self, name: str, action: Callable[[], Any], expected: Any, *,
             contains: Tuple[str, ...] = (), bound: float = 15.0, allow_ok: bool = False) -> Any:
        """Run one case: it raises ``expected`` (None: nothing; ``allow_ok``: that or nothing)
        within ``bound`` seconds, never one of FORBIDDEN_ERRORS, never with the credential in
        its text. Returns the exception or the action's value."""
        HostileInputTest.tried += 1
        started = time.monotonic()
        try:
            value = action()
        except Exception as exc:
            text = "%s %r" % (exc, exc)
            self.assertLess(time.monotonic() - started, bound, name)
            self.assertNotIsInstance(exc, FORBIDDEN_ERRORS, "%s: %r" % (name, exc))
            self.assertNotIn(TEST_SECRET, text, name)
            if expected is None:
                self.fail("%s: raised %r" % (name, exc))
            self.assertIsInstance(exc, expected, "%s: %r" % (name, exc))
            for piece in contains:
                self.assertIn(piece, str(exc), name)
            return exc
        self.assertLess(time.monotonic() - started, bound, name)
        if expected is not None and not allow_ok:
            self.fail("%s: no error, got %r" % (name, value))
        return value

    def raw(self, handler: Callable[[socket.socket, bytes], Any]) -> RawServer:
        server = RawServer(handler)
        self.addCleanup(server.close)
        return server

    def client(self, url: str, **options: Any) -> yc_runs.Client:
        client = yc_runs.Client(**dict({"base_url": url, "api_key": TEST_SECRET, "timeout": 2,
                                        "max_retries": 0, "retry_delay": 0}, **options))
        self.addCleanup(client.close)
        return client

    def test_hostile_ids_reach_the_service_as_data(self) -> None:
        emu = yc_runs.Emulator(event_delay=0.001, implicit=True).start()
        self.addCleanup(emu.stop)
        client = self.client(emu.url)
        targets: List[bytes] = []

        def record(conn: socket.socket, request: bytes) -> None:
            targets.append(request.split(b" ", 2)[1])
            conn.sendall(json_response(404, {"code": 5, "message": "run not found"}))

        raw = self.client(self.raw(record).url)
        for hostile in HOSTILE_IDS:
            with self.subTest(id=hostile):
                if hostile in (".", ".."):  # a dot segment that normalization would remove
                    sent = len(emu.requests), len(targets)
                    self.case("get %r" % hostile, lambda h=hostile: client.runs.get(h), ValueError)
                    self.case("raw get %r" % hostile, lambda h=hostile: raw.runs.get(h), ValueError)
                    self.assertEqual((len(emu.requests), len(targets)), sent)
                else:
                    self.case("get %r" % hostile, lambda h=hostile: client.runs.get(h),
                              yc_runs.NotFoundError, contains=("not found",))
                    self.assertEqual((emu.requests[-1].method, emu.requests[-1].path),
                                     ("GET", "/assistants/v1/runs/" + hostile))
                    self.case("raw get %r" % hostile, lambda h=hostile: raw.runs.get(h),
                              yc_runs.NotFoundError)
                    target = targets[-1].decode("ascii")
                    prefix = "/assistants/v1/runs/"
                    self.assertTrue(target.startswith(prefix), target)
                    segment = target[len(prefix):]
                    self.assertRegex(segment, r"^[A-Za-z0-9._~%-]+$")  # nothing unescaped
                    self.assertEqual(unquote(segment), hostile)
                self.case("last by thread %r" % hostile,
                          lambda h=hostile: client.runs.get_last_by_thread(h), yc_runs.NotFoundError)
                self.assertEqual((emu.requests[-1].path, emu.requests[-1].query),
                                 ("/assistants/v1/runs:getByThread", {"threadId": hostile}))
                self.case("listen %r" % hostile, lambda h=hostile: listen_all(client, h),
                          yc_runs.NotFoundError)
                self.assertEqual(emu.requests[-1].query, {"runId": hostile, "eventsStartIdx": "0"})
                self.case("submit %r" % hostile, lambda h=hostile: yc_runs.Run(
                    h, _runs=client.runs).submit_tool_results({"name": "f", "content": "1"}),
                    yc_runs.NotFoundError)
                self.assertEqual(emu.requests[-1].json["runId"], hostile)
        self.assertEqual(emu.runs, {})
        for mistake, kind in (("", ValueError), (None, TypeError), (123, TypeError),
                              (b"bytes", TypeError)):
            self.case("get(%r)" % (mistake,), lambda m=mistake: client.runs.get(m), kind)

    def test_hostile_header_values_are_refused_before_sending(self) -> None:
        server = self.raw(lambda conn, request: conn.sendall(json_response(200, {"id": "r"})))
        breaks = ["\r\nX-Evil: 1", "\n", "\r", "\x00", "\r\n\r\nGET / HTTP/1.1"]
        for tail in breaks:
            token = TEST_SECRET + tail
            for option in ("api_key", "iam_token"):
                self.case("%s=...%r" % (option, tail), lambda o=option, t=token: yc_runs.Client(
                    base_url=server.url, **{o: t}), yc_runs.CredentialsError,
                    contains=("CR, LF or NUL",))
                self.case("%s=callable ...%r" % (option, tail), lambda o=option, t=token: self.client(
                    server.url, **{"api_key": None, o: lambda: t}).runs.get("r"),
                    yc_runs.CredentialsError)
            self.case("folder_id ...%r" % tail, lambda t=tail: yc_runs.Client(
                base_url=server.url, api_key="k", folder_id="b1g" + t), ValueError)
            for variable in ("YC_API_KEY", "YC_IAM_TOKEN", "YC_TOKEN"):
                if "\x00" in tail:
                    continue  # the environment cannot hold a NUL
                with clean_env(**{variable: token}):
                    self.case("$%s ...%r" % (variable, tail),
                              lambda: self.client(server.url, api_key=None).runs.get("r"),
                              yc_runs.CredentialsError)
            if "\x00" not in tail:
                with clean_env(YC_FOLDER_ID="b1g" + tail):
                    self.case("$YC_FOLDER_ID ...%r" % tail, lambda: yc_runs.Client(
                        base_url=server.url, api_key="k"), ValueError)
            self.case("base_url ...%r" % tail, lambda t=tail: yc_runs.Client(
                base_url=server.url + "/pre" + t + "fix", api_key="k"), ValueError)

            async def async_call(t: str = token) -> None:
                async with yc_runs.AsyncClient(base_url=server.url, api_key=lambda: t) as client:
                    await client.runs.get("r")

            self.case("async api_key=callable ...%r" % tail, lambda c=async_call: asyncio.run(c()),
                      yc_runs.CredentialsError)
        for url in ("http://127.0.0.1:%d/a b" % server.port, "http://127.0.0.1:%d/\u00fc" % server.port):
            self.case("base_url %r" % url, lambda u=url: yc_runs.Client(base_url=u, api_key="k"),
                      ValueError)
        self.assertEqual((server.connections, server.requests), (0, []))

    def test_hostile_bodies(self) -> None:
        mode: Dict[str, Any] = {}

        def handler(conn: socket.socket, request: bytes) -> Any:
            reply = mode["reply"]
            return reply(conn) if callable(reply) else conn.sendall(reply)

        server = self.raw(handler)
        client = self.client(server.url)
        html = (b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad "
                b"Gateway</h1></center><hr><center>nginx</center>" + b"<p>filler</p>" * 5000
                + b"</body></html>")
        valid = json.dumps({"id": "fvt-ok", "state": {"status": "COMPLETED"}}).encode()

        def huge(conn: socket.socket) -> bool:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (100 << 20))
            block = b" " * (1 << 20)
            with contextlib.suppress(OSError):
                for _ in range(100):
                    conn.sendall(block)
            return False

        def longer_then_silent(conn: socket.socket) -> None:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + valid[:20])

        cases: List[Tuple[str, Any, Any, Tuple[str, ...]]] = [
            ("200 html", http_response(200, html, (("Content-Type", "text/html"),)),
             yc_runs.MalformedResponseError, ("not JSON", "502 Bad Gateway")),
            ("200 text", http_response(200, b"all good"), yc_runs.MalformedResponseError,
             ("all good",)),
            ("200 empty", http_response(200, b""), yc_runs.MalformedResponseError, ("run id",)),
            ("200 list", json_response(200, []), yc_runs.MalformedResponseError, ("Run",)),
            ("200 string", json_response(200, "fvt-ok"), yc_runs.MalformedResponseError, ("Run",)),
            ("200 null", json_response(200, None), yc_runs.MalformedResponseError, ("run id",)),
            ("200 NaN", http_response(200, b'{"id": "r", "usage": {"promptTokens": NaN}}'),
             yc_runs.MalformedResponseError, ("Run.usage.promptTokens",)),
            ("200 deep nesting", http_response(200, b"[" * 100000 + b"]" * 100000),
             yc_runs.MalformedResponseError, ()),
            ("502 html", http_response(502, html, (("Content-Type", "text/html"),), "Bad Gateway"),
             yc_runs.ServerError, ("502 Bad Gateway", "HTTP 502")),
            ("500 text", http_response(500, b"Internal error " + TEST_SECRET.encode()),
             yc_runs.ServerError, ("HTTP 500",)),
            ("503 empty", http_response(503, b""), yc_runs.ServerError, ("HTTP 503",)),
            ("404 html", http_response(404, b"<html><title>Not Found</title></html>"),
             yc_runs.NotFoundError, ("Not Found",)),
            ("401 echoing the key", json_response(401, {"error": {
                "grpcCode": 16, "message": "key %s is revoked, Api-Key %s" % (TEST_SECRET, TEST_SECRET)}}),
             yc_runs.AuthenticationError, ("revoked",)),
            ("418 json list", json_response(418, [1, 2]), yc_runs.APIError, ("HTTP 418",)),
            ("200 ends mid-UTF-8", http_response(200, b'{"id": "fvt-\xd0'),
             yc_runs.MalformedResponseError, ()),
            ("200 bad UTF-8", http_response(200, b'{"id": "fvt-\xd0\x28"}'),
             yc_runs.MalformedResponseError, ()),
            ("500 ends mid-UTF-8", http_response(500, b'{"message": "\xd0'), yc_runs.ServerError, ()),
            ("Content-Length shorter", b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" + valid,
             yc_runs.MalformedResponseError, ()),
            ("Content-Length longer, then closed",
             lambda conn: conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + valid)
             or False, yc_runs.APIConnectionError, ("closed",)),
            ("Content-Length longer, then silent", longer_then_silent, yc_runs.APITimeoutError, ()),
            ("Content-Length not a number", b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n",
             yc_runs.APIConnectionError, ("Content-Length",)),
            ("Content-Length negative", b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n" + valid,
             yc_runs.APIConnectionError, ("Content-Length",)),
            ("Content-Length twice, differing",
             b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\n" + valid,
             yc_runs.APIConnectionError, ("Content-Length",)),
            ("not HTTP", b"SSH-2.0-OpenSSH_9.6\r\n\r\n", yc_runs.APIConnectionError, ("HTTP",)),
            ("bad status line", b"HTTP/1.1 abc\r\n\r\n", yc_runs.APIConnectionError, ()),
            ("huge head", b"HTTP/1.1 200 OK\r\nX: " + b"a" * (200 << 10) + b"\r\n\r\n",
             yc_runs.APIConnectionError, ("head",)),
            ("bad header line", b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
             yc_runs.APIConnectionError, ()),
            ("bad chunk size", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
             yc_runs.APIConnectionError, ("chunk",)),
            ("unknown transfer encoding", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
             yc_runs.APIConnectionError, ("Transfer-Encoding",)),
            ("closed without answer", lambda conn: False, yc_runs.APIConnectionError, ()),
            ("a 100 MB body", huge, yc_runs.MalformedResponseError, ("over",)),
            ("fine again", http_response(200, valid), None, ()),
        ]
        for name, reply, expected, contains in cases:
            mode["reply"] = reply
            timeout = 0.2 if "silent" in name else None  # a real socket must time out there
            error = self.case(name, lambda t=timeout: client.runs.get("r", timeout=t), expected,
                              contains=contains)
            if isinstance(error, yc_runs.APIError):
                self.assertLess(len(str(error)), 400, name)  # a snippet, not the whole body
        lister = self.client(server.url, folder_id="f")
        for name, page, words in (
                ("runs an object", {"runs": {}}, "ListRunsResponse.runs"),
                ("runs of numbers", {"runs": [5]}, "ListRunsResponse.runs[]"),
                ("token a list", {"nextPageToken": []}, "ListRunsResponse.nextPageToken"),
                ("the same token forever", {"runs": [], "nextPageToken": "again"}, "twice")):
            mode["reply"] = json_response(200, page)
            self.case("list: " + name, lambda: list(lister.runs.list()),
                      yc_runs.MalformedResponseError, contains=(words,))

    def test_a_redirect_keeps_the_credential_home(self) -> None:
        elsewhere = self.raw(lambda conn, request: conn.sendall(json_response(200, {"id": "x"})))
        for status in (301, 302, 307, 308):
            home = self.raw(lambda conn, request, s=status: conn.sendall(http_response(
                s, b"", (("Location", "http://localhost:%d/steal" % elsewhere.port),), "Moved")))
            client = self.client(home.url, max_retries=3)
            self.case("%d on get" % status, lambda c=client: c.runs.get("r"), yc_runs.APIError,
                      contains=("redirect", "localhost:%d" % elsewhere.port))
            self.case("%d on create" % status, lambda c=client: c.runs.create("a", "t"),
                      yc_runs.APIError, contains=("redirect",))

            async def follow(url: str = home.url) -> None:
                async with yc_runs.AsyncClient(base_url=url, api_key=TEST_SECRET,
                                               max_retries=0) as client:
                    await client.runs.get("r")

            self.case("%d on async get" % status, lambda f=follow: asyncio.run(f()), yc_runs.APIError,
                      contains=("redirect",))
            self.assertEqual(len(home.requests), 3)  # not retried, not followed
        self.assertEqual((elsewhere.connections, elsewhere.requests), (0, []))

    def test_hostile_run_json_at_every_level(self) -> None:
        current: Dict[str, Any] = {}
        server = self.raw(lambda conn, request: conn.sendall(json_response(200, current["body"])))
        client = self.client(server.url)
        for body in ([], "run", 5, True, None):
            current["body"] = body
            self.case("Run is %r" % (body,), lambda: client.runs.get("r"), yc_runs.MalformedResponseError)
        count = 0
        for path in mutable_paths(FULL_RUN_JSON):
            for value in WRONG_VALUES:
                current["body"] = with_value_at(FULL_RUN_JSON, path, value)
                name = "%s = %r" % (dotted("Run", path), value)
                if value is None and path != ("id",):
                    self.case(name, lambda: client.runs.get("r"), None)  # null is the default
                    continue
                outcome = self.case(name, lambda: client.runs.get("r"),
                                    yc_runs.MalformedResponseError, allow_ok=True)
                if isinstance(outcome, yc_runs.MalformedResponseError):
                    count += 1
                    self.assertIn("run id" if value is None else dotted("Run", path),
                                  str(outcome), name)
        self.assertGreater(count, 100)
        current["body"] = with_value_at(FULL_RUN_JSON, ("labels",), None)
        run = client.runs.get("r")
        self.assertEqual((run.labels, run.result.text), ({}, "hi"))
        current["body"] = {"id": "r", "state": None, "usage": None, "createdAt": None}
        run = client.runs.get("r")
        self.assertEqual((run.status, run.usage, run.created_at),
                         (yc_runs.RunStatus.RUN_STATUS_UNSPECIFIED, None, None))

    def test_hostile_stream_events_at_every_level(self) -> None:
        current: Dict[str, Any] = {}
        server = self.raw(lambda conn, request: conn.sendall(
            stream_head() + chunked([json.dumps({"result": current["event"]}).encode() + b"\n"])))
        client = self.client(server.url)
        count = 0
        for path in mutable_paths(EVENT_JSON):
            for value in WRONG_VALUES:
                current["event"] = with_value_at(EVENT_JSON, path, value)
                name = "%s = %r" % (dotted("StreamEvent", path), value)
                if value is None and path != ("eventType",):
                    self.case(name, lambda: listen_all(client, resume=False), None)
                    continue
                error = self.case(name, lambda: listen_all(client, resume=False),
                                  yc_runs.StreamError, allow_ok=True)
                if isinstance(error, yc_runs.StreamError):
                    count += 1
                    if path != ("eventType",):
                        self.assertIn(dotted("StreamEvent", path), str(error), name)
        print("\n[hostile] stream events: %d of the wrong values raised StreamError" % count)
        self.assertGreater(count, HOSTILE_EVENT_ERRORS)

    def test_hostile_streams(self) -> None:
        mode: Dict[str, Any] = {}

        def handler(conn: socket.socket, request: bytes) -> Any:
            return mode["reply"](conn)

        server = self.raw(handler)
        client = self.client(server.url, max_retries=1)
        text = "\u043f\u0440\u0438\u0432\u0435\u0442 \U0001f30d"
        final = {"eventType": "DONE", "streamCursor": {"currentEventIdx": "1"},
                 "completedMessage": {"content": {"content": [{"text": {"content": text}}]}}}
        done = json.dumps({"result": final}, ensure_ascii=False).encode() + b"\n"
        bare = json.dumps(final, ensure_ascii=False).encode() + b"\n"
        cut = done[:-10]  # ends inside the 4-byte emoji
        self.assertRaises(UnicodeDecodeError, cut.decode)
        partial = b'{"result": {"eventType": "PARTIAL_MESSAGE", "partialMessage": {"content": [' \
                  b'{"text": {"content": "a"}}]}}}\n'

        def send(*pieces: bytes, end: bool = True) -> Callable[[socket.socket], Any]:
            def reply(conn: socket.socket) -> Any:
                body = chunked(list(pieces)) if end else \
                    b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
                conn.sendall(stream_head() + body)
                return None if end else True  # True: the connection stays open, silent
            return reply

        def endless_line(conn: socket.socket) -> bool:
            conn.sendall(stream_head())
            block = b"%x\r\n%s\r\n" % (1 << 20, b"x" * (1 << 20))
            with contextlib.suppress(OSError):
                for _ in range(100):  # ~100 MB, one line, no newline
                    conn.sendall(block)
            return False

        def error_line(conn: socket.socket) -> None:
            conn.sendall(stream_head() + chunked([json.dumps({"error": {
                "grpcCode": 16, "message": "credential %s expired" % TEST_SECRET}}).encode() + b"\n"]))

        cases: List[Tuple[str, Callable[[socket.socket], Any], Any, Tuple[str, ...]]] = [
            ("silent after one event", send(partial, end=False), yc_runs.StreamError,
             ("after event 0", "no answer")),
            ("silent from the start", send(end=False), yc_runs.StreamError, ("before its first",)),
            ("a 100 MB line", endless_line, yc_runs.StreamError, ("longer than",)),
            ("ends mid-UTF-8", send(partial, cut), yc_runs.StreamError, ("malformed",)),
            ("a line ending mid-UTF-8", send(partial, cut + b"\n"), yc_runs.StreamError,
             ("malformed",)),
            ("UTF-8 split across chunks", send(*[done[i:i + 1] for i in range(len(done))]), None, ()),
            ("ends without a final event", send(partial), yc_runs.StreamError, ("final event",)),
            ("a line that is a list", send(b"[1, 2]\n"), yc_runs.StreamError, ("a list",)),
            ("result is a number", send(b'{"result": 5}\n'), yc_runs.StreamError, ("a number",)),
            ("html", send(b"<html><body>502 Bad Gateway</body></html>\n"), yc_runs.StreamError,
             ("malformed",)),
            ("deep nesting", send(b"[" * 100000 + b"]" * 100000 + b"\n"), yc_runs.StreamError, ()),
            ("blank lines and a bare event", send(b"\n\r\n\n", bare), None, ()),
            ("an error line echoing the key", error_line, yc_runs.AuthenticationError, ("expired",)),
            ("unknown event type", send(b'{"result": {"eventType": "NEW_THING"}}\n', done), None, ()),
        ]
        for name, reply, expected, contains in cases:
            mode["reply"] = reply
            events = self.case(name, lambda: listen_all(client, timeout=0.1), expected,
                               contains=contains)
            if expected is None:
                self.assertEqual(events[-1].text, text, name)

        async def async_listen() -> List[yc_runs.RunStreamEvent]:
            async with yc_runs.AsyncClient(base_url=server.url, api_key=TEST_SECRET,
                                           max_retries=1, retry_delay=0) as aclient:
                run = yc_runs.AsyncRun("r", _runs=aclient.runs)
                return [event async for event in run.listen(timeout=0.1)]

        for name, reply, expected, contains in cases:
            mode["reply"] = reply
            events = self.case("async " + name, lambda: asyncio.run(async_listen()), expected,
                               contains=contains)
            if expected is None:
                self.assertEqual(events[-1].text, text, name)


class SecretsTest(RawServerTestCase):
    """No credential is reachable from a raised exception, its chain or its frames' locals."""

    def assert_clean(self, exc: BaseException, *secrets: str) -> None:
        for secret in secrets:
            self.assertEqual(secret_leaks(exc, secret), [], secret)

    def failures(self, client: Any) -> List[BaseException]:
        caught: List[BaseException] = []
        run = yc_runs.Run("r", _runs=client.runs)
        for action in (lambda: client.runs.get("r"), lambda: list(run.listen())):
            try:
                action()
            except yc_runs.YCRunsError as exc:
                caught.append(exc)
        return caught

    def test_errors_of_unary_calls_and_streams_hold_no_key(self) -> None:
        echo = b"not json: Api-Key " + API_KEY.encode()
        stream = stream_handler(one_chunk(b"{bad Api-Key " + API_KEY.encode() + b"\n") + b"0\r\n\r\n")
        unauthorized = error_response(401, {"error": {"grpcCode": 16, "httpCode": 401,
                                                  "message": "Unknown api key '%s'" % API_KEY}})
        cut = stream_handler(b"{", head=b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        for name, answer in (("malformed", http_response(200, echo)), ("stream", stream),
                             ("401", unauthorized), ("cut", cut)):
            with self.subTest(name):
                client = self.client_for(self.serve(answer))
                caught = self.failures(client)
                self.assertTrue(caught)
                for exc in caught:
                    self.assert_clean(exc, API_KEY)

    def test_a_token_answer_that_fails_to_parse_holds_no_token(self) -> None:
        iam_token = "t1.IAMTOKEN-SECRET-VALUE-12345"
        oauth = "y0_OAUTH-SECRET-VALUE-67890"
        answer = b'{"iamToken": "' + iam_token.encode() + b'", "expiresAt": 5}'
        server = self.serve(http_response(200, answer))
        credentials = yc_runs.OAuthCredentials(oauth, url=server.url + "/iam")
        client = self.client_for(server, api_key=None, credentials=credentials)
        with self.assertRaises(yc_runs.YCRunsError) as caught:
            client.runs.get("r")
        self.assert_clean(caught.exception, iam_token, oauth)

    def test_async_errors_hold_no_key(self) -> None:
        server = self.serve(http_response(200, b"not json: Api-Key " + API_KEY.encode()))

        async def main() -> BaseException:
            async with yc_runs.AsyncClient(base_url=server.url, api_key=API_KEY) as client:
                try:
                    await client.runs.get("r")
                except yc_runs.YCRunsError as exc:
                    return exc
            raise AssertionError("no error")

        self.assert_clean(asyncio.run(main()), API_KEY)


class CapsTest(RawServerTestCase):
    """Error bodies on listen and token answers are read up to the unary cap, no further."""

    def huge(self, status: int, release: threading.Event) -> Callable[..., Any]:
        def handler(conn: socket.socket, request: bytes) -> bool:
            conn.sendall(b"HTTP/1.1 %d Oops\r\nContent-Length: 400000000\r\n\r\n" % status)
            block = b"x" * 65536
            with contextlib.suppress(OSError):
                while not release.is_set():
                    conn.sendall(block)
            return False

        return handler

    def test_the_client_cap_is_64_mib_and_the_emulators_own(self) -> None:
        # the emulator's request cap once had the client's name and halved the client's cap
        self.assertEqual((yc_runs._MAX_BODY_BYTES, yc_runs._EMULATOR_MAX_BODY_BYTES),
                         (64 << 20, 32 << 20))

    def test_an_endless_5xx_body_on_listen_is_still_a_retried_server_error(self) -> None:
        server = self.serve(self.huge(503, self.release_event()))
        run = yc_runs.Run("r", _runs=self.client_for(server, max_retries=1).runs)
        with mock.patch.object(yc_runs, "_MAX_BODY_BYTES", 256 * 1024), \
                self.assertRaises(yc_runs.ServerError) as caught:
            list(run.listen())
        self.assertEqual(caught.exception.status, 503)
        self.assertEqual(len(server.requests), 2)  # retried

    def test_an_endless_token_answer_is_cut(self) -> None:
        server = self.serve(self.huge(200, self.release_event()))
        credentials = yc_runs.MetadataCredentials(server.url + "/token")
        client = self.client_for(server, api_key=None, credentials=credentials)
        with mock.patch.object(yc_runs, "_MAX_BODY_BYTES", 256 * 1024), \
                self.assertRaises(yc_runs.CredentialsError):
            client.runs.get("r")


@unittest.skipUnless(hasattr(os, "fork"), "needs os.fork")


class LeaksFloodsAndMistakesTest(RawServerTestCase):
    def test_a_non_json_answer_echoing_the_key_is_redacted(self) -> None:
        server = self.serve(http_response(200, b"Authorization: Api-Key " + API_KEY.encode()))
        with self.assertRaises(yc_runs.MalformedResponseError) as caught:
            self.client_for(server).runs.get("r")
        self.assertNotIn(API_KEY, str(caught.exception))
        self.assertIn("not JSON", str(caught.exception))

    def test_a_malformed_stream_line_echoing_the_key_is_redacted(self) -> None:
        line = b"garbage Api-Key " + API_KEY.encode() + b"\n"
        server = self.serve(stream_handler(one_chunk(line) + b"0\r\n\r\n"))
        run = yc_runs.Run("r", _runs=self.client_for(server).runs)
        with self.assertRaises(yc_runs.StreamError) as caught:
            list(run.listen())
        self.assertNotIn(API_KEY, str(caught.exception))

    def test_an_error_line_carries_both_request_ids(self) -> None:
        line = json.dumps({"error": {"grpcCode": 3, "httpCode": 400, "message": "bad"}}).encode()
        head = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                b"x-request-id: srv-42\r\n\r\n")
        server = self.serve(stream_handler(one_chunk(line + b"\n") + b"0\r\n\r\n",
                                                head=head))
        run = yc_runs.Run("r", _runs=self.client_for(server).runs)
        with self.assertRaises(yc_runs.BadRequestError) as caught:
            list(run.listen())
        self.assertEqual(caught.exception.request_id, "srv-42")
        self.assertEqual(caught.exception.client_request_id,
                         request_header(server.requests[0], "x-client-request-id"))

    def test_a_flood_of_interim_responses_is_a_connection_error(self) -> None:
        flood = b"HTTP/1.1 100 Continue\r\n\r\n" * 5000 + json_response(200, RUN_JSON)
        server = self.serve(flood)
        with self.assertRaises(yc_runs.APIConnectionError) as caught:
            self.client_for(server).runs.get("r")
        self.assertIn("interim", str(caught.exception))

    def test_a_timestamp_out_of_range_in_utc_is_malformed(self) -> None:
        for stamp in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
            with self.assertRaises(yc_runs.MalformedResponseError):
                yc_runs._timestamp(stamp, "Run.createdAt")

    def test_sync_run_tools_refuses_an_async_function(self) -> None:
        async def get_weather(city: str) -> str:
            return city

        with yc_runs.Emulator(event_delay=0.001, implicit=True) as emu, yc_runs.Client(
                base_url=emu.url, api_key="k") as client:
            run = client.runs.create("a", "t", tools=[get_weather], additional_messages=["Oslo"])
            with self.assertRaises(TypeError) as caught:
                run.run_tools({"get_weather": get_weather}, poll_interval=0.01)
            self.assertIn("AsyncClient", str(caught.exception))
            self.assertEqual([r for r in emu.requests if r.method == "PATCH"], [])  # nothing sent

    def test_sync_listen_with_refuses_an_async_callback(self) -> None:
        async def on_event(event: Any) -> None:
            pass

        with yc_runs.Emulator(event_delay=0.001, implicit=True) as emu, yc_runs.Client(
                base_url=emu.url, api_key="k") as client:
            run = client.runs.create("a", "t", stream=True, additional_messages=["hi"])
            with self.assertRaises(TypeError):
                run.listen_with({"on_event": on_event})

    def test_the_emulator_masks_an_authorization_without_a_scheme(self) -> None:
        with yc_runs.Emulator() as emu:
            port = int(emu.url.rsplit(":", 1)[1])
            with socket.create_connection(("127.0.0.1", port), 5) as sock:
                sock.sendall(b"GET /assistants/v1/runs/x HTTP/1.1\r\nHost: h\r\n"
                             b"Authorization: RAWSECRETKEY\r\nConnection: close\r\n\r\n")
                while sock.recv(65536):
                    pass
            self.assertEqual(emu.requests[-1].headers["Authorization"], "***")

    def test_a_stream_that_timed_out_exits_4_on_the_command_line(self) -> None:
        release = self.release_event()

        def stall(conn: socket.socket, request: bytes) -> bool:
            conn.sendall(stream_head())
            release.wait(10)
            return False

        server = self.serve(stall)
        result = run_main("listen", "r", "--base-url", server.url, "--api-key", API_KEY,
                          "--timeout", "0.1", "--max-retries", "0")
        self.assertEqual(result.returncode, 4, result.stderr)
        self.assertNotIn("Traceback", result.stderr)


# ============================================================================
# Soak: many runs through faults, forked workers, trickling servers; both wires
# ============================================================================


class SoakTest(EnvTestCase):
    """N runs, each created with stream=True, listened to and finished, through random faults."""

    def check(self, label: str, emu: yc_runs.Emulator, log: LogSink, elapsed: float,
              records: List[Tuple[int, List[yc_runs.RunStreamEvent], yc_runs.RunResult, int]],
              surfaced: List[BaseException]) -> None:
        expected = reference_events()
        delivered = lost = duplicated = 0
        for i, events, result, errors in records:
            want = expected[assistant_of_run(i)]
            got = [(e.stream_cursor.current_event_idx, e.status.name, e.text or "") for e in events]
            indices = [idx for idx, _, _ in got]
            delivered += len(got)
            lost += len({idx for idx, _, _ in want} - set(indices))
            duplicated += len(indices) - len(set(indices))
            with self.subTest(run=i):
                self.assertEqual(got, want)
                self.assertEqual((result.status, result.text),
                                 (yc_runs.RunStatus.COMPLETED, want[-1][2]))
                if not errors:  # one listen call: its deltas add up to the text
                    self.assertEqual("".join(e.delta for e in events), want[-1][2])
        log.wait_for(len(emu.requests))
        per_endpoint: Dict[str, int] = {}
        for request in emu.requests:
            endpoint = endpoint_of(request)
            per_endpoint[endpoint] = per_endpoint.get(endpoint, 0) + 1
        retried = {k: v - SOAK_RUNS for k, v in sorted(per_endpoint.items())}
        statuses = log.statuses()
        print("\n[soak %s] seed %d (YC_RUNS_SOAK_SEED=%d to repeat): %.1f s\n"
              "  runs completed %d/%d, events delivered %d, lost %d, duplicated %d\n"
              "  requests %d, retried %d %s; answered 429: %d, 503: %d\n"
              "  errors surfaced to the caller: %d (malformed lines, as StreamError)"
              % (label, SOAK_SEED, SOAK_SEED, elapsed, len(records), SOAK_RUNS, delivered, lost,
                 duplicated, len(emu.requests), sum(retried.values()), retried,
                 statuses.get("429", 0), statuses.get("503", 0), len(surfaced)))
        self.assertEqual(len(records), SOAK_RUNS)
        self.assertEqual((lost, duplicated), (0, 0))
        self.assertEqual(delivered, sum(len(expected[assistant_of_run(i)]) for i in range(SOAK_RUNS)))
        for error in surfaced:
            self.assertIsInstance(error, yc_runs.StreamError)
            self.assertIn("malformed stream line", str(error))
        # only 429s hit create, and each one was retried: one more create per 429 answered
        create_429 = sum(1 for line in log.lines if line.startswith("POST ") and " 429 " in line)
        self.assertEqual(retried.get("create", 0), create_429)
        self.assertLess(elapsed, 240)

    def test_sync_soak(self) -> None:
        log = LogSink()
        emu = emulator_for_soak(SOAK_SEED, log)
        self.addCleanup(emu.stop)
        arm_faults(emu)
        client = yc_runs.Client(base_url=emu.url, api_key="k", timeout=10, max_retries=10,
                                retry_delay=SOAK_RETRY_DELAY)
        self.addCleanup(client.close)
        records = []
        surfaced: List[BaseException] = []
        started = time.monotonic()
        for i in range(SOAK_RUNS):
            run = client.runs.create(assistant_of_run(i), "soak-%d" % i,
                                     additional_messages=["m%d" % i], stream=True)
            events: List[yc_runs.RunStreamEvent] = []
            errors = 0
            while not (events and events[-1].status.is_finished):
                self.assertLess(errors, 20, "run %d: stream errors do not stop" % i)
                start = events[-1].stream_cursor.current_event_idx + 1 if events else 0
                try:
                    for event in run.listen(events_start_idx=start, timeout=SOAK_LISTEN_TIMEOUT):
                        events.append(event)
                except yc_runs.StreamError as exc:  # only a malformed line may get here
                    surfaced.append(exc)
                    errors += 1
            records.append((i, events, run.wait(poll_interval=0.01, poll_timeout=30), errors))
        self.check("sync", emu, log, time.monotonic() - started, records, surfaced)

    def test_async_soak(self) -> None:
        log = LogSink()
        emu = emulator_for_soak(SOAK_SEED, log)
        self.addCleanup(emu.stop)
        arm_faults(emu)
        records = []
        surfaced: List[BaseException] = []

        async def one(client: yc_runs.AsyncClient, i: int) -> None:
            run = await client.runs.create(assistant_of_run(i), "soak-async-%d" % i,
                                           additional_messages=["m%d" % i], stream=True)
            events: List[yc_runs.RunStreamEvent] = []
            errors = 0
            while not (events and events[-1].status.is_finished):
                self.assertLess(errors, 20, "run %d: stream errors do not stop" % i)
                start = events[-1].stream_cursor.current_event_idx + 1 if events else 0
                try:
                    async for event in run.listen(events_start_idx=start,
                                                  timeout=SOAK_LISTEN_TIMEOUT):
                        events.append(event)
                except yc_runs.StreamError as exc:
                    surfaced.append(exc)
                    errors += 1
            records.append((i, events, await run.wait(poll_interval=0.01, poll_timeout=30), errors))

        async def main() -> None:
            async with yc_runs.AsyncClient(base_url=emu.url, api_key="k", timeout=10,
                                           max_retries=10, retry_delay=SOAK_RETRY_DELAY) as client:
                for first in range(0, SOAK_RUNS, SOAK_BATCH):
                    await asyncio.gather(*(one(client, i)
                                           for i in range(first, min(SOAK_RUNS, first + SOAK_BATCH))))

        started = time.monotonic()
        asyncio.run(main())
        records.sort(key=lambda record: record[0])
        self.check("async", emu, log, time.monotonic() - started, records, surfaced)

    @unittest.skipUnless(hasattr(os, "fork"), "needs os.fork")
    def test_forked_workers_soak(self) -> None:
        """A client made (and used) before forking, as gunicorn --preload does; each worker
        runs its share of runs through the faults: 0 events lost, duplicated or misdelivered."""
        expected = reference_events()
        emu = emulator_for_soak(SOAK_SEED)
        self.addCleanup(emu.stop)
        arm_faults(emu)
        client = yc_runs.Client(base_url=emu.url, api_key="k", timeout=10, max_retries=10,
                                retry_delay=SOAK_RETRY_DELAY)
        self.addCleanup(client.close)
        client.runs.create(assistant_of_run(0), "warm")  # a pooled socket before the fork

        def work(worker: int) -> int:
            wrong = 0
            for i in range(worker, SOAK_RUNS // 2, 4):
                run = client.runs.create(assistant_of_run(i), "fork-%d" % i,
                                         additional_messages=["m%d" % i], stream=True)
                events: List[yc_runs.RunStreamEvent] = []
                for _ in range(20):
                    start = events[-1].stream_cursor.current_event_idx + 1 if events else 0
                    try:
                        events.extend(run.listen(events_start_idx=start, timeout=SOAK_LISTEN_TIMEOUT))
                    except yc_runs.StreamError:  # a malformed line: listen again from there
                        continue
                    break
                got = [(e.stream_cursor.current_event_idx, e.status.name, e.text or "") for e in events]
                wrong += got != expected[assistant_of_run(i)] or run.id != client.runs.get(run.id).id
            return wrong

        started = time.monotonic()
        pids = []
        for worker in range(1, 4):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 100
                try:
                    code = min(work(worker), 99)
                finally:
                    os._exit(code)
            pids.append(pid)
        wrong = [work(0)] + [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
                             if hasattr(os, "waitstatus_to_exitcode")
                             else os.waitpid(pid, 0)[1] >> 8 for pid in pids]
        print("\n[soak forked] seed %d: 4 processes, %d runs, %.1f s, runs with wrong events: %s"
              % (SOAK_SEED, SOAK_RUNS // 2, time.monotonic() - started, wrong))
        self.assertEqual(wrong, [0, 0, 0, 0])

    def test_trickling_server_soak(self) -> None:
        """Streams whose bytes arrive in pieces of 1 to 7 bytes, some events slower than
        listen's timeout (a stall, resumed): every event once, every text exact."""
        rng = random.Random(SOAK_SEED)
        release = threading.Event()
        self.addCleanup(release.set)
        lines = [listen_line("PARTIAL_MESSAGE", i, "Привет " * (i + 1)) for i in range(12)]
        lines.append(listen_line("DONE", 12, "Привет " * 13))
        plan_lock = threading.Lock()
        stats = {"stalls": 0, "connections": 0}

        def handler(conn: socket.socket, request: bytes) -> bool:
            start = int(request_target(request).split("eventsStartIdx=")[1])
            with plan_lock:
                stats["connections"] += 1
                seed = rng.random()
            local = random.Random(seed)
            conn.sendall(stream_head())
            for line in lines[start:]:
                data = one_chunk(line + b"\n")
                if local.random() < 0.04:  # this event stalls past listen's timeout
                    stats["stalls"] += 1
                    conn.sendall(data[:len(data) // 2])
                    release.wait(0.1)
                    return False
                pos = 0
                while pos < len(data):
                    size = local.randint(1, 7)
                    conn.sendall(data[pos:pos + size])
                    pos += size
                    if local.random() < 0.02:
                        release.wait(0.001)
            conn.sendall(b"0\r\n\r\n")
            return False

        server = RawServer(handler)
        self.addCleanup(server.close)
        client = yc_runs.Client(base_url=server.url, api_key="k", timeout=5, max_retries=20,
                                retry_delay=SOAK_RETRY_DELAY)
        self.addCleanup(client.close)
        started = time.monotonic()
        runs = SOAK_TRICKLING_RUNS
        for i in range(runs):
            events = list(yc_runs.Run("r%d" % i, _runs=client.runs).listen(timeout=0.05))
            with self.subTest(run=i):
                self.assertEqual([e.stream_cursor.current_event_idx for e in events], list(range(13)))
                self.assertEqual("".join(e.delta for e in events), "Привет " * 13)
        print("\n[soak trickling] seed %d: %d listens, %d connections, %d stalls resumed, %.1f s"
              % (SOAK_SEED, runs, stats["connections"], stats["stalls"], time.monotonic() - started))
        self.assertGreater(stats["stalls"], 0)


class ResponsesSoakTest(EnvTestCase):
    """Streamed runs on Responses through random faults: 0 events lost or duplicated."""

    def reference(self) -> Dict[str, List[Tuple[int, str, str]]]:
        expected = {}
        with emulator_for_responses_soak(1) as emu, yc_runs.Client(base_url=emu.url, api_key="k",
                                                             api="responses") as client:
            for name in RESPONSES_SOAK_SCRIPTS:
                run = client.runs.create({"id": name}, stream=True, additional_messages=["m"])
                expected[name] = [(e.stream_cursor.current_event_idx, e.status.name, e.text or "")
                                  for e in run.listen()]
        return expected

    def check(self, records: List[Tuple[int, List[yc_runs.RunStreamEvent], yc_runs.RunResult]],
              surfaced: List[BaseException]) -> None:
        expected = self.reference()
        lost = duplicated = 0
        for i, events, result in records:
            want = expected[agent_of_run(i)]
            got = [(e.stream_cursor.current_event_idx, e.status.name, e.text or "") for e in events]
            indices = [idx for idx, _, _ in got]
            lost += len({idx for idx, _, _ in want} - set(indices))
            duplicated += len(indices) - len(set(indices))
            with self.subTest(run=i):
                self.assertEqual(got, want)
                self.assertEqual((result.status, result.text),
                                 (yc_runs.RunStatus.COMPLETED, want[-1][2]))
        self.assertEqual((len(records), lost, duplicated), (SOAK_RUNS, 0, 0))
        for error in surfaced:  # only a malformed event may reach the caller
            self.assertIsInstance(error, yc_runs.StreamError)

    def test_sync_soak_on_responses(self) -> None:
        emu = emulator_for_responses_soak(SOAK_SEED)
        self.addCleanup(emu.stop)
        arm_responses_faults(emu)
        client = yc_runs.Client(base_url=emu.url, api_key="k", timeout=10, max_retries=10,
                                api="responses", retry_delay=SOAK_RETRY_DELAY)
        self.addCleanup(client.close)
        records, surfaced = [], []  # type: Tuple[List[Any], List[BaseException]]
        for i in range(SOAK_RUNS):
            run = client.runs.create({"id": agent_of_run(i)},
                                     stream=True, additional_messages=["m%d" % i])
            events: List[yc_runs.RunStreamEvent] = []
            while not (events and events[-1].status.is_finished):
                self.assertLess(len(surfaced), 50)
                start = events[-1].stream_cursor.current_event_idx + 1 if events else 0
                try:
                    events.extend(run.listen(events_start_idx=start, timeout=SOAK_LISTEN_TIMEOUT))
                except yc_runs.StreamError as exc:
                    surfaced.append(exc)
            records.append((i, events, run.wait(poll_interval=0.005, poll_timeout=30)))
        self.check(records, surfaced)

    def test_async_soak_on_responses(self) -> None:
        emu = emulator_for_responses_soak(SOAK_SEED + 1)
        self.addCleanup(emu.stop)
        arm_responses_faults(emu)
        records, surfaced = [], []  # type: Tuple[List[Any], List[BaseException]]

        async def one(client: yc_runs.AsyncClient, i: int) -> None:
            run = await client.runs.create({"id": agent_of_run(i)},
                                           stream=True, additional_messages=["m%d" % i])
            events: List[yc_runs.RunStreamEvent] = []
            while not (events and events[-1].status.is_finished):
                self.assertLess(len(surfaced), 50)
                start = events[-1].stream_cursor.current_event_idx + 1 if events else 0
                try:
                    async for event in run.listen(events_start_idx=start,
                                                  timeout=SOAK_LISTEN_TIMEOUT):
                        events.append(event)
                except yc_runs.StreamError as exc:
                    surfaced.append(exc)
            records.append((i, events, await run.wait(poll_interval=0.005, poll_timeout=30)))

        async def main() -> None:
            async with yc_runs.AsyncClient(base_url=emu.url, api_key="k", timeout=10,
                                           max_retries=10, api="responses",
                                           retry_delay=SOAK_RETRY_DELAY) as client:
                await asyncio.gather(*(one(client, i) for i in range(SOAK_RUNS)))

        asyncio.run(main())
        records.sort(key=lambda record: record[0])
        self.check(records, surfaced)


if __name__ == "__main__":
    unittest.main()
