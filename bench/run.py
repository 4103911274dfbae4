#!/usr/bin/env python3
"""Benchmarks of yc_runs side by side with httpx, requests, urllib, http.client, openai and the
official SDK (yandex-ai-studio-sdk).

    python3 bench/run.py                 # everything, ~6 minutes on 2 cores
    python3 bench/run.py --quick         # shorter windows, fewer repetitions, < 2 minutes
    python3 bench/run.py --only listen   # one benchmark (comma-separated for several)

The competitors install into bench/.venv (made on first use, reused after); the script
then re-executes itself with that interpreter. yc_runs is the repository's yc_runs.py.
Servers are separate processes serving prebuilt bytes on 127.0.0.1 (bench/server.py);
every measurement runs in a fresh process (bench/workers.py). Results: stdout, and
bench/results/latest.md (+ latest.json).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
VENV = BENCH_DIR / ".venv"
RESULTS = BENCH_DIR / "results"
SERVER = BENCH_DIR / "server.py"
WORKERS = BENCH_DIR / "workers.py"
YC_RUNS_FILE = REPO / "yc_runs.py"
SDK_DIST = "yandex-ai-studio-sdk"  # formerly yandex-cloud-ml-sdk
REQUIREMENTS = ["httpx", "requests", "openai", SDK_DIST]
PROFILER = ["pyinstrument"]  # for bench/prof.py; not imported by any measurement

sys.path.insert(0, str(BENCH_DIR))

from report import Metric, Section, Target, markdown_report, text_report  # noqa: E402

BENCHMARKS = ["get", "get8", "listen", "wait", "import", "size", "async"]


# ============================================================================
# The virtualenv: made once, reused, and this script re-executed inside it
# ============================================================================


def venv_python() -> Path:
    return VENV / "bin" / "python"


def in_venv() -> bool:
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_venv_and_reexec(argv: List[str]) -> None:
    python = venv_python()
    if not python.exists():
        print("bench: creating %s" % VENV.relative_to(REPO), flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, timeout=300)
    marker = VENV / "bench-requirements.txt"
    wanted = "\n".join(REQUIREMENTS + PROFILER) + "\n"
    if not marker.exists() or marker.read_text() != wanted:
        print("bench: pip install %s into %s" % (" ".join(REQUIREMENTS + PROFILER),
                                                 VENV.relative_to(REPO)), flush=True)
        subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check",
                        "--no-input", "-q", *REQUIREMENTS, *PROFILER], check=True, timeout=900)
        marker.write_text(wanted)
    os.environ.setdefault("YC_BENCH_COMMAND", shlex.join(
        ["python3", os.path.relpath(os.path.abspath(argv[0]), REPO), *argv[1:]]))
    os.environ.setdefault("YC_BENCH_T0", repr(time.time()))
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *argv[1:]])


def child_env(bytecode: bool = True) -> Dict[str, str]:
    """The environment of measured processes: bytecode cached under bench/.venv (this sandbox
    sets PYTHONDONTWRITEBYTECODE, and nothing may be written beside yc_runs.py)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPATH", None)
    if bytecode:
        env["PYTHONPYCACHEPREFIX"] = str(VENV / "pycache")
    return env


# ============================================================================
# Processes: the server, and one worker per measurement
# ============================================================================


class BenchError(RuntimeError):
    pass


class Server:
    """bench/server.py in its own process; control over its stdin/stdout."""

    def __init__(self, *args: str, lifetime: float = 900.0) -> None:
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER), *args, "--lifetime", str(lifetime)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log,
            env=child_env(), cwd=str(BENCH_DIR))
        self._buffer = b""
        try:
            words = self._readline(15).split()
        except BaseException:
            self.close()
            raise
        self.port = int(words[1])
        self.stream_bytes = int(words[2])
        self.url = "http://127.0.0.1:%d" % self.port
        self.pid = self.proc.pid

    def _readline(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise BenchError("the server did not answer within %.0f s%s" % (timeout, self._tail()))
            data = os.read(fd, 65536)
            if not data:
                raise BenchError("the server exited%s" % self._tail())
            self._buffer += data
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def _tail(self) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        return (": " + text[-800:]) if text else ""

    def command(self, command: str) -> Dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        self.proc.stdin.flush()
        reply: Dict[str, Any] = json.loads(self._readline(10))
        return reply

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


def run_worker(spec: Dict[str, Any], timeout: float, sample_threads: bool = False) -> Dict[str, Any]:
    """One measurement in a fresh process; its JSON result (+ peak_threads when sampled)."""
    what = "%s/%s" % (spec["bench"], spec["client"])
    proc = subprocess.Popen([sys.executable, str(WORKERS), json.dumps(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=child_env(), cwd=str(REPO))
    peak_threads = 0
    try:
        if sample_threads:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    peak_threads = max(peak_threads, proc_threads(proc.pid))
                except OSError:
                    break
                time.sleep(0.002)
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("%s took over %.0f s" % (what, timeout)) from None
    finally:
        if proc.poll() is None:  # timed out or interrupted: leave no worker behind
            proc.kill()
            proc.communicate()
    if proc.returncode != 0:
        raise BenchError("%s failed: %s" % (what, err.decode(errors="replace").strip()[-1500:]))
    result: Dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    if sample_threads:
        result["peak_threads"] = peak_threads
    return result


# ============================================================================
# The benchmarks
# ============================================================================


@dataclass(frozen=True)
class Config:
    quick: bool
    reps: int
    get_seconds: float
    get_warmup: int
    import_runs: int
    async_runs: int
    async_event_delay: float
    size_packages: List[str]

    @classmethod
    def make(cls, quick: bool) -> "Config":
        if quick:
            return cls(True, reps=5, get_seconds=0.4, get_warmup=50, import_runs=10,
                       async_runs=1000, async_event_delay=0.002, size_packages=[SDK_DIST])
        return cls(False, reps=7, get_seconds=2.0, get_warmup=300, import_runs=20,
                   async_runs=1000, async_event_delay=0.005,
                   size_packages=[SDK_DIST, "openai", "httpx", "requests"])


class ServerLoad:
    """Server CPU over the workers' timed windows, per client."""

    def __init__(self) -> None:
        self.cpu: Dict[str, float] = {}
        self.wall: Dict[str, float] = {}
        self.peak: Dict[str, float] = {}

    def add(self, client: str, result: Dict[str, Any]) -> None:
        self.cpu[client] = self.cpu.get(client, 0.0) + result["server_cpu"]
        self.wall[client] = self.wall.get(client, 0.0) + result["wall"]
        if result["wall"] >= 0.2:  # /proc CPU times tick at 10 ms: skip short windows for the max
            busy = result["server_cpu"] / result["wall"]
            self.peak[client] = max(self.peak.get(client, 0.0), busy)

    def note(self, section: Section) -> str:
        parts = []
        worst = 0.0
        for client in section.clients:
            if client in self.cpu and self.wall[client] > 0:
                busy = self.cpu[client] / self.wall[client]
                peak = self.peak.get(client, busy)
                worst = max(worst, peak)
                parts.append("%s %.0f%% (max %.0f%%)" % (section.label(client), 100 * busy,
                                                         100 * peak))
        verdict = ("idle CPU throughout: the server was not the bottleneck" if worst < 0.85
                   else "WARNING: the server was near saturation; these numbers are bounded by it")
        return ("Server process (single-threaded asyncio, prebuilt bytes) CPU over the timed "
                "windows, % of one core: " + ", ".join(parts) + " — " + verdict + ".")


def interleave(section: Section, reps: int,
               measure: Callable[[str, int], Dict[str, float]]) -> None:
    """A, B, C, A, B, C, ...: every client once per round, ``reps`` rounds."""
    section.reps = reps
    for rep in range(reps):
        for client in section.clients:
            section.add(client, measure(client, rep))


def bench_get(cfg: Config, threads: int) -> Section:
    key = "get" if threads == 1 else "get8"
    title = ("1. runs.get, 1 thread, keep-alive" if threads == 1
             else "2. runs.get, 8 threads sharing one client")
    section = Section(key, title, ["yc_runs", "httpx", "requests", "urllib"], [
        Metric("rate", "calls/s", True),
        Metric("cpu_us", "client CPU µs/call", False, "{:,.0f}"),
    ], labels={"yc_runs": "yc_runs.Client", "httpx": "httpx.Client",
               "requests": "requests.Session", "urllib": "urllib.request (new conn/call)"})
    load = ServerLoad()
    with Server("--stream", "big", "--events", "10") as server:
        def measure(client: str, rep: int) -> Dict[str, float]:
            spec = {"bench": "get", "client": client, "url": server.url, "threads": threads,
                    "duration": cfg.get_seconds, "max_calls": 1_000_000,
                    "warmup_calls": cfg.get_warmup // threads, "server_pid": server.pid}
            result = run_worker(spec, timeout=cfg.get_seconds + 90)
            load.add(client, result)
            return {"rate": result["rate"], "cpu_us": 1e6 * result["cpu"] / result["calls"]}

        interleave(section, cfg.reps, measure)
    section.notes.append(
        "Each call: GET /assistants/v1/runs/{id} answered with the recorded COMPLETED run "
        "(%d bytes of JSON), then decoding: `client.runs.get()` for yc_runs (JSON into its Run "
        "dataclasses), `json.loads` of the body for the others. %.1f s timed per repetition after "
        "%d warm-up calls; %s." % (len(_completed_body()), cfg.get_seconds, cfg.get_warmup,
                                   "one thread" if threads == 1
                                   else "8 threads started together, one shared client"))
    section.notes.append(load.note(section))
    return section


def _completed_body() -> bytes:
    import payloads

    return json.dumps(payloads.completed_run(), ensure_ascii=False,
                      separators=(",", ":")).encode()


def bench_listen(cfg: Config) -> Section:
    events = 10_000
    section = Section("listen", "3. listen: one 10,000-event stream (fresh process each)", [
        "yc_runs", "httpx", "http.client"], [
        Metric("rate", "events/s", True),
        Metric("rss_mb", "peak RSS growth MB", False, "{:.2f}", ratio=False),
        Metric("cpu_us", "client CPU µs/event", False, "{:.1f}"),
    ], labels={"yc_runs": "yc_runs Run.listen()", "httpx": "httpx stream iter_lines+json.loads",
               "http.client": "http.client `for line in resp`+json.loads"})
    load = ServerLoad()
    with Server("--stream", "big", "--events", str(events)) as server:
        def measure(client: str, rep: int) -> Dict[str, float]:
            spec = {"bench": "listen", "client": client, "url": server.url, "host": "127.0.0.1",
                    "port": server.port, "events": events, "server_pid": server.pid}
            result = run_worker(spec, timeout=120)
            load.add(client, result)
            return {"rate": result["rate"], "rss_mb": result["rss_growth_kb"] / 1024,
                    "cpu_us": 1e6 * result["cpu"] / result["events"]}

        interleave(section, cfg.reps, measure)
        size = server.stream_bytes
    section.notes.append(
        "Stream: %s NDJSON lines `{\"result\": {...}}` (9,999 PARTIAL_MESSAGE carrying the text so "
        "far, then DONE with the recorded completedMessage), one HTTP chunk per event, %.1f MB "
        "in all, written at once by the server. Each measurement is a new process that first "
        "GETs the run on the same keep-alive connection, then resets its peak RSS "
        "(/proc/self/clear_refs) and times the stream; RSS growth = VmHWM after - VmRSS before."
        % (f"{events:,}", size / 1e6))
    section.notes.append(load.note(section))
    return section


def bench_wait(cfg: Config) -> Section:
    polls = 50
    section = Section("wait", "4. wait: a run that completes on the 50th GET", [
        "yc_runs", "urllib", "httpx", "requests"], [
        Metric("connections", "connections opened", False, "{:.0f}"),
        Metric("gets", "GETs served", False, "{:.0f}", ratio=False),
        Metric("wall_ms", "wall ms", False, "{:.0f}", ratio=False),
    ], labels={"yc_runs": "yc_runs Run.wait()", "urllib": "urllib.request poll loop",
               "httpx": "httpx.Client poll loop", "requests": "requests.Session poll loop"})
    load = ServerLoad()
    with Server("--stream", "big", "--events", "10", "--wait-polls", str(polls)) as server:
        def measure(client: str, rep: int) -> Dict[str, float]:
            run_id = "wait-%s-%d" % (client.replace(".", ""), rep)
            server.command("reset")
            spec = {"bench": "wait", "client": client, "url": server.url, "run_id": run_id,
                    "poll_interval": 0.001, "max_polls": 1000, "server_pid": server.pid}
            result = run_worker(spec, timeout=90)
            stats = server.command("stats")
            load.add(client, result)
            gets = stats["wait_gets"].get(run_id, 0)
            if gets != polls:
                raise BenchError("%s made %d GETs, expected %d" % (client, gets, polls))
            return {"connections": stats["connections"], "gets": gets,
                    "wall_ms": 1000 * result["wall"]}

        interleave(section, cfg.reps, measure)
    section.notes.append(
        "The server counts accepted TCP connections and GETs per run id: IN_PROGRESS %d times, "
        "then COMPLETED. yc_runs: `client.runs.get(id).wait(poll_interval=0.001)` (the first "
        "GET is the `get`); the others: a GET + json.loads + sleep(0.001) loop. `wall ms` includes "
        "making the client (httpx builds an SSL context even for http://)." % (polls - 1))
    section.notes.append(load.note(section))
    return section


def _importtime_ms(stderr: str) -> float:
    """Cumulative µs of the top-level imports after interpreter startup (the `site` line), in ms."""
    entries = []
    for line in stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        fields = line[len("import time:"):].split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue
        name = fields[2]
        if name.startswith(" ") and not name.startswith("  "):
            entries.append((name.strip(), int(fields[1])))  # top level: one space after "|"
    after_site: List[int] = []
    for name, cumulative in entries:
        if name == "site":
            after_site = []
        else:
            after_site.append(cumulative)
    return sum(after_site) / 1000.0


def sdk_import_name() -> str:
    """The top-level package of the official SDK, from its installed files."""
    from importlib import metadata

    dist = metadata.distribution(SDK_DIST)
    top = dist.read_text("top_level.txt")
    if top and top.split():
        return top.split()[0]
    names = sorted({str(f).split("/")[0] for f in (dist.files or [])
                    if str(f).endswith("/__init__.py") and str(f).count("/") == 1})
    if not names:
        raise BenchError("cannot find the import name of %s" % SDK_DIST)
    return names[0]


def bench_import(cfg: Config) -> Section:
    sdk = sdk_import_name()
    modules = ["yc_runs", "httpx", "requests", "openai", sdk]
    nopyc = "yc_runs (no .pyc)"
    section = Section("import", "5. cold import (python -X importtime, fresh process each)",
                      [*modules, nopyc], [
                          Metric("import_ms", "import ms", False, "{:.1f}"),
                          Metric("wall_ms", "process wall ms", False, "{:.0f}"),
                      ], labels={sdk: "%s (official SDK)" % sdk})
    empty_cache = tempfile.mkdtemp(prefix="yc-bench-nopyc-")
    env = child_env()
    env_nopyc = dict(child_env(), PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=empty_cache)

    def once(client: str, rep: int) -> Dict[str, float]:
        module = "yc_runs" if client == nopyc else client
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import " + module],
                              cwd=str(REPO), env=env_nopyc if client == nopyc else env,
                              capture_output=True, text=True, timeout=60)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError("import %s failed: %s" % (module, done.stderr[-800:]))
        return {"import_ms": _importtime_ms(done.stderr), "wall_ms": 1000 * wall}

    try:
        for client in section.clients:  # warm-up: bytecode written, files in the page cache
            once(client, -1)
            once(client, -1)
        interleave(section, cfg.import_runs, once)
    finally:
        shutil.rmtree(empty_cache, ignore_errors=True)
    section.notes.append(
        "`import ms`: sum of the cumulative times of the top-level imports that `python -X "
        "importtime -c 'import X'` reports after interpreter startup (in practice: X's own "
        "line), median of %d fresh processes per module, interleaved, after 2 warm-up runs "
        "each; bytecode cached (PYTHONPYCACHEPREFIX under bench/.venv), cwd = the repository, so "
        "`import yc_runs` finds the repo file. `process wall ms` is the whole `python -c` "
        "process, interpreter startup included. The SDK's distribution %s imports as `%s`."
        % (cfg.import_runs, SDK_DIST, sdk))
    section.notes.append(
        "`%s`: the same with PYTHONDONTWRITEBYTECODE=1 and no cached .pyc (how this sandbox "
        "runs it: yc_runs.py is compiled on every start). Not a target row." % nopyc)
    return section


_NOT_SHIPPED = ("pip", "setuptools", "_distutils_hack", "pkg_resources", "wheel")


def _tree_size(root: Path) -> Dict[str, float]:
    total = source = files = 0
    dists = 0
    for path in root.iterdir():
        name = path.name
        if name.split("-")[0] in _NOT_SHIPPED or name in _NOT_SHIPPED \
                or name == "distutils-precedence.pth":
            continue
        if name.endswith(".dist-info"):
            dists += 1
        items = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for item in items:
            size = item.stat().st_size
            total += size
            files += 1
            if "__pycache__" not in item.parts and item.suffix != ".pyc":
                source += size
    return {"source_mb": source / 1e6, "installed_mb": total / 1e6, "files": files,
            "dists": dists}


def bench_size(cfg: Config) -> Section:
    section = Section("size", "6. what a user must ship (installed size)",
                      ["yc_runs", *cfg.size_packages], [
                          Metric("source_mb", "MB without .pyc", False, "{:.3f}"),
                          Metric("installed_mb", "MB as pip installs (+.pyc)", False, "{:.3f}"),
                          Metric("files", "files", False, "{:,.0f}", ratio=False),
                          Metric("dists", "distributions", False, "{:.0f}", ratio=False),
                      ], labels={SDK_DIST: "%s (official SDK) + deps" % SDK_DIST,
                                 "openai": "openai + deps", "httpx": "httpx + deps",
                                 "requests": "requests + deps", "yc_runs": "yc_runs.py"})
    section.reps = 1
    import py_compile

    with tempfile.TemporaryDirectory(prefix="yc-bench-size-") as tmp:
        pyc = os.path.join(tmp, "yc_runs.pyc")
        py_compile.compile(str(YC_RUNS_FILE), cfile=pyc, doraise=True)
        source = YC_RUNS_FILE.stat().st_size
        section.add("yc_runs", {"source_mb": source / 1e6,
                                "installed_mb": (source + os.path.getsize(pyc)) / 1e6,
                                "files": 2, "dists": 0})
        for package in cfg.size_packages:
            target = Path(tmp) / package
            done = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                 "-q", "--target", str(target), package],
                capture_output=True, text=True, timeout=600, env=child_env(bytecode=False))
            if done.returncode != 0:
                raise BenchError("pip install %s failed: %s" % (package, done.stderr[-800:]))
            section.add(package, _tree_size(target))
    section.notes.append(
        "Measured by `pip install --target <fresh temp dir> <package>` (the package and every "
        "dependency, nothing else; pip compiles .pyc as it installs) and summing file sizes; "
        "pip/setuptools/wheel would not be counted. yc_runs: the size of yc_runs.py, and with "
        "its .pyc. One measurement (sizes do not vary between runs); wheels for %s %s."
        % (platform.machine(), "CPython %s" % platform.python_version()))
    return section


def bench_async(cfg: Config) -> Section:
    runs, events, workers = cfg.async_runs, 20, 32
    section = Section("async", "7. 1,000 concurrent runs: create + listen (20 events) + get", [
        "yc_runs", "yc_runs_threads", "httpx"], [
        Metric("wall_s", "wall s", False, "{:.2f}"),
        Metric("threads", "peak threads", False, "{:.0f}"),
        Metric("hwm_mb", "peak RSS MB", False, "{:.1f}"),
        Metric("growth_mb", "RSS growth MB", False, "{:.1f}"),
        Metric("cpu_s", "client CPU s", False, "{:.2f}"),
        Metric("connections", "connections opened", False, "{:.0f}", ratio=False),
    ], labels={"yc_runs": "yc_runs.AsyncClient, one loop",
               "yc_runs_threads": "yc_runs.Client, %d-thread pool" % workers,
               "httpx": "httpx.AsyncClient by hand"})
    load = ServerLoad()
    with Server("--stream", "paced", "--events", str(events), "--event-delay",
                str(cfg.async_event_delay)) as server:
        peak_open: Dict[str, int] = {}

        def measure(client: str, rep: int) -> Dict[str, float]:
            server.command("reset")
            spec = {"bench": "async", "client": client, "url": server.url, "runs": runs,
                    "events": events, "workers": workers, "deadline": 150,
                    "server_pid": server.pid}
            result = run_worker(spec, timeout=200, sample_threads=True)
            stats = server.command("stats")
            load.add(client, result)
            if stats["creates"] != runs or stats["listens"] != runs or stats["gets"] != runs:
                raise BenchError("%s: the server saw %r" % (client, stats))
            peak_open[client] = max(peak_open.get(client, 0), stats["peak_open"])
            return {"wall_s": result["wall"], "threads": max(result["peak_threads"],
                                                             result["threads_end"]),
                    "hwm_mb": result["hwm_kb"] / 1024, "growth_mb": result["rss_growth_kb"] / 1024,
                    "connections": stats["connections"], "cpu_s": result["cpu"]}

        interleave(section, cfg.reps, measure)
    stream_time = events * cfg.async_event_delay
    section.notes.append(
        "Every run: POST create (PENDING), GET listen — %d events paced %.0f ms apart by the "
        "server, so each stream stays open ≈%.0f ms and the runs really overlap — then GET (the "
        "recorded COMPLETED run). httpx.AsyncClient: Limits(max_connections=None, "
        "max_keepalive_connections=20), its fastest setting here in a trial (httpx's default "
        "cap of 100 connections: ~96 s, 20x slower; 64 kept alive: ~12 s; the time goes to "
        "httpcore's pool bookkeeping, client CPU ≈ wall); json.loads of every line and body. "
        "Peak threads: /proc/<pid>/status sampled every 2 ms by the parent; peak RSS: VmHWM "
        "of the worker process; growth: VmHWM - VmRSS before the first request (imports "
        "excluded). Most concurrent connections the server saw: %s."
        % (events, 1000 * cfg.async_event_delay, 1000 * stream_time,
           ", ".join("%s %d" % (section.label(c), n) for c, n in peak_open.items())))
    section.notes.append(load.note(section))
    return section


# ============================================================================
# Targets, machine facts, output
# ============================================================================


def _find(sections: List[Section], key: str) -> Optional[Section]:
    return next((s for s in sections if s.key == key and not s.error), None)


def targets(sections: List[Section]) -> List[Target]:
    out: List[Target] = []
    get = _find(sections, "get")
    if get:
        mine, theirs = get.median("yc_runs", "rate"), get.median("httpx", "rate")
        assert mine is not None and theirs is not None
        out.append(Target("get >= 1.5x httpx.Client (1 thread)",
                          "yc_runs %s/s vs httpx %s/s = %.2fx"
                          % (f"{mine:,.0f}", f"{theirs:,.0f}", mine / theirs),
                          mine / theirs >= 1.5))
    else:
        out.append(Target("get >= 1.5x httpx.Client (1 thread)", "not run", None))
    listen = _find(sections, "listen")
    if listen:
        mine = listen.median("yc_runs", "rate")
        hx = listen.median("httpx", "rate")
        hand = listen.median("http.client", "rate")
        growth = listen.median("yc_runs", "rss_mb")
        worst = max(listen.values("yc_runs", "rss_mb"))
        assert mine and hx and hand and growth is not None
        out.append(Target("listen >= 2x httpx", "yc_runs %s ev/s vs httpx %s ev/s = %.2fx"
                          % (f"{mine:,.0f}", f"{hx:,.0f}", mine / hx), mine / hx >= 2.0))
        out.append(Target("listen within 1.3x of http.client loop",
                          "http.client %s ev/s / yc_runs %s ev/s: yc_runs %.2fx slower"
                          % (f"{hand:,.0f}", f"{mine:,.0f}", hand / mine), hand / mine <= 1.3))
        out.append(Target("listen peak RSS growth < 5 MB",
                          "yc_runs median %.2f MB, max %.2f MB over 10,000 events" % (growth, worst),
                          worst < 5.0))
    else:
        for name in ("listen >= 2x httpx", "listen within 1.3x of http.client loop",
                     "listen peak RSS growth < 5 MB"):
            out.append(Target(name, "not run", None))
    wait = _find(sections, "wait")
    if wait:
        values = wait.values("yc_runs", "connections")
        urllib_median = wait.median("urllib", "connections") or 0
        out.append(Target("wait opens 1 connection",
                          "yc_runs opened %s (median %.0f; urllib %.0f) for 50 polls"
                          % ("/".join("%.0f" % v for v in values), statistics.median(values),
                             urllib_median), max(values) == 1))
    else:
        out.append(Target("wait opens 1 connection", "not run", None))
    imp = _find(sections, "import")
    if imp:
        sdk = imp.clients[4]
        mine = imp.median("yc_runs", "import_ms")
        hx = imp.median("httpx", "import_ms")
        official = imp.median(sdk, "import_ms")
        assert mine and hx and official
        out.append(Target("import <= 1/2 of httpx", "yc_runs %.1f ms vs httpx %.1f ms = %.3f of it"
                          % (mine, hx, mine / hx), mine <= hx / 2))
        out.append(Target("import <= 1/10 of the official SDK",
                          "yc_runs %.1f ms vs %s %.1f ms = %.3f of it" % (mine, sdk, official,
                                                                    mine / official),
                          mine <= official / 10))
    else:
        out.append(Target("import <= 1/2 of httpx", "not run", None))
        out.append(Target("import <= 1/10 of the official SDK", "not run", None))
    return out


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=str(REPO), capture_output=True, text=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def yc_runs_digest() -> str:
    return hashlib.sha256(YC_RUNS_FILE.read_bytes()).hexdigest()[:12]


def machine_facts(digest_at_start: str) -> List[str]:
    from importlib import metadata

    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            memory = "%.1f GB RAM" % (int(f.readline().split()[1]) / 1024 / 1024)
    except (OSError, ValueError, IndexError):
        pass
    versions = ", ".join("%s %s" % (name, metadata.version(name))
                         for name in ["httpx", "requests", "openai", SDK_DIST])
    data = YC_RUNS_FILE.read_bytes()
    dirty = " (modified in the work tree)" if _git("status", "--porcelain", "--",
                                                  "yc_runs.py") else ""
    digest = hashlib.sha256(data).hexdigest()[:12]
    if digest != digest_at_start:
        dirty += "; WARNING: yc_runs.py changed during the run (sha256 %s at the start)" % (
            digest_at_start)
    return [
        "- Machine: %s, %d logical cores (%d usable), %s; %s" % (
            model, os.cpu_count() or 0, len(os.sched_getaffinity(0)), memory, platform.platform()),
        "- Python: %s %s (%s)" % (platform.python_implementation(), platform.python_version(),
                                  os.path.relpath(sys.executable, REPO)),
        "- Compared: %s" % versions,
        "- yc_runs.py: %d bytes, sha256 %s, repo HEAD %s%s" % (
            len(data), digest, _git("rev-parse", "--short", "HEAD")
            or "?", dirty),
        "- Command: `%s`" % os.environ.get("YC_BENCH_COMMAND", "python3 bench/run.py"),
    ]


def run_profile(name: str) -> int:
    import prof

    if name == "import":
        prof.profile_import()
        return 0
    events = "10000" if name == "listen" else "10"
    with Server("--stream", "big", "--events", events) as server:
        if name == "listen":
            prof.profile_listen(server.url, server.port)
        else:
            prof.profile_get(server.url)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    parser = argparse.ArgumentParser(description="Benchmarks of yc_runs (see bench/run.py).")
    parser.add_argument("--quick", action="store_true", help="short run (< 2 minutes)")
    parser.add_argument("--only", metavar="NAME",
                        help="run only these benchmarks, comma-separated: " + ", ".join(BENCHMARKS))
    parser.add_argument("--profile", metavar="NAME", choices=("listen", "get", "import"),
                        help="instead of benchmarking, show where yc_runs spends its time in "
                        "listen, get or import (bench/prof.py)")
    args = parser.parse_args(argv[1:])
    selected = BENCHMARKS
    if args.only:
        selected = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in selected if name not in BENCHMARKS]
        if unknown:
            parser.error("unknown benchmark %s; choose from %s" % (", ".join(unknown),
                                                                   ", ".join(BENCHMARKS)))
    if not in_venv():
        ensure_venv_and_reexec(argv)
    if args.profile:
        return run_profile(args.profile)
    started = float(os.environ.get("YC_BENCH_T0", time.time()))
    cfg = Config.make(args.quick)
    runners: Dict[str, Callable[[], Section]] = {
        "get": lambda: bench_get(cfg, 1), "get8": lambda: bench_get(cfg, 8),
        "listen": lambda: bench_listen(cfg), "wait": lambda: bench_wait(cfg),
        "import": lambda: bench_import(cfg), "size": lambda: bench_size(cfg),
        "async": lambda: bench_async(cfg),
    }
    sections: List[Section] = []
    load_start = os.getloadavg()
    digest_at_start = yc_runs_digest()
    for name in selected:
        print("bench: %s ..." % name, end=" ", flush=True)
        t0 = time.monotonic()
        try:
            section = runners[name]()
        except (BenchError, OSError, subprocess.SubprocessError, AssertionError) as exc:
            section = Section(name, name, [], [], error="%s: %s" % (type(exc).__name__, exc))
        section.seconds = time.monotonic() - t0
        print("%.0f s%s" % (section.seconds, " FAILED" if section.error else ""), flush=True)
        sections.append(section)
    elapsed = time.time() - started
    header = machine_facts(digest_at_start)
    header.append("- Mode: %s; %s; total run time %.0f s (venv setup included); %s UTC" % (
        "--quick" if cfg.quick else "full",
        "%d interleaved repetitions per measurement" % cfg.reps,
        elapsed, time.strftime("%Y-%m-%d %H:%M", time.gmtime())))
    header.append("- Load average (1/5/15 min) at start %s, at end %s; other processes may share "
                  "this machine, which interleaving spreads evenly over the clients." % (
                      "/".join("%.2f" % x for x in load_start),
                      "/".join("%.2f" % x for x in os.getloadavg())))
    goals = targets(sections)
    print()
    print(text_report(sections, goals, [line.replace("`", "") for line in header]), end="")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(markdown_report(sections, goals, header))
    (RESULTS / "latest.json").write_text(json.dumps({
        "header": header, "sections": [{"key": s.key, "title": s.title, "error": s.error,
                                        "reps": s.reps, "seconds": s.seconds,
                                        "samples": s.samples, "notes": s.notes}
                                       for s in sections],
        "targets": [{"name": t.name, "text": t.text, "verdict": t.verdict} for t in goals],
    }, indent=1, ensure_ascii=False))
    print("\nwrote %s and latest.json" % (RESULTS / "latest.md").relative_to(REPO))
    return 1 if any(s.error for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
