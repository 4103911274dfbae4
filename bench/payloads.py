"""Wire bytes the benchmark server sends, built once from the recorded service responses.

Everything here is standard library only: the server process imports it, and so
does the orchestrator (for the constants), but no measured client does.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Dict, List

TESTDATA = Path(__file__).resolve().parent.parent / "testdata"
RECORDED = TESTDATA / "recorded.json"
RESPONSES_SSE = TESTDATA / "responses" / "plain.sse"

API_KEY = "bench-api-key-0123456789"
FOLDER_ID = "b1gbenchfolder000000"
ASSISTANT_ID = "fvt1amecrr14suhq40tq"
THREAD_ID = "fvtje692d37062si1dqo"
RUN_ID = "fvtj3dp4kg4uilvsr97f"
WAIT_PREFIX = "wait-"
RUNS_PATH = "/assistants/v1/runs"
RESPONSE_ID = "ff635965-2c99-44f5-aa1e-2d84ffc68733"  # the recorded response
RESPONSES_PATH = "/v1/responses"

# The headers a hand-written client sends on every call (yc_runs adds its own
# x-client-request-id and User-Agent on top of the same three).
HAND_HEADERS: Dict[str, str] = {
    "Authorization": "Api-Key " + API_KEY,
    "x-folder-id": FOLDER_ID,
    "Accept": "application/json",
}

_DATE = "Mon, 07 Apr 2025 14:42:56 GMT"


def recorded() -> Dict[str, Any]:
    with RECORDED.open(encoding="utf-8") as f:
        data: Dict[str, Any] = json.load(f)
    return data


def _json(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def completed_run() -> Dict[str, Any]:
    """The recorded COMPLETED run (a Russian reply, usage as int64 strings)."""
    run: Dict[str, Any] = recorded()["get_run"]["COMPLETED"]
    return run


def run_with_status(status: str) -> Dict[str, Any]:
    run = copy.deepcopy(completed_run())
    run["state"] = {"status": status}
    if status in ("PENDING", "IN_PROGRESS"):
        run.pop("usage", None)
    return run


def json_response(body: bytes, status: str = "200 OK") -> bytes:
    head = (
        "HTTP/1.1 %s\r\n"
        "content-type: application/json\r\n"
        "x-request-id: 5f0c2a8e-7d1b-4c59-9a43-0e6b1f2d3c4a\r\n"
        "date: %s\r\n"
        "server: envoy\r\n"
        "content-length: %d\r\n"
        "\r\n" % (status, _DATE, len(body))
    )
    return head.encode("latin-1") + body


STREAM_HEAD = (
    "HTTP/1.1 200 OK\r\n"
    "content-type: application/json\r\n"
    "x-request-id: 5f0c2a8e-7d1b-4c59-9a43-0e6b1f2d3c4b\r\n"
    "date: %s\r\n"
    "server: envoy\r\n"
    "transfer-encoding: chunked\r\n"
    "\r\n" % _DATE
).encode("latin-1")

STREAM_END = b"0\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def stream_lines(events: int) -> List[bytes]:
    """``events`` NDJSON lines: events-1 PARTIAL_MESSAGE, then DONE, each ending in a newline.

    Each partial carries the whole text so far, as the service does: the recorded
    reply grows by one word per event and starts over after its last word, so lines
    stay 150-450 bytes however long the stream is.
    """
    done_message = completed_run()["state"]["completedMessage"]
    words = done_message["content"]["content"][0]["text"]["content"].split(" ")
    lines = []
    for i in range(events - 1):
        text = " ".join(words[: i % len(words) + 1])
        # as the service sends them: {} first, then the index alone (a 0 is left out)
        cursor: Dict[str, str] = {} if i == 0 else {"currentEventIdx": str(i)}
        event = {"eventType": "PARTIAL_MESSAGE", "streamCursor": cursor,
                 "partialMessage": {"content": [{"text": {"content": text}}]}}
        lines.append(_json({"result": event}) + b"\n")
    done = {"eventType": "DONE",
            "streamCursor": {"currentEventIdx": str(events - 1)},
            "completedMessage": done_message}
    lines.append(_json({"result": done}) + b"\n")
    return lines


def get_completed() -> bytes:
    return json_response(_json(completed_run()))


def run_response(run_id: str, status: str) -> bytes:
    """A GET answer for another run id (the wait benchmark's ids are made up per measurement)."""
    run = completed_run() if status == "COMPLETED" else run_with_status(status)
    return json_response(_json(dict(run, id=run_id)))


def create_response() -> bytes:
    return json_response(_json(run_with_status("PENDING")))


def not_found() -> bytes:
    return json_response(_json({"code": 5, "message": "run not found", "details": []}),
                         "404 Not Found")


# --- the Responses wire: SSE, built from the recorded plain.sse -----------------

SSE_HEAD = STREAM_HEAD.replace(b"application/json", b"text/event-stream")


def recorded_sse() -> List[Dict[str, Any]]:
    """The event objects of the recorded stream, in order."""
    events = []
    for line in RESPONSES_SSE.read_text(encoding="utf-8").splitlines():
        if line.startswith("data:"):
            events.append(json.loads(line[5:]))
    return events


def _sse(event: Dict[str, Any]) -> bytes:
    return b"data:" + _json(event) + b"\nevent:" + event["type"].encode() + b"\n\n"


def _with_text(obj: Any, text: str) -> Any:
    """A copy of a recorded object with every output text replaced by ``text``."""
    if isinstance(obj, dict):
        return {k: (text if k == "text" and isinstance(v, str) else _with_text(v, text))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_with_text(v, text) for v in obj]
    return obj


def sse_events(events: int) -> List[bytes]:
    """``events`` SSE messages shaped as the recorded ones: the 4 opening events, then
    output_text.delta (a word each), then the 4 closing events with the whole text."""
    recorded = recorded_sse()
    opening, delta, closing = recorded[:4], recorded[4], recorded[6:]
    words = completed_run()["state"]["completedMessage"]["content"]["content"][0]["text"][
        "content"].split(" ")
    deltas = events - len(opening) - len(closing)
    pieces = [words[i % len(words)] + " " for i in range(deltas)]
    text = "".join(pieces)
    out = [dict(e) for e in opening]
    out += [dict(delta, delta=piece) for piece in pieces]
    out += [_with_text(e, text) for e in closing]
    for number, event in enumerate(out, 1):
        event["sequence_number"] = number
    return [_sse(e) for e in out]


def response_completed() -> Dict[str, Any]:
    """The recorded completed response."""
    final: Dict[str, Any] = recorded_sse()[-1]["response"]
    return final


def get_response() -> bytes:
    return json_response(_json(response_completed()))
