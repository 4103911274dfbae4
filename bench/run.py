#!/usr/bin/env python3
"""The targets of issue 15, measured side by side in one run, each printed as a ratio with
PASS or MISS (see bench/README.md for what each row measures).

    python3 bench/run.py                   # every row, both wires: about 6 minutes on 2 cores
    python3 bench/run.py --profile listen  # where yc_runs spends its time, on both wires

The peers (httpx, requests, openai, aiohttp, the official SDK) install from PyPI into a
venv under ~/.cache/yc-runs-bench on first use; the script then re-executes itself there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import select
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
CACHE = Path(os.environ.get("YC_RUNS_BENCH_CACHE", Path.home() / ".cache" / "yc-runs-bench"))
VENV = CACHE / "venv"
SERVER = BENCH_DIR / "server.py"
WORKERS = BENCH_DIR / "workers.py"
SDK_DIST, SDK_MODULE = "yandex-ai-studio-sdk", "yandex_ai_studio_sdk"
REQUIREMENTS = ["httpx", "requests", "openai", "aiohttp", SDK_DIST]
WIRES = ("assistants", "responses")

LISTEN_EVENTS = 10_000
LISTEN_REPS = 11
LISTEN_PEERS = {"assistants": ["httpx", "http.client"], "responses": ["openai", "http.client"]}
PACED_EVENTS, PACED_DELAY, PACED_REPS = 60, 0.02, 40
GC_THRESHOLDS = (700, 10)  # gc.get_threshold()'s first two, CPython's defaults
ASYNC_RUNS, ASYNC_EVENTS, ASYNC_DELAY, ASYNC_REPS = 1000, 20, 0.1, 3
ASYNC_PEERS = ["aiohttp", "httpx", "asyncio"]
GET_SECONDS, GET_REPS = 2.0, 7
IMPORT_RUNS = 21
IMPORT_MODULES = ["yc_runs", "httpx", "openai", SDK_MODULE]


# ============================================================================
# The venv: made once, reused, and this script re-executed inside it
# ============================================================================


def ensure_venv_and_reexec(argv: List[str]) -> None:
    python = VENV / "bin" / "python"
    if not python.exists():
        print("bench: creating %s" % VENV, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    marker = VENV / "bench-requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if not marker.exists() or marker.read_text() != wanted:
        print("bench: pip install %s" % " ".join(REQUIREMENTS), flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                        "--no-input", "-q", *REQUIREMENTS], check=True, timeout=900)
        marker.write_text(wanted)
    os.environ.setdefault("YC_BENCH_COMMAND", shlex.join(["python3", "bench/run.py", *argv[1:]]))
    os.environ.setdefault("YC_BENCH_T0", repr(time.time()))
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *argv[1:]])


def child_env() -> Dict[str, str]:
    """Measured processes cache bytecode in the venv (nothing is written beside yc_runs.py)."""
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(VENV / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPATH", None)
    return env


# ============================================================================
# Processes: the server, and one worker per measurement
# ============================================================================


class BenchError(RuntimeError):
    pass


class Server:
    """bench/server.py in its own process on 127.0.0.1; control over its stdin/stdout."""

    def __init__(self, *args: str) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen([sys.executable, str(SERVER), *args, "--lifetime", "900"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._log, env=child_env(), cwd=str(BENCH_DIR))
        self._buffer = b""
        try:
            self.port = int(self._readline(15).split()[1])
        except BaseException:
            self.close()
            raise
        self.url = "http://127.0.0.1:%d" % self.port
        self.pid = self.proc.pid

    def _readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise BenchError("the server did not answer: " + self._tail())
            data = os.read(fd, 1 << 20)
            if not data:
                raise BenchError("the server exited: " + self._tail())
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def _tail(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-800:]

    def command(self, command: str) -> Dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        reply: Dict[str, Any] = json.loads(self._readline(10))
        return reply

    def spec(self, **fields: Any) -> Dict[str, Any]:
        return dict(fields, url=self.url, port=self.port, server_pid=self.pid)

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()  # EOF: the server stops by itself
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(5)
        finally:
            self._log.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def proc_threads(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def start_worker(spec: Dict[str, Any]) -> "subprocess.Popen[bytes]":
    return subprocess.Popen([sys.executable, str(WORKERS), json.dumps(spec)],
                            stdin=subprocess.PIPE if spec.get("go") else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(),
                            cwd=str(REPO))


def run_worker(spec: Dict[str, Any], timeout: float = 120,
               proc: "Optional[subprocess.Popen[bytes]]" = None) -> Dict[str, Any]:
    """One measurement in a fresh process (or in ``proc``, started by start_worker): its
    JSON result, with the peak thread count."""
    proc = proc or start_worker(spec)
    peak = 0
    try:
        deadline = time.monotonic() + timeout
        while spec["bench"] == "async" and proc.poll() is None and time.monotonic() < deadline:
            try:
                peak = max(peak, proc_threads(proc.pid))
            except OSError:
                break
            time.sleep(0.005)
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise BenchError("%(bench)s/%(wire)s/%(client)s took too long" % spec) from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if proc.returncode != 0:
        raise BenchError("%s: %s" % (spec["client"], err.decode(errors="replace")[-1500:]))
    result: Dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_threads"] = peak
    return result


def interleave(clients: List[str], reps: int,
               measure: Callable[[str], Dict[str, float]]) -> Dict[str, Dict[str, List[float]]]:
    """A, B, C, A, B, C, ...: every client once per round; the samples of each."""
    samples: Dict[str, Dict[str, List[float]]] = {c: {} for c in clients}
    for _ in range(reps):
        for client in clients:
            for key, value in measure(client).items():
                samples[client].setdefault(key, []).append(value)
    return samples


def median(samples: Dict[str, Dict[str, List[float]]], client: str, key: str) -> float:
    return statistics.median(samples[client][key])


def percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# ============================================================================
# The measurements: each returns rows of the target table
# ============================================================================


@dataclass(frozen=True)
class Row:
    measure: str
    wire: str
    figures: str  # yc_runs and the peer, in numbers
    ratio: float  # yc_runs' advantage: > 1 is better for yc_runs
    target: str
    ok: bool


def listen_rows(wire: str) -> Tuple[List[Row], List[Row]]:
    """Throughput (events of the same bytes per second) and yc_runs' peak RSS growth."""
    clients = ["yc_runs", *LISTEN_PEERS[wire]]
    with Server("--stream", "big", "--events", str(LISTEN_EVENTS), "--wire", wire) as server:
        def measure(client: str) -> Dict[str, float]:
            result = run_worker(server.spec(bench="listen", wire=wire, client=client))
            return {"rate": LISTEN_EVENTS / result["wall"], "rss": result["rss_growth_kb"] / 1024}

        samples = interleave(clients, LISTEN_REPS, measure)
    mine = median(samples, "yc_runs", "rate")
    rows = []
    for peer, goal in zip(LISTEN_PEERS[wire], {"assistants": (2.0, 1.15),
                                               "responses": (3.0, 1.0)}[wire]):
        theirs = median(samples, peer, "rate")
        rows.append(Row("listen, 10,000 events", wire, "%s vs %s %s ev/s" % (
            f"{mine:,.0f}", peer, f"{theirs:,.0f}"), mine / theirs, "≥ %gx %s" % (goal, peer),
            mine / theirs >= goal))
    worst = max(samples["yc_runs"]["rss"])
    rss = [Row("peak RSS growth, 10,000-event listen", wire, "max %.2f MB of %d runs"
               % (worst, LISTEN_REPS), 1.0 / max(worst, 1e-3), "< 1 MB", worst < 1.0)]
    return rows, rss


def latency_rows(wire: str) -> List[Row]:
    """From the server's write of an event to the client holding it, first DONE included.
    The two clients listen at the same time, in fresh processes, to streams on one grid:
    their writes alternate every PACED_DELAY/2, so the load of the machine at any moment
    falls on both (one client at a time in a round left them 20-40 % apart between runs).
    Both have started and made their GET before either listens."""
    clients = ["yc_runs", "http.client"]
    lags: Dict[str, List[float]] = {c: [] for c in clients}
    with Server("--stream", "paced", "--events", str(PACED_EVENTS), "--event-delay",
                str(PACED_DELAY), "--phases", str(len(clients)), "--wire", wire) as server:
        rng = random.Random(15)  # the same phases of the garbage collector in every run
        phases = [(rng.randrange(GC_THRESHOLDS[0]), rng.randrange(GC_THRESHOLDS[1]))
                  for _ in range(PACED_REPS)]
        for round_ in range(PACED_REPS):
            server.command("reset")
            order = clients[round_ % 2:] + clients[:round_ % 2]  # who listens first, by turns
            specs = {c: server.spec(bench="listen", wire=wire, client=c, latency=True,
                                    linger=0.3, go=True, gc_phase=phases[round_])
                     for c in order}
            procs = {c: start_worker(specs[c]) for c in order}
            for proc in procs.values():  # both started and done with their GET: listen
                assert proc.stdout is not None and proc.stdin is not None
                if proc.stdout.readline() != b"ready\n":
                    raise BenchError("a latency worker did not start: %s"
                                     % run_worker({}, proc=proc))
            for proc in procs.values():
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                proc.stdin.flush()  # (closed by run_worker's communicate)
            results = {c: run_worker(specs[c], proc=procs[c]) for c in order}
            streams = server.command("stats")["streams"]
            for client, result in results.items():
                # its stream: the one whose writes its events follow closely
                def lag(writes: List[float], times: List[Tuple[int, float]] = result["times"]
                        ) -> List[float]:
                    return [1e6 * (t - writes[i]) for i, t in times]
                best = min(streams, key=lambda w: abs(statistics.median(lag(w))))
                lags[client].extend(lag(best))
    rows = []
    for name, q in (("p50", 0.5), ("p99", 0.99)):
        mine, hand = percentile(lags["yc_runs"], q), percentile(lags["http.client"], q)
        rows.append(Row("paced stream, last byte to event, " + name, wire,
                        "%.0f vs http.client %.0f µs" % (mine, hand), hand / mine,
                        "≤ 1.2x the hand loop's", mine <= 1.2 * hand))
    return rows


def async_rows(wire: str) -> List[Row]:
    """CPU per event of 1,000 concurrent listens on one event loop."""
    clients = ["yc_runs", *ASYNC_PEERS]
    total = ASYNC_RUNS * ASYNC_EVENTS
    with Server("--stream", "paced", "--events", str(ASYNC_EVENTS), "--event-delay",
                str(ASYNC_DELAY), "--wire", wire) as server:
        def measure(client: str) -> Dict[str, float]:
            result = run_worker(server.spec(bench="async", wire=wire, client=client,
                                            runs=ASYNC_RUNS), timeout=180)
            expected = total - (7 * ASYNC_RUNS if wire == "responses" and client == "yc_runs"
                                else 0)  # yc_runs has no event for the 7 framing SSE events
            if result["count"] != expected:
                raise BenchError("%s counted %d events of %d" % (client, result["count"], expected))
            return {"cpu_us": 1e6 * result["cpu"] / total, "threads": result["peak_threads"]}

        samples = interleave(clients, ASYNC_REPS, measure)
    mine = median(samples, "yc_runs", "cpu_us")
    extra = max(samples["yc_runs"]["threads"]) - 1
    aio, hx = median(samples, "aiohttp", "cpu_us"), median(samples, "httpx", "cpu_us")
    hand = median(samples, "asyncio", "cpu_us")
    return [
        Row("1,000 async listens, CPU per event", wire, "%.0f vs aiohttp %.0f µs (hand asyncio "
            "%.0f)" % (mine, aio, hand), aio / mine, "≤ aiohttp's", mine <= aio),
        Row("1,000 async listens, CPU per event", wire, "%.0f vs httpx %.0f µs" % (mine, hx),
            hx / mine, "≤ 1/4 of httpx's", mine * 4 <= hx),
        Row("1,000 async listens, extra threads", wire, "%d (peak of %d runs)"
            % (extra, ASYNC_REPS), 1.0, "0", extra == 0),
    ]


def get_rows(wire: str) -> List[Row]:
    clients = ["yc_runs", "httpx"]
    with Server("--stream", "big", "--events", "10", "--wire", wire) as server:
        def measure(client: str) -> Dict[str, float]:
            result = run_worker(server.spec(bench="get", wire=wire, client=client,
                                            duration=GET_SECONDS))
            return {"rate": result["calls"] / result["wall"]}

        samples = interleave(clients, GET_REPS, measure)
    mine, theirs = median(samples, "yc_runs", "rate"), median(samples, "httpx", "rate")
    return [Row("runs.get, keep-alive, 1 thread", wire, "%s vs httpx.Client %s calls/s" % (
        f"{mine:,.0f}", f"{theirs:,.0f}"), mine / theirs, "≥ 2x httpx.Client",
        mine / theirs >= 2.0)]


def _import_ms(module: str) -> float:
    """The cumulative µs ``python -X importtime`` reports for the module's own line, in ms."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import " + module],
                          cwd=str(REPO), env=child_env(), capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise BenchError("import %s: %s" % (module, done.stderr[-800:]))
    for line in reversed(done.stderr.splitlines()):
        fields = line.split("|")
        if len(fields) == 3 and fields[2].strip() == module:
            return int(fields[1]) / 1000.0
    raise BenchError("no import time for %s" % module)


def import_rows() -> List[Row]:
    for module in IMPORT_MODULES:  # bytecode written, files in the page cache
        _import_ms(module)
    samples = interleave(IMPORT_MODULES, IMPORT_RUNS, lambda m: {"ms": _import_ms(m)})
    mine = median(samples, "yc_runs", "ms")
    rows = []
    for peer, share in (("httpx", 2), ("openai", 10), (SDK_MODULE, 10)):
        theirs = median(samples, peer, "ms")
        rows.append(Row("cold import yc_runs", "both", "%.1f vs %s %.1f ms" % (mine, peer, theirs),
                        theirs / mine, "≤ 1/%d of %s" % (share, peer), mine * share <= theirs))
    return rows


# ============================================================================
# Profile, machine facts, output
# ============================================================================


def run_profile(name: str) -> int:
    import prof

    if name == "import":
        prof.profile_import()
        return 0
    if name == "latency":
        for wire in WIRES:
            prof.profile_latency(wire)
        return 0
    for wire in WIRES:
        events = str(LISTEN_EVENTS if name == "listen" else 10)
        with Server("--stream", "big", "--events", events, "--wire", wire) as server:
            (prof.profile_listen if name == "listen" else prof.profile_get)(
                server.url, server.port, wire)
    return 0


def machine() -> List[str]:
    from importlib import metadata

    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(REPO),
                          capture_output=True, text=True).stdout.strip()
    peers = ", ".join("%s %s" % (n, metadata.version(n)) for n in REQUIREMENTS)
    return [
        "Command: `%s`" % os.environ.get("YC_BENCH_COMMAND", "python3 bench/run.py"),
        "Machine: %s, %d cores; %s %s; %s" % (model, os.cpu_count() or 0,
                                              platform.python_implementation(),
                                              platform.python_version(), platform.platform()),
        "Peers: " + peers,
        "yc_runs: HEAD %s; date %s UTC" % (head, time.strftime("%Y-%m-%d %H:%M", time.gmtime())),
    ]


def table(rows: List[Row]) -> str:
    out = ["| measure | wire | yc_runs vs peer | ratio | target | |", "|---|---|---|---|---|---|"]
    for row in rows:
        out.append("| %s | %s | %s | %.2fx | %s | %s |" % (
            row.measure, row.wire, row.figures, row.ratio, row.target,
            "PASS" if row.ok else "MISS"))
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(description="The targets of issue 15, measured.")
    parser.add_argument("--profile", choices=("listen", "latency", "get", "import"),
                        help="instead of benchmarking, where yc_runs spends its time")
    parser.add_argument("--only", metavar="WORDS", help="only the steps whose names hold one of "
                        "these comma-separated words (listen, latency, async, get, import, "
                        "assistants, responses): for trying a change, not for the table")
    args = parser.parse_args(argv[1:])
    if Path(sys.prefix).resolve() != VENV.resolve():
        ensure_venv_and_reexec(argv)
    sys.path.insert(0, str(BENCH_DIR))
    if args.profile:
        return run_profile(args.profile)
    started = float(os.environ.get("YC_BENCH_T0", time.time()))
    steps: List[Tuple[str, Callable[[], List[Row]]]] = []
    rss: List[Row] = []
    for wire in WIRES:
        def listen(wire: str = wire) -> List[Row]:
            rows, memory = listen_rows(wire)
            rss.extend(memory)
            return rows
        steps.append(("listen " + wire, listen))
    steps += [("latency " + w, lambda w=w: latency_rows(w)) for w in WIRES]  # type: ignore[misc]
    steps += [("async " + w, lambda w=w: async_rows(w)) for w in WIRES]  # type: ignore[misc]
    steps += [("get " + w, lambda w=w: get_rows(w)) for w in WIRES]  # type: ignore[misc]
    steps.append(("import", import_rows))
    if args.only:
        words = args.only.split(",")
        steps = [(name, step) for name, step in steps if any(w in name for w in words)]
    rows: List[Row] = []
    for name, step in steps:
        t0 = time.monotonic()
        print("bench: %s ..." % name, end=" ", flush=True)
        rows.extend(step())
        print("%.0f s" % (time.monotonic() - t0), flush=True)
    rows.extend(rss)
    lines = machine()
    lines.append("Run time: %.0f s (medians of interleaved rounds; 2 shared cores)"
                 % (time.time() - started))
    print()
    print("\n".join("- " + line for line in lines))
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
