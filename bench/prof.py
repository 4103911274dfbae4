"""Where yc_runs spends its time: ``python3 bench/run.py --profile listen|get|import``.

Runs inside bench/.venv (run.py re-executes itself there first). For listen and get it
starts the same prebuilt-bytes server as the benchmark, times yc_runs without a profiler,
splits the per-event / per-call cost into stages with micro-benchmarks of yc_runs'
internal functions (named in the output; skipped if a name has changed), then shows the
cProfile top functions with their per-call cost. For import it lists the slowest
imports under ``import yc_runs`` and what the module body spends on building classes.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import time
from typing import Any, Callable, List

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


def profile_listen(url: str, port: int) -> None:
    import http.client

    import yc_runs

    events = 10_000

    def listen_once() -> int:
        with yc_runs.Client(api_key=payloads.API_KEY, base_url=url) as client:
            run = client.runs.get(payloads.RUN_ID)
            return sum(1 for _ in run.listen())

    def hand_once() -> int:
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/assistants/v1/runs/listen?runId=x", headers=payloads.HAND_HEADERS)
        n = 0
        for raw in conn.getresponse():
            if raw.strip():
                json.loads(raw)
                n += 1
        conn.close()
        return n

    print("listen, 10,000 events, in one process (no profiler):")
    yc = per_item_us(listen_once)
    hand = per_item_us(hand_once)
    print("  yc_runs Run.listen()                     %6.2f µs/event" % yc)
    print("  http.client for-line + json.loads        %6.2f µs/event" % hand)
    lines = payloads.stream_lines(events)
    objs = [json.loads(line)["result"] for line in lines]
    print("stages, micro-benchmarked on the same 10,000 lines:")
    def loads_all() -> int:
        for line in lines:
            json.loads(line)
        return len(lines)

    print("  json.loads(line)                         %6.2f µs/event" % per_item_us(loads_all))
    decode = getattr(yc_runs, "_decode_stream_event", None)
    if decode is not None:
        def decode_all() -> int:
            previous = ""
            for obj in objs:
                event = decode(obj, previous)
                message = event.completed_message or event.partial_message
                previous = message.text if message is not None else previous
            return len(objs)

        print("  yc_runs._decode_stream_event(obj)        %6.2f µs/event" % per_item_us(decode_all))
    message_cls = getattr(yc_runs, "Message", None)
    event_cls = getattr(yc_runs, "RunStreamEvent", None)
    if message_cls is not None and event_cls is not None:
        status = yc_runs.StreamEvent.PARTIAL_MESSAGE
        cursor = yc_runs.StreamCursor(1, 1)
        def build(make: Callable[[], Any]) -> Callable[[], int]:
            def run() -> int:
                for _ in range(events):
                    make()
                return events
            return run

        print("    of which Message(parts=...)            %6.2f µs/event" % per_item_us(
            build(lambda: message_cls(parts=("x",)))))
        print("    of which RunStreamEvent(9 fields)      %6.2f µs/event" % per_item_us(
            build(lambda: event_cls(status, None, (), None, cursor, None, None, "", False))))
        print("    of which StreamCursor(2 fields)        %6.2f µs/event" % per_item_us(
            build(lambda: yc_runs.StreamCursor(1, 1))))
    state_cls = getattr(yc_runs, "_ListenState", None)
    if state_cls is not None:
        body = b"".join(lines)
        pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]

        def feeder(chunks: List[bytes]) -> Callable[[], int]:
            def feed_all() -> int:
                state = state_cls("run", 0, 0, False)
                return sum(1 for piece in chunks for _ in state.feed(piece))
            return feed_all

        print("  yc_runs._ListenState.feed, 64 KiB pieces    %6.2f µs/event  (split+loads+decode)"
              % per_item_us(feeder(pieces)))
        print("  yc_runs._ListenState.feed, 1 piece/event    %6.2f µs/event  (as the transport "
              "delivers them)" % per_item_us(feeder(lines)))
        timeout_cls: Any = getattr(yc_runs, "_Timeout", None)
        pieces_seen: List[int] = []

        def transport_only() -> int:
            with yc_runs.Client(api_key=payloads.API_KEY, base_url=url) as client:
                state = state_cls("run", 0, 0, False)
                stream = client._stream(state.request(), timeout_cls(30))
                pieces_seen.append(sum(1 for _ in stream))
            return events

        if timeout_cls is not None and hasattr(yc_runs.Client, "_stream"):
            us = per_item_us(transport_only)
            print("  Client._stream alone (socket, chunk parsing, 2 generator layers) %6.2f "
                  "µs/event, %d body pieces for %d events"
                  % (us, pieces_seen[-1], events))
    with yc_runs.Client(api_key=payloads.API_KEY, base_url=url) as client:
        run = client.runs.get(payloads.RUN_ID)
        profile = cProfile.Profile()
        profile.enable()
        count = sum(1 for _ in run.listen())
        profile.disable()
    print("cProfile of one listen (%d events):" % count)
    print(top(profile, 22, count, "event"))


def profile_get(url: str) -> None:
    import yc_runs

    calls = 3000
    client = yc_runs.Client(api_key=payloads.API_KEY, folder_id=payloads.FOLDER_ID, base_url=url)

    def gets() -> int:
        for _ in range(calls):
            client.runs.get(payloads.RUN_ID)
        return calls

    gets()
    print("runs.get, one thread, keep-alive (no profiler): %.1f µs/call" % per_item_us(gets))
    body = json.dumps(payloads.completed_run(), ensure_ascii=False).encode()
    obj = json.loads(body)
    def loads_all() -> int:
        for _ in range(calls):
            json.loads(body)
        return calls

    print("  json.loads(body)                       %6.2f µs" % per_item_us(loads_all))
    decode = getattr(yc_runs, "_decode_run", None)
    if decode is not None:
        def decode_all() -> int:
            for _ in range(calls):
                decode(obj, yc_runs.Run, None)
            return calls

        print("  yc_runs._decode_run(obj)               %6.2f µs" % per_item_us(decode_all))
    profile = cProfile.Profile()
    profile.enable()
    gets()
    profile.disable()
    print("cProfile of %d runs.get calls:" % calls)
    print(top(profile, 22, calls, "call"))


def profile_import() -> None:
    env = dict(os.environ, PYTHONPYCACHEPREFIX=os.path.join(BENCH_DIR, ".venv", "pycache"))
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
