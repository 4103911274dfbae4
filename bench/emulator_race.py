"""The review's race, as issue 13 states it: `python -m yc_runs serve` with 4 writers
creating runs and 4 readers listing them and asking for each thread's last run, for 20 s.

    python3 bench/emulator_race.py [seconds [switch-interval]]

Prints the answers counted, the dropped connections and the tracebacks the server wrote;
exits 1 unless both are 0. A switch interval (e.g. 1e-5) makes the server's threads
preempt each other often, so an unlocked iteration shows within seconds on any machine.
Standard library only, loopback only.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from typing import List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import yc_runs  # noqa: E402


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 20.0
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else sys.getswitchinterval()
    serve = ("import runpy, sys; sys.setswitchinterval(%r); sys.argv[0] = 'yc_runs'; "
             "runpy.run_module('yc_runs', run_name='__main__')" % interval)
    server = subprocess.Popen([sys.executable, "-c", serve, "serve", "--port", "0",
                               "--event-delay", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stderr is not None
    match = re.search(r"(http://127\.0\.0\.1:(\d+))", server.stdout.readline())
    if match is None:
        server.kill()
        print("the emulator did not start", file=sys.stderr)
        return 2
    url, port = match.group(1), int(match.group(2))
    stderr: List[str] = []
    lines = server.stderr
    drain = threading.Thread(target=lambda: stderr.extend(lines), daemon=True)
    drain.start()
    deadline = time.monotonic() + seconds
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def writer(n: int) -> None:
        with yc_runs.Client(base_url=url, api_key="k", folder_id="race", max_retries=0) as client:
            while time.monotonic() < deadline:
                try:
                    client.runs.create("a", "t%d" % n, additional_messages=["x"])
                    outcome = "create 200"
                except yc_runs.YCRunsError as error:
                    outcome = "create " + type(error).__name__
                with lock:
                    counts[outcome] += 1

    def reader(n: int) -> None:
        targets = ["/assistants/v1/runs?folderId=race&pageSize=100",
                   "/assistants/v1/runs:getByThread?threadId=t%d" % n]
        while time.monotonic() < deadline:
            for target in targets:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                try:
                    conn.request("GET", target, headers={"Authorization": "Api-Key k"})
                    response = conn.getresponse()
                    response.read()
                    outcome = "read %d" % response.status
                except (OSError, http.client.HTTPException) as error:
                    outcome = "dropped " + type(error).__name__
                finally:
                    conn.close()
                with lock:
                    counts[outcome] += 1

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(4)] + \
        [threading.Thread(target=reader, args=(n,)) for n in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    server.send_signal(signal.SIGINT)
    server.wait(10)
    drain.join(5)
    tracebacks = sum(1 for line in stderr if line.startswith("Traceback"))
    dropped = sum(n for outcome, n in counts.items() if outcome.startswith("dropped"))
    for outcome, n in sorted(counts.items()):
        print("%-28s %d" % (outcome, n))
    print("dropped connections %d, tracebacks %d in %.0f s" % (dropped, tracebacks, seconds))
    return 0 if dropped == 0 and tracebacks == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
