"""One measurement in a fresh process: ``python bench/workers.py '<json spec>'``.

The spec names the benchmark (get, listen, async), the wire, the client and the server;
the last stdout line is a JSON object with the numbers. Only the library under test is
imported (inside its adapter), so memory and thread counts belong to that library alone.
Every client is one adapter in a table keyed by (wire, client): the benchmarks never ask
which client runs.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
from typing import Any, Awaitable, Callable, Dict, Iterator, List, Optional, Tuple

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

from payloads import (  # noqa: E402
    API_KEY,
    FOLDER_ID,
    HAND_HEADERS,
    RESPONSE_ID,
    RESPONSES_PATH,
    RUN_ID,
    RUNS_PATH,
)

Spec = Dict[str, Any]
Result = Dict[str, Any]
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- process facts -----------------------------------------------------------


def proc_status(pid: str = "self") -> Dict[str, int]:
    """VmRSS, VmHWM (kB) and Threads from /proc/<pid>/status."""
    out: Dict[str, int] = {}
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "Threads"):
                out[name] = int(value.split()[0])
    return out


def reset_peak_rss() -> None:
    """Set VmHWM back to the current RSS (Linux >= 4.0), so the next peak is this run's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def cpu_seconds(pid: int) -> float:
    """utime + stime of another process, from /proc/<pid>/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Window:
    """The timed part of a measurement: wall, this process's CPU, the server's CPU."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.wall = self.cpu = self.server_cpu = 0.0

    def __enter__(self) -> "Window":
        self._server0 = cpu_seconds(self.server_pid)
        self._cpu0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self._t0
        self.cpu = time.process_time() - self._cpu0
        self.server_cpu = cpu_seconds(self.server_pid) - self._server0

    def result(self) -> Result:
        return {"wall": self.wall, "cpu": self.cpu, "server_cpu": self.server_cpu}


def yc_runs_module() -> Any:
    sys.path.insert(0, REPO)
    import yc_runs

    return yc_runs


def stream_path(wire: str) -> str:
    if wire == "responses":
        return "%s/%s?stream=true&starting_after=0" % (RESPONSES_PATH, RESPONSE_ID)
    return "%s/listen?runId=%s&eventsStartIdx=0" % (RUNS_PATH, RUN_ID)


def get_path(wire: str) -> str:
    return "%s/%s" % ((RESPONSES_PATH, RESPONSE_ID) if wire == "responses" else (RUNS_PATH, RUN_ID))


def run_id(wire: str) -> str:
    return RESPONSE_ID if wire == "responses" else RUN_ID


# --- sync adapters: a GET on the keep-alive connection, None (ready), then each event -------


def yc_runs_listen(spec: Spec) -> Iterator[Any]:
    yc = yc_runs_module().Client(api_key=API_KEY, folder_id=FOLDER_ID, base_url=spec["url"],
                                 api=spec["wire"])
    run = yc.runs.get(run_id(spec["wire"]))
    yield None
    yield from run.listen(timeout=30)


def httpx_listen(spec: Spec) -> Iterator[Any]:
    import httpx

    hx = httpx.Client(headers=HAND_HEADERS, timeout=30)
    json.loads(hx.get(spec["url"] + get_path(spec["wire"])).content)
    yield None
    with hx.stream("GET", spec["url"] + stream_path(spec["wire"])) as response:
        for line in response.iter_lines():
            if line:
                yield json.loads(line)


def http_client_ndjson(spec: Spec) -> Iterator[Any]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=30)
    conn.request("GET", get_path(spec["wire"]), headers=HAND_HEADERS)
    json.loads(conn.getresponse().read())
    yield None
    conn.request("GET", stream_path(spec["wire"]), headers=HAND_HEADERS)
    for line in conn.getresponse():
        if line.strip():
            yield json.loads(line)


def openai_listen(spec: Spec) -> Iterator[Any]:
    import openai

    client = openai.OpenAI(api_key=API_KEY, base_url=spec["url"] + "/v1", max_retries=0,
                           timeout=30)
    client.responses.retrieve(RESPONSE_ID)
    yield None
    yield from client.responses.retrieve(RESPONSE_ID, stream=True)


def http_client_sse(spec: Spec) -> Iterator[Any]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=30)
    conn.request("GET", get_path(spec["wire"]), headers=HAND_HEADERS)
    json.loads(conn.getresponse().read())
    yield None
    conn.request("GET", stream_path(spec["wire"]), headers=dict(HAND_HEADERS,
                                                                Accept="text/event-stream"))
    data: List[bytes] = []
    for line in conn.getresponse():
        line = line.rstrip(b"\r\n")
        if not line:
            if data:
                yield json.loads(b"\n".join(data))
                data = []
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))


def in_order(event: Any, count: int) -> int:
    return count


def cursor_from_0(event: Any, count: int) -> int:
    return int(event.stream_cursor.current_event_idx)


def cursor_from_1(event: Any, count: int) -> int:
    return int(event.stream_cursor.current_event_idx) - 1  # a sequence_number counts from 1


Position = Callable[[Any, int], int]  # which of the server's writes (one per event) carried it

LISTEN: Dict[Tuple[str, str], Tuple[Callable[[Spec], Iterator[Any]], Position]] = {
    ("assistants", "yc_runs"): (yc_runs_listen, cursor_from_0),
    ("assistants", "httpx"): (httpx_listen, in_order),
    ("assistants", "http.client"): (http_client_ndjson, in_order),
    ("responses", "yc_runs"): (yc_runs_listen, cursor_from_1),
    ("responses", "openai"): (openai_listen, in_order),
    ("responses", "http.client"): (http_client_sse, in_order),
}


def bench_listen(spec: Spec) -> Result:
    adapter, position = LISTEN[(spec["wire"], spec["client"])]
    events = adapter(spec)
    next(events)
    if "gc_phase" in spec:
        # A fresh process allocates the same objects up to here every time, so a garbage
        # collection would fall on the same event in every round (or in none): each round
        # starts from its own point of the collector's cycle, the same for both clients:
        # `young` allocations into the young generation's count, `middle` young collections
        # into the middle one's (every gc.get_threshold()[1]-th young collection is one).
        young, middle = spec["gc_phase"]
        gc.collect()
        for _ in range(middle):
            gc.collect(0)
        kept = [[] for _ in range(young)]  # noqa: F841 - alive until the end
    if spec.get("go"):  # started with another client: listen when the parent says both are ready
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.readline()
    times: List[Tuple[int, float]] = []
    count = 0
    clock = time.monotonic
    reset_peak_rss()
    before = proc_status()
    with Window(spec["server_pid"]) as window:
        if spec.get("latency"):
            for event in events:
                now = clock()  # before the position: reading a cursor is not the client's time
                times.append((position(event, count), now))
                count += 1
        else:
            for _event in events:
                count += 1
    after = proc_status()
    time.sleep(spec.get("linger", 0))  # a client listening at the same time goes on undisturbed
    return dict(window.result(), count=count, times=times,
                rss_growth_kb=after["VmHWM"] - before["VmRSS"])


def yc_runs_get(spec: Spec) -> Callable[[], Any]:
    wire = spec["wire"]
    yc = yc_runs_module().Client(api_key=API_KEY, folder_id=FOLDER_ID, base_url=spec["url"],
                                 api=wire)
    return lambda: yc.runs.get(run_id(wire))


def httpx_get(spec: Spec) -> Callable[[], Any]:
    import httpx

    hx = httpx.Client(headers=HAND_HEADERS)
    url = spec["url"] + get_path(spec["wire"])
    return lambda: json.loads(hx.get(url).content)


GET_CALLS: Dict[str, Callable[[Spec], Callable[[], Any]]] = {
    "yc_runs": yc_runs_get, "httpx": httpx_get}


def get_call(spec: Spec) -> Callable[[], Any]:
    return GET_CALLS[spec["client"]](spec)


def bench_get(spec: Spec) -> Result:
    call = get_call(spec)
    for _ in range(200):
        call()
    calls = 0
    with Window(spec["server_pid"]) as window:
        deadline = time.perf_counter() + spec["duration"]
        while time.perf_counter() < deadline:
            call()
            calls += 1
    return dict(window.result(), calls=calls)


# --- async adapters: 1,000 concurrent streams, each counted --------------------------------


async def yc_runs_many(spec: Spec, runs: int) -> List[int]:
    import asyncio

    async with yc_runs_module().AsyncClient(api_key=API_KEY, folder_id=FOLDER_ID,
                                            base_url=spec["url"], api=spec["wire"]) as client:
        run = await client.runs.get(run_id(spec["wire"]))

        async def one() -> int:
            return sum([1 async for _event in run.listen(timeout=60)])

        return await asyncio.gather(*(one() for _ in range(runs)))


def _lines_to_events(wire: str) -> Callable[[bytes, List[bytes]], int]:
    """Events in one line (NDJSON: the line; SSE: data lines, dispatched on a blank line)."""
    if wire == "assistants":
        def ndjson(line: bytes, data: List[bytes]) -> int:
            if line.strip():
                json.loads(line)
                return 1
            return 0
        return ndjson

    def sse(line: bytes, data: List[bytes]) -> int:
        line = line.rstrip(b"\r\n")
        if not line:
            if data:
                json.loads(b"\n".join(data))
                data.clear()
                return 1
        elif line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        return 0
    return sse


async def aiohttp_many(spec: Spec, runs: int) -> List[int]:
    import asyncio

    import aiohttp

    event_of = _lines_to_events(spec["wire"])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     headers=HAND_HEADERS) as session:
        async with session.get(spec["url"] + get_path(spec["wire"])) as response:
            json.loads(await response.read())

        async def one() -> int:
            n = 0
            data: List[bytes] = []
            async with session.get(spec["url"] + stream_path(spec["wire"])) as response:
                async for line in response.content:
                    n += event_of(line, data)
            return n

        return await asyncio.gather(*(one() for _ in range(runs)))


async def httpx_many(spec: Spec, runs: int) -> List[int]:
    import asyncio

    import httpx

    event_of = _lines_to_events(spec["wire"])
    # no connection cap, httpx's default keep-alive count: its fastest setting for this load
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
    async with httpx.AsyncClient(base_url=spec["url"], headers=HAND_HEADERS, limits=limits,
                                 timeout=60) as client:
        json.loads((await client.get(get_path(spec["wire"]))).content)

        async def one() -> int:
            n = 0
            data: List[bytes] = []
            async with client.stream("GET", stream_path(spec["wire"])) as response:
                async for line in response.aiter_lines():
                    n += event_of(line.encode(), data)
            return n

        return await asyncio.gather(*(one() for _ in range(runs)))


async def hand_many(spec: Spec, runs: int) -> List[int]:
    """asyncio.open_connection, the chunked body by hand, lines split by hand."""
    import asyncio

    event_of = _lines_to_events(spec["wire"])
    request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n" % (
        stream_path(spec["wire"]), "".join("%s: %s\r\n" % kv for kv in HAND_HEADERS.items()))
    ).encode()

    async def one() -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", spec["port"])
        writer.write(request)
        await reader.readuntil(b"\r\n\r\n")
        n = 0
        data: List[bytes] = []
        pending = b""
        while True:
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                break
            lines = (pending + (await reader.readexactly(size + 2))[:-2]).split(b"\n")
            pending = lines.pop()
            for line in lines:
                n += event_of(line, data)
        writer.close()
        return n

    return await asyncio.gather(*(one() for _ in range(runs)))


ASYNC: Dict[str, Callable[[Spec, int], Awaitable[List[int]]]] = {
    "yc_runs": yc_runs_many, "aiohttp": aiohttp_many, "httpx": httpx_many,
    "asyncio": hand_many,
}


def bench_async(spec: Spec) -> Result:
    import asyncio

    many = ASYNC[spec["client"]]
    with Window(spec["server_pid"]) as window:
        counts = asyncio.run(many(spec, int(spec["runs"])))
    return dict(window.result(), count=sum(counts), threads_end=proc_status()["Threads"])


BENCHES: Dict[str, Callable[[Spec], Result]] = {
    "get": bench_get, "listen": bench_listen, "async": bench_async,
}


def main(argv: Optional[List[str]] = None) -> None:
    spec: Spec = json.loads((argv or sys.argv[1:])[0])
    result = BENCHES[spec["bench"]](spec)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

