"""Where yc_runs spends its time: ``python3 bench/run.py --profile listen|get|import``.

Runs inside the bench venv (run.py re-executes itself there first). For listen and get it
starts the same prebuilt-bytes server as the benchmark, times yc_runs without a profiler,
splits the per-event / per-call cost into stages with micro-benchmarks of yc_runs'
internal functions (named in the output; skipped if a name has changed), then shows the
cProfile top functions with their per-call cost. For import it lists the slowest
imports under ``import yc_runs`` and what the module body spends on building classes.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, Dict, List

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)
sys.path.insert(0, REPO)

import payloads  # noqa: E402


def per_item_us(function: Callable[[], int], repeat: int = 5) -> float:
    """Median over ``repeat`` runs of µs per item; ``function`` returns how many items it did."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        count = function()
        samples.append((time.perf_counter() - start) * 1e6 / max(count, 1))
    return statistics.median(samples)


def top(profile: cProfile.Profile, items: int, per: int, what: str) -> str:
    stats = pstats.Stats(profile)
    rows = []
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in \
            stats.stats.items():  # type: ignore[attr-defined]
        rows.append((tottime, calls, cumtime, "%s:%d(%s)" % (os.path.basename(filename), line,
                                                            name)))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    out = ["  %-58s %9s %10s %10s %12s" % ("function (by own time)", "calls", "own ms",
                                          "own µs/call", "own µs/" + what)]
    for tottime, calls, _cumtime, where in rows[:items]:
        out.append("  %-58s %9d %10.1f %10.2f %12.2f" % (where[:58], calls, tottime * 1e3,
                                                       tottime * 1e6 / calls, tottime * 1e6 / per))
    out.append("  (profiled total %.1f ms = %.2f µs/%s; cProfile inflates small calls)"
               % (total * 1e3, total * 1e6 / per, what))
    return "\n".join(out)


def _client(url: str, wire: str) -> Any:
    import yc_runs

    return yc_runs.Client(api_key=payloads.API_KEY, folder_id=payloads.FOLDER_ID, base_url=url,
                          api=wire)


def _ids(wire: str) -> str:
    return payloads.RESPONSE_ID if wire == "responses" else payloads.RUN_ID


def profile_listen(url: str, port: int, wire: str) -> None:
    import workers

    spec = {"url": url, "port": port, "wire": wire}
    hand = workers.http_client_sse if wire == "responses" else workers.http_client_ndjson

    def listen_once() -> int:
        with _client(url, wire) as client:
            return sum(1 for _ in client.runs.get(_ids(wire)).listen())

    def hand_once() -> int:
        events = hand(spec)
        next(events)
        return sum(1 for _ in events)

    yc = per_item_us(listen_once)
    loop = per_item_us(hand_once)
    print("listen on %s, %d events, one process, no profiler:" % (wire, listen_once()))
    print("  yc_runs Run.listen()          %6.2f µs/event" % yc)
    print("  hand http.client loop         %6.2f µs/event" % loop)
    with _client(url, wire) as client:
        run = client.runs.get(_ids(wire))
        profile = cProfile.Profile()
        profile.enable()
        count = sum(1 for _ in run.listen())
        profile.disable()
    print("cProfile of one listen on %s (%d events):" % (wire, count))
    print(top(profile, 22, count, "event"))


def profile_get(url: str, port: int, wire: str) -> None:
    calls = 3000
    client = _client(url, wire)

    def gets() -> int:
        for _ in range(calls):
            client.runs.get(_ids(wire))
        return calls

    gets()
    print("runs.get on %s, one thread, keep-alive (no profiler): %.1f µs/call"
          % (wire, per_item_us(gets)))
    profile = cProfile.Profile()
    profile.enable()
    gets()
    profile.disable()
    print("cProfile of %d runs.get calls:" % calls)
    print(top(profile, 22, calls, "call"))


def _answer_one(listener: Any, served: List[Any], data: bytes) -> None:
    """One request on the probe's connection (accepted first), answered with ``data``; run
    by a thread: the GET, and the listen (a pooled connection with bytes already waiting
    would be stale)."""
    import socket

    if not served:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        served.append(conn)
    request = b""
    while b"\r\n\r\n" not in request:
        request += served[0].recv(65536)
    served[0].sendall(data)


def profile_latency(wire: str, rounds: int = 40, events: int = 60) -> None:
    """The part of the paced-stream latency a client owns, without the scheduler's wake-up:
    each event is written into the client's socket before the client is asked for it, so
    the time to get it is the read, the de-chunking, the decoding and the layers between,
    and nothing waits. yc_runs vs the hand http.client loop, medians of interleaved rounds.
    On Responses the 4 opening and 4 closing SSE events (which yc_runs does not hand on)
    go with the first and the last delta."""
    import socket
    import threading

    import workers

    head = payloads.SSE_HEAD if wire == "responses" else payloads.STREAM_HEAD
    lines = payloads.sse_events(events) if wire == "responses" else payloads.stream_lines(events)
    pieces = [payloads.chunk(line) for line in lines]
    pieces[-1] += payloads.STREAM_END  # as the paced server writes it
    framing = 4 if wire == "responses" else 0
    groups = [pieces[:framing + 1]] + [[p] for p in pieces[framing + 1:len(pieces) - framing - 1]] \
        + [pieces[len(pieces) - framing - 1:]]  # the last: the DONE, or the closing events
    get = payloads.get_response() if wire == "responses" else payloads.get_completed()
    clients = {"yc_runs": (workers.yc_runs_listen, False),
               "http.client": (workers.http_client_sse if wire == "responses"
                               else workers.http_client_ndjson, True)}
    each: Dict[str, List[float]] = {name: [] for name in clients}
    last: Dict[str, List[float]] = {name: [] for name in clients}
    for _ in range(rounds):
        for name, (adapter, every_event) in clients.items():
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            port = listener.getsockname()[1]
            served: List[Any] = []

            stream = adapter({"url": "http://127.0.0.1:%d" % port, "port": port, "wire": wire})
            for data, asks in ((get, 1), (head + b"".join(groups[0]),
                                          len(groups[0]) if every_event else 1)):
                helper = threading.Thread(target=_answer_one, args=(listener, served, data))
                helper.start()
                for _ in range(asks):
                    next(stream)
                helper.join()
            conn = served[0]
            times = []
            clock = time.perf_counter
            for group in groups[1:]:
                conn.sendall(b"".join(group))  # in the client's socket before it asks
                start = clock()
                for _ in range(len(group) if every_event else 1):
                    next(stream)
                times.append(clock() - start)
            stream.close()
            conn.close()
            listener.close()
            each[name].append(statistics.median(times[:-1]))
            last[name].append(times[-1])
    print("read-to-event on %s, %d events a stream, %d interleaved rounds (the event in the "
          "socket before the ask: nothing waits):" % (wire, events, rounds))
    for name in clients:
        print("  %-12s median event %6.2f µs   the final event %6.2f µs" % (
            name, statistics.median(each[name]) * 1e6, statistics.median(last[name]) * 1e6))


def profile_import() -> None:
    env = dict(os.environ, PYTHONPYCACHEPREFIX=os.path.join(sys.prefix, "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    runs: List[List[Any]] = []
    for _ in range(7):
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import yc_runs"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        entries = []
        for line in done.stderr.splitlines():
            fields = line[len("import time:"):].split("|")
            if len(fields) == 3 and fields[0].strip().isdigit():
                entries.append((fields[2].rstrip(), int(fields[0]), int(fields[1])))
        runs.append(entries)
    last = runs[-1]
    names = [name for name, _, _ in last]
    start = max(i for i, name in enumerate(names) if name.strip() == "site") + 1
    print("python -X importtime -c 'import yc_runs' (bytecode cached), median of 7, imports "
          "after interpreter startup, by own time:")
    table = []
    for i in range(start, len(last)):
        own = statistics.median(r[i][1] for r in runs if len(r) == len(last))
        cumulative = statistics.median(r[i][2] for r in runs if len(r) == len(last))
        table.append((own, cumulative, last[i][0]))
    for own, cumulative, name in sorted(table, reverse=True)[:15]:
        print("  %-32s own %6.1f ms  cumulative %6.1f ms" % (name.strip(), own / 1e3,
                                                            cumulative / 1e3))
    probe = (
        "import time\n"
        "import enum, json, os, re, socket, sys, threading, datetime, typing\n"
        "t0 = time.perf_counter(); import inspect; t1 = time.perf_counter()\n"
        "import dataclasses; t2 = time.perf_counter()\n"
        "t3 = time.perf_counter(); import yc_runs\n"
        "t4 = time.perf_counter()\n"
        "print('  inspect (imported only by dataclasses): %.1f ms' % ((t1 - t0) * 1e3))\n"
        "print('  dataclasses module itself:              %.1f ms' % ((t2 - t1) * 1e3))\n"
        "print('  yc_runs module body, deps preloaded:    %.1f ms' % ((t4 - t3) * 1e3))\n"
        "n = sum(1 for v in vars(yc_runs).values() if isinstance(v, type) and "
        "hasattr(v, '__dataclass_fields__') and v.__module__ == 'yc_runs')\n"
        "from dataclasses import dataclass, field\n"
        "from typing import Dict, Optional, Tuple\n"
        "t5 = time.perf_counter()\n"
        "for i in range(n):\n"
        "    @dataclass(frozen=True)\n"
        "    class X:\n"
        "        a: str = ''\n"
        "        b: Optional[int] = None\n"
        "        c: Dict[str, str] = field(default_factory=dict)\n"
        "        d: Tuple[str, ...] = ()\n"
        "t6 = time.perf_counter()\n"
        "print('  of which %d frozen @dataclass classes:   ~%.1f ms (%.2f ms each, measured on a "
        "4-field class)' % (n, (t6 - t5) * 1e3, (t6 - t5) * 1e3 / n))\n"
    )
    print("the module body and its dataclasses (one process, deps imported first):")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=60)
    print(done.stdout + done.stderr, end="")
