"""One measurement in a fresh process: ``python bench/workers.py '<json spec>'``.

The spec names the benchmark (get, listen, wait, async), the client and the server;
the last stdout line is a JSON object with the numbers. Only the library under test
is imported (inside the function that uses it), so memory and thread counts belong
to that library alone. Every loop is bounded by a count and by a deadline.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

from payloads import (  # noqa: E402
    API_KEY,
    ASSISTANT_ID,
    FOLDER_ID,
    HAND_HEADERS,
    RUN_ID,
    RUNS_PATH,
    THREAD_ID,
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


def reset_peak_rss() -> bool:
    """Set VmHWM back to the current RSS (Linux >= 4.0), so the next peak is this run's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


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
        self._server0 = cpu_seconds(self.server_pid) if self.server_pid else 0.0
        self._cpu0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.wall = time.perf_counter() - self._t0
        self.cpu = time.process_time() - self._cpu0
        if self.server_pid:
            self.server_cpu = cpu_seconds(self.server_pid) - self._server0

    def result(self) -> Result:
        return {"wall": self.wall, "cpu": self.cpu, "server_cpu": self.server_cpu}


def import_yc_runs() -> Any:
    sys.path.insert(0, REPO)
    import yc_runs

    return yc_runs


def yc_client(spec: Spec) -> Any:
    yc_runs = import_yc_runs()
    return yc_runs.Client(api_key=API_KEY, folder_id=FOLDER_ID, base_url=spec["url"])


def run_url(spec: Spec, run_id: str = RUN_ID) -> str:
    return "%s%s/%s" % (spec["url"], RUNS_PATH, run_id)


def listen_path(run_id: str = RUN_ID) -> str:
    return "%s/listen?runId=%s&eventsStartIdx=0" % (RUNS_PATH, run_id)


def check_run(obj: Dict[str, Any], status: str = "COMPLETED") -> None:
    if obj["state"]["status"] != status:
        raise AssertionError("unexpected run: %r" % obj["state"])


# --- 1, 2: runs.get ---------------------------------------------------------


def get_call(spec: Spec) -> Tuple[Callable[[], Any], Callable[[Any], None]]:
    """(one GET + decode, a check of its answer) for the spec's client."""
    client = spec["client"]
    url = run_url(spec)
    if client == "yc_runs":
        yc = yc_client(spec)

        def check(run: Any) -> None:
            assert run.status.name == "COMPLETED" and run.result.text.startswith("\u0421"), run

        return (lambda: yc.runs.get(RUN_ID)), check
    if client == "httpx":
        import httpx

        hx = httpx.Client(headers=HAND_HEADERS)

        def httpx_get() -> Any:
            response = hx.get(url)
            if response.status_code != 200:
                raise RuntimeError("HTTP %d" % response.status_code)
            return json.loads(response.content)

        return httpx_get, check_run
    if client == "requests":
        import requests

        session = requests.Session()
        session.headers.update(HAND_HEADERS)

        def requests_get() -> Any:
            response = session.get(url)
            if response.status_code != 200:
                raise RuntimeError("HTTP %d" % response.status_code)
            return json.loads(response.content)

        return requests_get, check_run
    if client == "urllib":
        import urllib.request

        def urllib_get() -> Any:
            with urllib.request.urlopen(urllib.request.Request(url, headers=HAND_HEADERS)) as r:
                return json.loads(r.read())

        return urllib_get, check_run
    raise ValueError("unknown client %r" % client)


def bench_get(spec: Spec) -> Result:
    call, check = get_call(spec)
    threads = int(spec["threads"])
    duration = float(spec["duration"])
    per_thread_cap = int(spec["max_calls"]) // threads
    warmup = int(spec["warmup_calls"])
    counts = [0] * threads
    errors: List[BaseException] = []
    barrier = threading.Barrier(threads + 1, timeout=60)

    def worker(index: int) -> None:
        try:
            for _ in range(warmup):
                check(call())
            barrier.wait()
            deadline = time.perf_counter() + duration
            n = 0
            while n < per_thread_cap and time.perf_counter() < deadline:
                call()
                n += 1
            counts[index] = n
        except BaseException as exc:  # reported, and the measurement fails
            errors.append(exc)
            barrier.abort()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    with Window(spec["server_pid"]) as window:
        for thread in pool:
            thread.join(duration + 60)
    if errors:
        raise errors[0]
    calls = sum(counts)
    return dict(window.result(), calls=calls, rate=calls / window.wall)


# --- 3: listen to a 10,000-event stream --------------------------------------


def bench_listen(spec: Spec) -> Result:
    client = spec["client"]
    count = 0
    last: Any = None
    if client == "yc_runs":
        yc = yc_client(spec)
        run = yc.runs.get(RUN_ID)  # the same keep-alive connection serves the stream
        reset_peak_rss()
        before = proc_status()
        with Window(spec["server_pid"]) as window:
            for event in run.listen(timeout=30):
                count += 1
                last = event
        kind = last.status.name
    elif client == "httpx":
        import httpx

        hx = httpx.Client(headers=HAND_HEADERS, timeout=30)
        check_run(json.loads(hx.get(run_url(spec)).content))
        reset_peak_rss()
        before = proc_status()
        with Window(spec["server_pid"]) as window, \
                hx.stream("GET", spec["url"] + listen_path()) as response:
            for line in response.iter_lines():
                if line:
                    last = json.loads(line)
                    count += 1
        kind = last["result"]["eventType"]
    elif client == "http.client":
        import http.client

        conn = http.client.HTTPConnection(spec["host"], spec["port"], timeout=30)
        conn.request("GET", "%s/%s" % (RUNS_PATH, RUN_ID), headers=HAND_HEADERS)
        check_run(json.loads(conn.getresponse().read()))
        reset_peak_rss()
        before = proc_status()
        with Window(spec["server_pid"]) as window:
            conn.request("GET", listen_path(), headers=HAND_HEADERS)
            response = conn.getresponse()
            for raw in response:
                if raw.strip():
                    last = json.loads(raw)
                    count += 1
        kind = last["result"]["eventType"]
    else:
        raise ValueError("unknown client %r" % client)
    after = proc_status()
    if count != spec["events"] or kind != "DONE":
        raise AssertionError("got %d events ending in %s, expected %d ending in DONE"
                             % (count, kind, spec["events"]))
    return dict(window.result(), events=count, rate=count / window.wall,
                rss_before_kb=before["VmRSS"], hwm_kb=after["VmHWM"],
                rss_growth_kb=after["VmHWM"] - before["VmRSS"])


# --- 4: wait, 50 polls --------------------------------------------------------


def bench_wait(spec: Spec) -> Result:
    client = spec["client"]
    run_id = spec["run_id"]
    interval = float(spec["poll_interval"])
    max_polls = int(spec["max_polls"])
    polls = 0
    with Window(spec["server_pid"]) as window:
        if client == "yc_runs":
            yc = yc_client(spec)
            run = yc.runs.get(run_id)
            result = run.wait(poll_interval=interval, poll_timeout=60)
            status = result.status.name
            polls = -1  # counted by the server
        else:
            url = run_url(spec, run_id)
            if client == "urllib":
                import urllib.request

                def poll() -> Any:
                    request = urllib.request.Request(url, headers=HAND_HEADERS)
                    with urllib.request.urlopen(request, timeout=30) as r:
                        return json.loads(r.read())
            elif client == "httpx":
                import httpx

                hx = httpx.Client(headers=HAND_HEADERS)

                def poll() -> Any:
                    return json.loads(hx.get(url).content)
            elif client == "requests":
                import requests

                session = requests.Session()
                session.headers.update(HAND_HEADERS)

                def poll() -> Any:
                    return json.loads(session.get(url).content)
            else:
                raise ValueError("unknown client %r" % client)
            status = "IN_PROGRESS"
            while polls < max_polls:
                polls += 1
                status = poll()["state"]["status"]
                if status == "COMPLETED":
                    break
                time.sleep(interval)
    if status != "COMPLETED":
        raise AssertionError("the run ended %s" % status)
    return dict(window.result(), polls=polls)


# --- 7: 1,000 concurrent runs --------------------------------------------------


CREATE_BODY = {"assistantId": ASSISTANT_ID, "threadId": THREAD_ID, "stream": True,
               "additionalMessages": [{"content": {"content": [{"text": {"content": "Hello!"}}]}}]}


async def _yc_async(spec: Spec, runs: int) -> int:
    import asyncio

    yc_runs = import_yc_runs()
    async with yc_runs.AsyncClient(api_key=API_KEY, folder_id=FOLDER_ID,
                                   base_url=spec["url"]) as client:
        async def one() -> int:
            run = await client.runs.create(ASSISTANT_ID, THREAD_ID, stream=True,
                                           additional_messages=["Hello!"])
            n = 0
            async for _event in run.listen(timeout=60):
                n += 1
            final = await run.refresh()
            assert final.status.name == "COMPLETED"
            return n

        counts = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(runs))),
                                        spec["deadline"])
    return sum(counts)


async def _httpx_async(spec: Spec, runs: int) -> int:
    import asyncio

    import httpx

    # No connection cap, httpx's default keep-alive count: its fastest setting for this load
    # (the default cap of 100 queues 900 runs: ~20x slower; 64 kept alive: ~3x slower).
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
    async with httpx.AsyncClient(base_url=spec["url"], headers=HAND_HEADERS, limits=limits,
                                 timeout=60) as client:
        async def one() -> int:
            created = await client.post(RUNS_PATH, json=CREATE_BODY)
            run_id = json.loads(created.content)["id"]
            n = 0
            async with client.stream("GET", listen_path(run_id)) as response:
                async for line in response.aiter_lines():
                    if line:
                        json.loads(line)
                        n += 1
            final = await client.get("%s/%s" % (RUNS_PATH, run_id))
            check_run(json.loads(final.content))
            return n

        counts = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(runs))),
                                        spec["deadline"])
    return sum(counts)


def _yc_threads(spec: Spec, runs: int) -> int:
    from concurrent.futures import ThreadPoolExecutor

    client = yc_client(spec)

    def one(_: int) -> int:
        run = client.runs.create(ASSISTANT_ID, THREAD_ID, stream=True,
                                 additional_messages=["Hello!"])
        n = sum(1 for _event in run.listen(timeout=60))
        assert run.refresh().status.name == "COMPLETED"
        return n

    with ThreadPoolExecutor(max_workers=int(spec["workers"])) as pool:
        total = sum(pool.map(one, range(runs), timeout=spec["deadline"]))
    client.close()
    return total


def bench_async(spec: Spec) -> Result:
    import asyncio

    client = spec["client"]
    runs = int(spec["runs"])
    if client == "yc_runs":
        import_yc_runs()
    elif client == "httpx":
        import httpx  # noqa: F401
    reset_peak_rss()
    before = proc_status()
    with Window(spec["server_pid"]) as window:
        if client == "yc_runs":
            events = asyncio.run(_yc_async(spec, runs))
        elif client == "httpx":
            events = asyncio.run(_httpx_async(spec, runs))
        elif client == "yc_runs_threads":
            events = _yc_threads(spec, runs)
        else:
            raise ValueError("unknown client %r" % client)
    after = proc_status()
    if events != runs * spec["events"]:
        raise AssertionError("got %d events, expected %d" % (events, runs * spec["events"]))
    return dict(window.result(), events=events, rss_before_kb=before["VmRSS"],
                hwm_kb=after["VmHWM"], rss_growth_kb=after["VmHWM"] - before["VmRSS"],
                threads_end=after["Threads"])


BENCHES: Dict[str, Callable[[Spec], Result]] = {
    "get": bench_get, "listen": bench_listen, "wait": bench_wait, "async": bench_async,
}


def main(argv: Optional[List[str]] = None) -> None:
    spec: Spec = json.loads((argv or sys.argv[1:])[0])
    result = BENCHES[spec["bench"]](spec)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
