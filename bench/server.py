"""The benchmark's HTTP/1.1 server: prebuilt response bytes, one asyncio thread, a separate process.

    python bench/server.py --stream big|paced [--events N] [--event-delay S]
                           [--phases N] [--wait-polls N] [--lifetime S]

Binds 127.0.0.1 on a free port and prints ``PORT <n>``. It answers

- ``GET  /assistants/v1/runs/<id>``       the recorded COMPLETED run; for an id starting
  with ``wait-`` IN_PROGRESS for the first wait_polls-1 GETs of that id, then COMPLETED
- ``POST /assistants/v1/runs``            a PENDING run (create)
- ``GET  /assistants/v1/runs/listen?...`` a chunked NDJSON stream, one chunk per event:
  ``big`` writes every event at once; ``paced`` writes one event every event_delay s
  (with ``--phases N`` on a grid the streams share: the n-th stream since a reset writes
  in the slots n mod N of event_delay/N each, so N clients listening at once never wake
  together)

with keep-alive (``Connection: close`` is honoured). Control goes over stdin/stdout,
so it opens no connection that would be counted: a line ``stats`` is answered by one
JSON line of counters, ``reset`` zeroes them, EOF (the parent died or is done) stops
the server. It also stops by itself after ``lifetime`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import payloads


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.connections = 0
        self.requests = 0
        self.gets = 0
        self.creates = 0
        self.listens = 0
        self.open = 0
        self.peak_open = 0
        self.wait_counts: Dict[bytes, int] = {}
        self.writes: List[float] = []  # time.monotonic() of each write of the last paced stream
        self.streams: List[List[float]] = []  # the same for every paced stream since a reset

    def as_dict(self) -> Dict[str, Any]:
        return {"connections": self.connections, "requests": self.requests, "gets": self.gets,
                "creates": self.creates, "listens": self.listens, "open": self.open,
                "peak_open": self.peak_open, "writes": self.writes, "streams": self.streams,
                "wait_gets": {k.decode(): v for k, v in self.wait_counts.items()}}


class Responses:
    def __init__(self, stream: str, events: int, event_delay: float, wait_polls: int,
                 wire: str = "assistants", phases: int = 0) -> None:
        self.stream = stream
        self.event_delay = event_delay
        self.phases = phases
        self.wait_polls = wait_polls
        self.get = payloads.get_completed()
        self.create = payloads.create_response()
        self.not_found = payloads.not_found()
        self.get_response = payloads.get_response()
        if wire == "responses":
            head, pieces = payloads.SSE_HEAD, payloads.sse_events(events)
        else:
            head, pieces = payloads.STREAM_HEAD, payloads.stream_lines(events)
        chunks = [payloads.chunk(piece) for piece in pieces]
        # Paced: head with the first event, one write per later event, the last with the end.
        self.paced: List[bytes] = [head + chunks[0], *chunks[1:]]
        self.paced[-1] += payloads.STREAM_END
        self.big = b"".join(self.paced)
        self.stream_bytes = len(self.big)
        self.wait_answers: Dict[Tuple[bytes, bool], bytes] = {}

    def for_wait(self, run_id: bytes, running: bool) -> bytes:
        """IN_PROGRESS or COMPLETED with this id, built on first use."""
        answer = self.wait_answers.get((run_id, running))
        if answer is None:
            answer = payloads.run_response(run_id.decode(), "IN_PROGRESS" if running else "COMPLETED")
            self.wait_answers[(run_id, running)] = answer
        return answer


_STREAM_RESPONSE = b"GET /v1/responses/"
_GET_RUN = b"GET /assistants/v1/runs/"
_LISTEN = b"GET /assistants/v1/runs/listen?"
_CREATE = b"POST /assistants/v1/runs "
_WAIT = b"GET /assistants/v1/runs/" + payloads.WAIT_PREFIX.encode()


class Connection(asyncio.Protocol):
    def __init__(self, stats: Stats, responses: Responses) -> None:
        self.stats = stats
        self.responses = responses
        self.buffer = b""
        self.start = 0.0  # a paced stream's first write, on the grid of --phases
        self.writes: List[float] = []  # time.monotonic() of each write of its paced stream
        self.transport: Optional[asyncio.Transport] = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        stats = self.stats
        stats.connections += 1
        stats.open += 1
        if stats.open > stats.peak_open:
            stats.peak_open = stats.open

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.stats.open -= 1

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data if self.buffer else data
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head = buffer[:end].lower()
            length = 0
            at = head.find(b"\r\ncontent-length:")
            if at >= 0:
                stop = head.find(b"\r\n", at + 2)
                length = int(head[at + 17:stop if stop >= 0 else len(head)])
            total = end + 4 + length
            if len(buffer) < total:
                break
            self.respond(buffer[:end], b"\r\nconnection: close" in head)
            buffer = buffer[total:]
        self.buffer = buffer

    def respond(self, head: bytes, close: bool) -> None:
        stats = self.stats
        responses = self.responses
        transport = self.transport
        assert transport is not None
        stats.requests += 1
        if head.startswith(_STREAM_RESPONSE):
            line = head[:head.find(b"\r\n")]
            if b"stream=true" not in line:
                stats.gets += 1
                transport.write(responses.get_response)
                if close:
                    transport.close()
                return
        if head.startswith(_LISTEN) or head.startswith(_STREAM_RESPONSE):
            stats.listens += 1
            if responses.stream == "big":
                transport.write(responses.big)
            else:
                self.pace(0, close)
                return
        elif head.startswith(_WAIT):
            stats.gets += 1
            run_id = head[len(_GET_RUN):head.find(b" ", len(_GET_RUN))]
            count = stats.wait_counts.get(run_id, 0) + 1
            stats.wait_counts[run_id] = count
            transport.write(responses.for_wait(run_id, count < responses.wait_polls))
        elif head.startswith(_GET_RUN):
            stats.gets += 1
            transport.write(responses.get)
        elif head.startswith(_CREATE):
            stats.creates += 1
            transport.write(responses.create)
        else:
            transport.write(responses.not_found)
        if close:
            transport.close()

    def pace(self, index: int, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        responses, loop = self.responses, asyncio.get_running_loop()
        if index == 0:
            self.writes = self.stats.writes = []
            self.stats.streams.append(self.writes)
            if responses.phases:  # on the grid: this stream's slots, the others' between them
                slot = responses.event_delay / responses.phases
                phase = (len(self.stats.streams) - 1) % responses.phases
                now = loop.time()  # the first slot of its phase after its request
                first = (int(now / responses.event_delay) + 1) * responses.event_delay
                self.start = first + phase * slot
                loop.call_at(self.start, self.write, 0, close)
                return
        self.write(index, close)

    def write(self, index: int, close: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        paced, loop = self.responses.paced, asyncio.get_running_loop()
        self.writes.append(time.monotonic())
        transport.write(paced[index])
        if index + 1 >= len(paced):
            if close:
                transport.close()
        elif self.responses.phases:
            loop.call_at(self.start + (index + 1) * self.responses.event_delay, self.write,
                         index + 1, close)
        else:
            loop.call_later(self.responses.event_delay, self.write, index + 1, close)


async def serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stats = Stats()
    responses = Responses(args.stream, args.events, args.event_delay, args.wait_polls, args.wire,
                          args.phases)
    server = await loop.create_server(lambda: Connection(stats, responses), "127.0.0.1", 0,
                                      backlog=4096, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    stopped = loop.create_future()

    pending = bytearray()

    def answer(command: str) -> None:
        if command == "reset":
            stats.reset()
            reply: Dict[str, Any] = {"ok": True}
        elif command == "stats":
            reply = stats.as_dict()
        else:
            reply = {"error": "unknown command %r" % command}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()

    def control() -> None:
        data = os.read(sys.stdin.fileno(), 4096)
        if not data:
            if not stopped.done():
                stopped.set_result(None)
            return
        pending.extend(data)
        while b"\n" in pending:
            line, _, rest = bytes(pending).partition(b"\n")
            pending[:] = rest
            answer(line.decode().strip())

    loop.add_reader(sys.stdin.fileno(), control)
    sys.stdout.write("PORT %d %d\n" % (port, responses.stream_bytes))
    sys.stdout.flush()
    try:
        await asyncio.wait_for(stopped, args.lifetime)
    except asyncio.TimeoutError:
        pass
    finally:
        loop.remove_reader(sys.stdin.fileno())
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stream", choices=("big", "paced"), default="big")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--event-delay", type=float, default=0.005)
    parser.add_argument("--wait-polls", type=int, default=50)
    parser.add_argument("--wire", choices=("assistants", "responses"), default="assistants")
    parser.add_argument("--phases", type=int, default=0, help="paced streams on a grid of "
                        "event_delay/N slots, the n-th stream in slots n mod N (0: no grid)")
    parser.add_argument("--lifetime", type=float, default=900.0)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
