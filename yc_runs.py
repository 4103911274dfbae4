# SPDX-License-Identifier: MIT
# Copyright (c) 2026 yc-runs contributors. The licence text: LICENSE, or https://spdx.org/licenses/MIT
"""yc_runs: a one-file client for Yandex AI Studio's assistants, with the Runs model.

Standard library only, Python 3.9+. Threads, runs, listen with resume, wait and tool
rounds, served from the live Responses and Conversations API (``api="responses"``, the
default) or the discontinued Assistant API's wire (``api="assistants"``). Sync and async
clients, a local emulator of both wires, a command line (``python -m yc_runs --help``).

    import yc_runs

    with yc_runs.Client(api_key="...", folder_id="b1g...") as client:
        thread = client.threads.create(["Hi! I am planning a trip."])
        run = client.runs.create("yandexgpt/latest", thread, stream=True,
                                 additional_messages=["What should I pack?"])
        for text in run.text_stream():          # the reply as it is generated
            print(text, end="", flush=True)
        print(run.wait().usage)                 # RunResult: text, usage, tool_calls

Offline, without credentials: ``with yc_runs.Emulator() as emu:`` and
``yc_runs.Client(base_url=emu.url, api_key="test")``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import re
import sys
import threading
import time
from collections import namedtuple
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

# typing, datetime, ssl, asyncio (and socket, below) are imported where they are used:
# `import yc_runs` stays cheap
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only
    import asyncio
    import socket
    import ssl
    from datetime import datetime
    from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple, Type, TypeVar, Union

    T = TypeVar("T")
    E = TypeVar("E", bound="_Status")
    RunT = TypeVar("RunT", bound="_RunFields")
    ThreadT = TypeVar("ThreadT", bound="_ThreadFields")

__all__ = [
    "Client", "AsyncClient", "Runs", "Run", "AsyncRuns", "AsyncRun",
    "Threads", "Thread", "AsyncThreads", "AsyncThread",
    "RunStatus", "StreamEvent", "MessageStatus",
    "RunResult", "RunStreamEvent", "StreamCursor", "Message", "Author", "ToolCall",
    "FunctionCall", "Usage", "RunError", "Citation", "Source", "PromptTruncationOptions",
    "YCRunsError", "APIError", "BadRequestError", "AuthenticationError",
    "PermissionDeniedError", "NotFoundError", "ConflictError", "RateLimitError",
    "ServerError", "MalformedResponseError", "APIConnectionError", "APITimeoutError",
    "StreamError", "WaitTimeoutError", "UnsupportedOperationError", "ToolLoopError",
    "CredentialsError",
    "Credentials", "APIKeyCredentials", "IAMTokenCredentials", "OAuthCredentials",
    "MetadataCredentials", "function_tool", "Emulator", "Fault", "RecordedRequest",
    "main",
]


class _LazySocket:
    """``socket``, imported at the first use of one of its names (the first connection),
    not by ``import yc_runs``, whose own import time it was a tenth of."""

    def __getattr__(self, name: str) -> Any:
        import socket as module

        globals()["socket"] = module
        return getattr(module, name)


if not TYPE_CHECKING:
    socket = _LazySocket()

__version__ = "0.1.0"

DEFAULT_BASE_URL = "https://ai.api.cloud.yandex.net"  # the Responses API; the Assistant API's:
ASSISTANT_API_BASE_URL = "https://rest-assistant.api.cloud.yandex.net"
IAM_TOKEN_URL = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
METADATA_TOKEN_URL = (
    "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token"
)
MAX_LINE_BYTES = 16 * 1024 * 1024
_USER_AGENT = "yc-runs/%s Python/%d.%d" % (__version__, *sys.version_info[:2])


# ============================================================================
# Enums
# ============================================================================


class _Status(enum.IntEnum):
    """Status values with the official SDK's helpers; unknown values become UNKNOWN."""

    def __str__(self) -> str:
        """The name (``COMPLETED``), the same on every Python version; ``int()`` gives the number."""
        return self.name

    def __format__(self, spec: str) -> str:
        if spec and spec[-1] in "bcdoxXneEfFgG%":  # a number format asks for the number
            return format(int(self), spec)
        return format(self.name, spec)

    @property
    def status_name(self) -> str:
        """ "running", "success", "failed", or "unknown"."""
        return _STATUS_NAMES.get((type(self).__name__, self.name), "unknown")

    @property
    def is_running(self) -> bool:
        """Not finished yet."""
        return self.status_name == "running"

    @property
    def is_succeeded(self) -> bool:
        """Finished well (TOOL_CALLS included: the run asks for tool results)."""
        return self.status_name == "success"

    @property
    def is_failed(self) -> bool:
        return self.status_name == "failed"

    @property
    def is_finished(self) -> bool:
        """Succeeded or failed: nothing more happens without the caller."""
        return self.is_succeeded or self.is_failed


class RunStatus(_Status):
    """Where a run is: PENDING and IN_PROGRESS are running; COMPLETED, and TOOL_CALLS (the
    run waits for ``submit_tool_results``), succeeded; FAILED failed (``result.error``).
    UNKNOWN stands for a value this version does not know."""

    UNKNOWN = -1
    RUN_STATUS_UNSPECIFIED = 0
    PENDING = 1
    IN_PROGRESS = 2
    FAILED = 3
    COMPLETED = 4
    TOOL_CALLS = 5


class StreamEvent(_Status):
    """The type of a Listen event: PARTIAL_MESSAGE while the reply grows; DONE, TOOL_CALLS
    or ERROR ends the stream. UNKNOWN stands for a type this version does not know."""

    UNKNOWN = -1
    EVENT_TYPE_UNSPECIFIED = 0
    PARTIAL_MESSAGE = 1
    ERROR = 2
    DONE = 3
    TOOL_CALLS = 4


class MessageStatus(_Status):
    """How a message ended: COMPLETED, TRUNCATED (the token limit) or FILTERED_CONTENT."""

    UNKNOWN = -1
    MESSAGE_STATUS_UNSPECIFIED = 0
    COMPLETED = 1
    TRUNCATED = 2
    FILTERED_CONTENT = 3


_STATUS_NAMES = {
    ("RunStatus", "PENDING"): "running",
    ("RunStatus", "IN_PROGRESS"): "running",
    ("RunStatus", "COMPLETED"): "success",
    ("RunStatus", "TOOL_CALLS"): "success",
    ("RunStatus", "FAILED"): "failed",
    ("StreamEvent", "PARTIAL_MESSAGE"): "running",
    ("StreamEvent", "DONE"): "success",
    ("StreamEvent", "TOOL_CALLS"): "success",
    ("StreamEvent", "ERROR"): "failed",
    ("MessageStatus", "COMPLETED"): "success",
    ("MessageStatus", "TRUNCATED"): "success",
    ("MessageStatus", "FILTERED_CONTENT"): "failed",
}


# ============================================================================
# Data classes
# ============================================================================


_SHOWN: Dict[type, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {}


def _names(cls: type) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """A data class's fields in its repr, and those its == and hash compare."""
    names = _SHOWN.get(cls)
    if names is None:
        fields = dataclasses.fields(cls)
        names = _SHOWN[cls] = (tuple(f.name for f in fields if f.repr), tuple(
            f.name for f in fields if (f.compare if f.hash is None else f.hash)))
    return names


class _Data:
    """The base of the data classes: repr, == and hash as @dataclass generates them (the
    class name and the repr fields; the compared fields, for the same class only), written
    once: generating them is three compilations per class, ~3 ms of ``import yc_runs``.
    Every data class is still a frozen dataclass (fields, replace, asdict). == compares the
    fields as one tuple, as 3.9-3.12 generate it (a NaN field equals itself)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "%s(%s)" % (self.__class__.__qualname__, ", ".join(
            "%s=%r" % (name, getattr(self, name)) for name in _names(self.__class__)[0]))

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        compared = _names(self.__class__)[1]
        return tuple(getattr(self, name) for name in compared) == tuple(
            getattr(other, name) for name in compared)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, name) for name in _names(self.__class__)[1]))


@dataclass(frozen=True, repr=False, eq=False)
class Author(_Data):
    """Who wrote a message: an id, and the role (USER or ASSISTANT)."""

    id: str = ""
    role: str = ""


_NO_AUTHOR = Author()


@dataclass(frozen=True, repr=False, eq=False)
class Source(_Data):
    """One source of a citation: a chunk of a file found through a search index."""

    text: str = ""
    file_id: str = ""
    file_name: str = ""
    mime_type: str = ""
    search_index_id: str = ""
    search_index_name: str = ""
    url: str = ""  # a web page found by search (Responses' url_citation)
    title: str = ""


@dataclass(frozen=True, repr=False, eq=False)
class Citation(_Data):
    """The sources one passage of an answer cites."""

    sources: Tuple[Source, ...] = ()


@dataclass(frozen=True, repr=False, eq=False)
class Message(_Data):
    """A thread message; a partial message carries only ``parts``."""

    id: str = ""
    thread_id: str = ""
    created_by: str = ""
    created_at: Optional[datetime] = None
    author: Author = Author()
    labels: Dict[str, str] = field(default_factory=dict)
    parts: Tuple[str, ...] = ()
    status: MessageStatus = MessageStatus.MESSAGE_STATUS_UNSPECIFIED
    citations: Tuple[Citation, ...] = ()

    @property
    def text(self) -> str:
        """The text parts joined with a newline, as the official SDK does."""
        return "\n".join(self.parts)


@dataclass(frozen=True, repr=False, eq=False)
class FunctionCall(_Data):
    """A function the model asks to call: its name and its arguments, decoded from JSON."""

    name: str
    arguments: Dict[str, Any]


@dataclass(frozen=True, repr=False, eq=False)
class ToolCall(_Data):
    """One tool call of a TOOL_CALLS stop: the function call, and on Responses the
    ``call_id`` its result answers."""

    function: FunctionCall
    call_id: Optional[str] = None  # Responses: what a function_call_output answers

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def arguments(self) -> Dict[str, Any]:
        return self.function.arguments


@dataclass(frozen=True, repr=False, eq=False)
class Usage(_Data):
    """Tokens a run has used so far: the prompt's, the completion's and their total."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @property
    def input_text_tokens(self) -> int:
        """The official SDK's name for ``prompt_tokens``."""
        return self.prompt_tokens


@dataclass(frozen=True, repr=False, eq=False)
class RunError(_Data):
    """Why a run failed; ``code`` is absent for many failures."""

    message: str
    code: Optional[int] = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True, repr=False, eq=False)
class StreamCursor(_Data):
    """Where an event stands in its run's stream: its index (what ``events_start_idx``
    resumes from) and how many tool-result rounds the run has received."""

    current_event_idx: int = 0
    num_user_events_received: int = 0


@dataclass(frozen=True, repr=False, eq=False)
class PromptTruncationOptions(_Data):
    """``strategy`` is None, "auto" or {"last_messages": N}."""

    max_prompt_tokens: Optional[int] = None
    strategy: Union[str, Dict[str, int], None] = None


class _ResultView(_Data):
    """Status and message helpers shared by RunResult and RunStreamEvent."""

    status: _Status
    error: Optional[RunError]

    def _final_message(self) -> Optional[Message]:
        raise NotImplementedError

    @property
    def message(self) -> Optional[Message]:
        """The reply; raises ValueError when the run failed."""
        if self.status.is_failed:
            raise ValueError("the run failed: %s" % (self.error or "no error message"))
        return self._final_message()

    @property
    def text(self) -> Optional[str]:
        message = None if self.status.is_failed else self._final_message()
        return None if message is None else message.text

    @property
    def parts(self) -> Tuple[str, ...]:
        message = None if self.status.is_failed else self._final_message()
        return () if message is None else message.parts

    @property
    def citations(self) -> Tuple[Citation, ...]:
        message = None if self.status.is_failed else self._final_message()
        return () if message is None else message.citations

    @property
    def status_name(self) -> str:
        return self.status.status_name

    @property
    def is_running(self) -> bool:
        return self.status.is_running

    @property
    def is_succeeded(self) -> bool:
        return self.status.is_succeeded

    @property
    def is_failed(self) -> bool:
        return self.status.is_failed

    @property
    def is_finished(self) -> bool:
        return self.status.is_finished


@dataclass(frozen=True, repr=False, eq=False)
class RunResult(_ResultView):
    """What a run produced, as of one fetch."""

    status: RunStatus
    error: Optional[RunError] = None
    tool_calls: Tuple[ToolCall, ...] = ()
    usage: Optional[Usage] = None
    completed_message: Optional[Message] = None

    def _final_message(self) -> Optional[Message]:
        return self.completed_message


@dataclass(frozen=True, repr=False, eq=False)
class RunStreamEvent(_ResultView):
    """One event of a Listen stream.

    ``delta`` is the text added since the previous partial message of the same
    stream; ``delta_reset`` is True when the new text does not extend the old
    one, and ``delta`` is then the whole new text.
    """

    status: StreamEvent
    error: Optional[RunError] = None
    tool_calls: Tuple[ToolCall, ...] = ()
    usage: Optional[Usage] = None
    stream_cursor: StreamCursor = StreamCursor()
    partial_message: Optional[Message] = None
    completed_message: Optional[Message] = None
    delta: str = ""
    delta_reset: bool = False

    def _final_message(self) -> Optional[Message]:
        return self.completed_message or self.partial_message


@dataclass(frozen=True, repr=False, eq=False)
class _RunFields(_Data):
    """What a run is, as fetched: its ids, creation, status and result (Run and AsyncRun add
    the calls)."""

    id: str
    assistant_id: str = ""
    thread_id: str = ""
    created_by: str = ""
    created_at: Optional[datetime] = None
    labels: Dict[str, str] = field(default_factory=dict)
    custom_temperature: Optional[float] = None
    custom_max_tokens: Optional[int] = None
    custom_prompt_truncation_options: Optional[PromptTruncationOptions] = None
    custom_response_format: Optional[Dict[str, Any]] = None
    tools: Tuple[Dict[str, Any], ...] = ()
    status: RunStatus = RunStatus.RUN_STATUS_UNSPECIFIED
    result: RunResult = RunResult(RunStatus.RUN_STATUS_UNSPECIFIED)
    _runs: Any = field(default=None, repr=False, compare=False)
    _state: Any = field(default=None, repr=False, compare=False)  # a _RunState

    @property
    def custom_max_prompt_tokens(self) -> Optional[int]:
        options = self.custom_prompt_truncation_options
        return None if options is None else options.max_prompt_tokens

    @property
    def usage(self) -> Optional[Usage]:
        return self.result.usage


# ============================================================================
# Errors
# ============================================================================


class YCRunsError(Exception):
    """The base of every error this module raises on purpose."""


class CredentialsError(YCRunsError):
    """No usable credential, or a credential that cannot be sent."""


class APIError(YCRunsError):
    """The service (or a proxy in front of it) answered with an error."""

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        grpc_code: Optional[int] = None,
        request_id: Optional[str] = None,
        client_request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.grpc_code = grpc_code
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.retry_after = retry_after

    def __str__(self) -> str:
        facts = []
        if self.status is not None:
            facts.append("HTTP %d" % self.status)
        if self.grpc_code is not None:
            facts.append("gRPC %d" % self.grpc_code)
        if self.request_id:
            facts.append("request id %s" % self.request_id)
        elif self.client_request_id:
            facts.append("client request id %s" % self.client_request_id)
        return "%s (%s)" % (self.message, ", ".join(facts)) if facts else self.message

    def __repr__(self) -> str:
        fields = ", ".join("%s=%r" % (name, getattr(self, name)) for name in (
            "status", "grpc_code", "request_id", "client_request_id", "retry_after")
            if getattr(self, name) is not None)
        return "%s(%r%s)" % (type(self).__name__, self.message, ", " + fields if fields else "")


class BadRequestError(APIError):
    """400: a bad argument, or the run is not in a state that allows the call."""


class AuthenticationError(APIError):
    """401: the credential is wrong or expired."""


class PermissionDeniedError(APIError):
    """403: the credential has no role on the folder."""


class NotFoundError(APIError):
    """404: no such run or thread."""


class ConflictError(APIError):
    """409: already exists, or aborted."""


class RateLimitError(APIError):
    """429: quota or rate limit; ``retry_after`` says when to try again."""


class ServerError(APIError):
    """5xx from the service or a proxy."""


class MalformedResponseError(APIError):
    """A response that is not the JSON the API defines (HTML, wrong types)."""


class APIConnectionError(YCRunsError):
    """The request could not be sent or its response not read."""

    def __init__(self, message: str, *, connected: bool = True, reused: bool = False,
                 retryable: bool = True) -> None:
        super().__init__(message)
        self.connected = connected  # False: the request provably never left
        self.reused = reused  # a pooled connection that failed before any response byte
        self.retryable = retryable  # False: trying again cannot help (a certificate failure)


class APITimeoutError(APIConnectionError, TimeoutError):
    """The server did not answer within the timeout."""


class StreamError(YCRunsError):
    """A Listen stream that is malformed, or broke and could not be resumed."""

    def __init__(self, message: str, *, last_event_idx: Optional[int] = None) -> None:
        super().__init__(message)
        self.last_event_idx = last_event_idx


class WaitTimeoutError(YCRunsError, TimeoutError):
    """``wait`` ran out of ``poll_timeout``; ``status`` is the last one seen."""

    def __init__(self, message: str, *, run_id: str, status: RunStatus) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.status = status


class UnsupportedOperationError(YCRunsError, NotImplementedError):
    """The REST API has no such operation."""


class ToolLoopError(YCRunsError):
    """``run_tools`` used up ``max_rounds`` and the run still asks for tools."""

    def __init__(self, message: str, *, rounds: int, result: RunResult) -> None:
        super().__init__(message)
        self.rounds = rounds
        self.result = result


_ERROR_CLASSES: Dict[int, Type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}
# The standard gateway mapping, for error bodies that carry only a gRPC code.
_GRPC_TO_HTTP = {3: 400, 9: 400, 11: 400, 16: 401, 7: 403, 5: 404, 6: 409, 10: 409,
                 8: 429, 13: 500, 14: 503, 4: 504, 2: 500, 12: 501}


# ============================================================================
# Function tools: JSON Schemas and arguments from type hints
# ============================================================================


def _coerce_arguments(function: Callable[..., Any], arguments: Dict[str, Any]) -> Dict[str, Any]:
    """Struct numbers arrive as floats (5.0): give int parameters ints.

    Also for Optional[int] and List[int], and for hints written as strings.
    """

    hints = getattr(function, "__annotations__", None)
    if not isinstance(hints, dict) or not hints:
        return arguments
    try:
        hints = _parameter_hints(function)
    except Exception:  # an unresolvable forward reference: keep the raw annotations
        pass
    return {name: _coerce_int(hints.get(name), value) for name, value in arguments.items()}


def _parameter_hints(function: Callable[..., Any]) -> Dict[str, Any]:
    """The resolved type hints of the parameters; the return annotation is never evaluated."""
    import types
    import typing

    annotations = dict(getattr(function, "__annotations__", None) or {})
    annotations.pop("return", None)
    target = getattr(function, "__wrapped__", function)
    shim = types.SimpleNamespace(__annotations__=annotations)
    return typing.get_type_hints(shim, globalns=getattr(target, "__globals__", None))


def _coerce_int(hint: Any, value: Any) -> Any:
    import typing

    if isinstance(value, float) and value.is_integer() and hint in (int, "int"):
        return int(value)
    args = typing.get_args(hint)
    if _is_union(hint):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _coerce_int(rest[0], value)
        return _coerce_int(int, value) if int in rest and float not in rest else value
    if isinstance(value, list) and args and typing.get_origin(hint) in (list, Sequence, Iterable):
        return [_coerce_int(args[0], item) for item in value]
    return value


def _is_union(hint: Any) -> bool:
    """Union and Optional, written with typing or as the X | None of Python 3.10+."""
    import typing

    return typing.get_origin(hint) is typing.Union or type(hint).__name__ == "UnionType"


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean",
               list: "array", dict: "object", tuple: "array"}


def _json_schema(hint: Any, where: str) -> Dict[str, Any]:
    import typing

    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if _is_union(hint):
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _json_schema(rest[0], where)
        return {"anyOf": [_json_schema(a, where) for a in rest]}
    if origin is typing.Literal:
        kinds = {_JSON_TYPES.get(type(a), "string") for a in args}
        schema: Dict[str, Any] = {"enum": list(args)}
        if len(kinds) == 1:
            schema["type"] = kinds.pop()
        return schema
    if origin in (list, tuple, set, frozenset, Sequence, Iterable):
        schema = {"type": "array"}
        if args and args[0] is not Ellipsis:
            schema["items"] = _json_schema(args[0], where)
        return schema
    if origin in (dict, Mapping):
        return {"type": "object"}
    if hint is typing.Any:
        return {}
    raise TypeError("%s: no JSON Schema for type %r; use str, int, float, bool, list, dict, "
                    "Optional or Literal" % (where, hint))


def function_tool(func: Callable[..., Any], *, name: Optional[str] = None,
                  description: Optional[str] = None) -> Dict[str, Any]:
    """The API's function Tool for a Python function: name, docstring, JSON Schema of its hints."""
    import inspect
    import typing

    if not callable(func):
        raise TypeError("function_tool needs a function, not %s" % type(func).__name__)
    tool_name = name or getattr(func, "__name__", "")
    if not tool_name or tool_name == "<lambda>":
        raise ValueError("function_tool needs a named function or name=")
    try:
        hints = _parameter_hints(func)
    except Exception as exc:  # unresolvable forward references and the like
        raise TypeError("%s: cannot read its type hints: %s" % (tool_name, exc)) from None
    properties: Dict[str, Any] = {}
    required = []
    for param in inspect.signature(func).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        where = "%s(%s)" % (tool_name, param.name)
        schema = _json_schema(hints[param.name], where) if param.name in hints else {}
        properties[param.name] = schema
        hint = hints.get(param.name)
        optional = _is_union(hint) and type(None) in typing.get_args(hint)
        if param.default is param.empty and not optional:
            required.append(param.name)
    parameters: Dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    doc = description if description is not None else (inspect.getdoc(func) or "")
    spec: Dict[str, Any] = {"name": tool_name, "parameters": parameters}
    if doc:
        spec["description"] = doc.strip().split("\n\n")[0].replace("\n", " ")
    return {"function": spec}


# ============================================================================
# Assistant API wire (sans-IO), 1: JSON values, every variation the service sends, checked
# ============================================================================

_SNAKE: Dict[str, str] = {}
_TIMESTAMP = (
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):?(\d\d))\Z"
)
_TERMINAL_EVENTS = frozenset((StreamEvent.DONE, StreamEvent.ERROR, StreamEvent.TOOL_CALLS))
# The members the stream decoders read per event or per response, as module globals: on
# Python 3.11 a member read off its class is a call of a Python descriptor, ~60 ns hot and
# several times that on code the stream has not run for 20 ms.
_RUN_COMPLETED, _RUN_TOOL_CALLS, _RUN_FAILED, _RUN_UNKNOWN, _RUN_UNSPECIFIED = (
    RunStatus.COMPLETED, RunStatus.TOOL_CALLS, RunStatus.FAILED, RunStatus.UNKNOWN,
    RunStatus.RUN_STATUS_UNSPECIFIED)
_EVENT_PARTIAL, _EVENT_DONE, _EVENT_ERROR, _EVENT_TOOL_CALLS, _EVENT_UNKNOWN = (
    StreamEvent.PARTIAL_MESSAGE, StreamEvent.DONE, StreamEvent.ERROR, StreamEvent.TOOL_CALLS,
    StreamEvent.UNKNOWN)
_MESSAGE_COMPLETED, _MESSAGE_UNSPECIFIED = MessageStatus.COMPLETED, \
    MessageStatus.MESSAGE_STATUS_UNSPECIFIED


_JSON_DECODER = json.JSONDecoder()
# the C scanner that json.loads wraps in two whitespace regexes per call
_JSON_SCAN: Callable[[str, int], Tuple[Any, int]] = _JSON_DECODER.scan_once  # type: ignore[attr-defined]


def _json_line(text: str) -> Any:
    """One JSON value that fills the whole line (json.loads, minus two regex calls per line)."""
    try:
        value, end = _JSON_SCAN(text, 0)
    except StopIteration:  # leading whitespace, or not JSON: the full decoder says which
        return _JSON_DECODER.decode(text)
    if end != len(text) and text[end:].strip():
        return _JSON_DECODER.decode(text)  # raises "Extra data" with its position
    return value


def _snake(name: str) -> str:
    """snake_case of a lowerCamelCase name; the very same object when there is no hump."""
    snake = _SNAKE.get(name)
    if snake is None:
        converted = re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()
        snake = _SNAKE[name] = name if converted == name else converted
    return snake


def _get(obj: Mapping[str, Any], name: str) -> Any:
    """The field in lowerCamelCase or in snake_case; JSON null is a missing field."""
    value = obj.get(name)
    if value is None:
        snake = _SNAKE.get(name) or _snake(name)
        if snake is not name:
            value = obj.get(snake)
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            int: "a number", float: "a number"}.get(type(value), type(value).__name__)


def _malformed(path: str, expected: str, value: Any) -> MalformedResponseError:
    return MalformedResponseError("%s: expected %s, got %s" % (path, expected, _kind(value)))


def _object(value: Any, path: str) -> Dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    raise _malformed(path, "an object", value)


def _list(value: Any, path: str) -> List[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise _malformed(path, "a list", value)


def _str(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _malformed(path, "a string", value)


def _decode_int64(value: Any, path: str) -> Optional[int]:
    """int64 as a JSON number or a decimal string; None when missing."""
    if value is None:
        return None
    if isinstance(value, bool):
        pass
    elif isinstance(value, int):
        return value
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    elif isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _malformed(path, "an integer", value)


def _str_at(get: Callable[[str], Any], name: str, path: str) -> str:
    """_str of a field (``get`` is the object's get, or its _getter); the path of the field
    is built only for an error."""
    value = get(name)
    return value if value.__class__ is str else _str(value, path + "." + name)


def _int_at(get: Callable[[str], Any], name: str, path: str) -> Optional[int]:
    """_decode_int64 of a field: an int or the plain decimal string proto3 JSON sends taken
    directly, anything else by _decode_int64 (which names the field when it is wrong)."""
    value = get(name)
    if value.__class__ is int:
        return value
    if value.__class__ is str and len(value) < 19 and value.isascii() and value.isdigit():
        return int(value)
    return _decode_int64(value, path + "." + name)


def _float(value: Any, path: str) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise _malformed(path, "a number", value)


def _enum(cls: Type[E], value: Any, path: str) -> E:
    """An enum by name or number; one this client does not know is UNKNOWN."""
    if value is None:
        return cls(0)
    if isinstance(value, str):
        member = cls._member_map_.get(value)
        if member is not None:
            return member  # type: ignore[return-value]
        try:  # "3" is a number; "--3" or "\u00b2" pass isdigit() but are unknown names
            value = int(value) if value.lstrip("-").isdigit() else None
        except ValueError:
            value = None
        if value is None:
            return cls(-1)
    if isinstance(value, int) and not isinstance(value, bool):
        return cls._value2member_map_.get(value, cls(-1))  # type: ignore[return-value]
    raise _malformed(path, "an enum name or number", value)


_DATETIME: List[Any] = []  # datetime and timezone.utc, once imported
_ZULU: List[Callable[[str], Any]] = []  # on 3.11+, once warmed: the fullmatch of the usual form
_ISO_ZULU = sys.version_info >= (3, 11)  # datetime.fromisoformat takes "Z" and 9 digits


def _timestamp(value: Any, path: str) -> Optional[datetime]:
    """RFC 3339 with 0-9 fractional digits and Z or an offset, as aware UTC.

    Also the proto3 object form {seconds, nanos}; digits past microseconds are dropped.
    """
    if _ZULU and value.__class__ is str and _ZULU[0](value) is not None:
        try:  # the usual "2025-04-02T17:39:16.084751614Z", read in C on Python 3.11+
            return _DATETIME[0].fromisoformat(value)  # type: ignore[no-any-return]
        except ValueError:  # a leap second, year 0: as below
            pass
    if value.__class__ is str and 20 <= len(value) <= 30 and value[19] in ".Zz" \
            and value[-1] in "Zz" and value[4] == "-" and value[7] == "-" \
            and value[10] in "Tt " and value[13] == ":" and value[16] == ":":
        # the usual "2025-04-02T17:39:16.084751614Z", read as _timestamp_fields' pattern
        # reads it (a DONE's latency is mostly its times, with no import or regex call here)
        digits = value[:4] + value[5:7] + value[8:10] + value[11:13] + value[14:16] + \
            value[17:19]
        fraction = value[20:-1]
        if digits.isascii() and digits.isdigit() and (
                (len(value) == 20) if value[19] != "." else
                (fraction.isascii() and fraction.isdigit())):
            if not _DATETIME:
                from datetime import datetime as datetime_class, timezone

                _DATETIME[:] = datetime_class, timezone.utc
            make, utc = _DATETIME
            if _ISO_ZULU and value[-1] == "Z":  # Python 3.11+ reads this very form, in C
                try:
                    return make.fromisoformat(value)  # type: ignore[no-any-return]
                except ValueError:  # a leap second, year 0: as below
                    pass
            number = int(digits)  # YYYYMMDDhhmmss, one call
            rest, second = divmod(number, 100)
            rest, minute = divmod(rest, 100)
            rest, hour = divmod(rest, 100)
            year, month_day = divmod(rest, 10000)
            try:
                stamp: datetime = make(year, month_day // 100, month_day % 100, hour, minute,
                                       min(second, 59), int(fraction[:6].ljust(6, "0")),
                                       tzinfo=utc)
            except ValueError:
                raise MalformedResponseError("%s: not a valid date: %r"
                                             % (path, value[:40])) from None
            return stamp
    return _timestamp_fields(value, path)


def _timestamp_fields(value: Any, path: str) -> Optional[datetime]:
    """_timestamp of any form, by the pattern."""
    from datetime import datetime, timedelta, timezone

    if value is None or value == "":
        return None
    if isinstance(value, dict):
        seconds = _decode_int64(_get(value, "seconds"), path + ".seconds") or 0
        nanos = _decode_int64(_get(value, "nanos"), path + ".nanos") or 0
        try:
            return datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(
                seconds=seconds, microseconds=nanos // 1000)
        except OverflowError:
            raise MalformedResponseError("%s: not a valid time: %r" % (path, value)) from None
    match = re.match(_TIMESTAMP, value) if isinstance(value, str) else None
    if match is None:
        raise _malformed(path, "an RFC 3339 timestamp", value)
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    try:
        stamp = datetime(int(year), int(month), int(day), int(hour), int(minute),
                         min(int(second), 59), int((fraction or "0")[:6].ljust(6, "0")),
                         tzinfo=timezone.utc)
    except ValueError:
        raise MalformedResponseError("%s: not a valid date: %r" % (path, value[:40])) from None
    if not zulu:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        try:
            stamp -= offset if sign == "+" else -offset
        except OverflowError:
            raise MalformedResponseError("%s: out of range in UTC: %r" % (path, value[:40])) from None
    return stamp


_WARM: List[bool] = []


def _warm_decoders() -> None:
    """Import datetime and compile the timestamp pattern (~2.5 ms, once per process) while
    a request waits for its answer, so the first answer or DONE that has a time does not."""
    if not _WARM:  # marked done last: a second thread meanwhile does the same, not less
        from datetime import datetime as datetime_class, timezone

        _DATETIME[:] = datetime_class, timezone.utc
        re.compile(_TIMESTAMP)
        if _ISO_ZULU:  # the checks below in one call: ~0.3 us, not ~0.9
            _ZULU[:] = [re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(?:\.\d{1,9})?Z",
                                   re.ASCII).fullmatch]
        _WARM.append(True)


def _labels(value: Any, path: str) -> Dict[str, str]:
    return {str(k): _str(v, "%s.%s" % (path, k)) for k, v in _object(value, path).items()}


def _parts(content: Any, path: str) -> Tuple[str, ...]:
    """Text parts of a MessageContent: {content: [{text: {content}}]}; other parts skipped."""
    if content.__class__ is dict and content.get("content").__class__ is list:  # the usual shape
        try:
            texts = tuple([part["text"]["content"] for part in content["content"]])
            if (len(texts) == 1 and texts[0].__class__ is str) or all(
                    text.__class__ is str for text in texts):
                return texts
        except (KeyError, TypeError):
            pass
    items = _object(content, path).get("content")
    if items is None:
        return ()
    if not isinstance(items, list):
        raise _malformed(path + ".content", "a list", items)
    parts = []
    for i, part in enumerate(items):
        text = _object(part, "%s.content[%d]" % (path, i)).get("text")
        if text is not None:
            value = _object(text, "%s.content[%d].text" % (path, i)).get("content")
            parts.append(value if isinstance(value, str) else _str(
                value, "%s.content[%d].text.content" % (path, i)))
    return tuple(parts)


# ============================================================================
# Assistant API wire (sans-IO), 2: messages, runs and stream events into data classes
# ============================================================================


def _decode_source(obj: Dict[str, Any], path: str) -> Source:
    chunk = _object(_get(obj, "chunk"), path + ".chunk")
    index = _object(_get(chunk, "searchIndex"), path + ".chunk.searchIndex")
    source_file = _object(_get(chunk, "sourceFile"), path + ".chunk.sourceFile")
    return Source(
        text="\n".join(_parts(_get(chunk, "content"), path + ".chunk.content")),
        file_id=_str(_get(source_file, "id"), path + ".chunk.sourceFile.id"),
        file_name=_str(_get(source_file, "name"), path + ".chunk.sourceFile.name"),
        mime_type=_str(_get(source_file, "mimeType"), path + ".chunk.sourceFile.mimeType"),
        search_index_id=_str(_get(index, "id"), path + ".chunk.searchIndex.id"),
        search_index_name=_str(_get(index, "name"), path + ".chunk.searchIndex.name"),
    )


_MESSAGE_KEYS = frozenset(("id", "threadId", "createdBy", "createdAt", "author", "content",
                           "status", "labels", "citations"))
_AUTHOR_KEYS = frozenset(("id", "role"))
_STR_OR_NONE = (str, type(None))


def _decode_message(value: Any, path: str) -> Message:
    """A Message. The usual one (camelCase, strings where strings go, no citations) is built
    here as _decode_message_fields would build it, field by field; anything else by it."""
    if value.__class__ is dict and value.keys() <= _MESSAGE_KEYS:
        get = value.get
        author, labels, status = get("author"), get("labels"), get("status")
        message_id, thread_id, created_by = get("id"), get("threadId"), get("createdBy")
        if (author is None or (author.__class__ is dict and author.keys() <= _AUTHOR_KEYS
                               and author.get("id", "").__class__ is str
                               and author.get("role", "").__class__ is str)) \
                and (labels is None or (labels.__class__ is dict and all(
                    k.__class__ is str and v.__class__ is str for k, v in labels.items()))) \
                and (status is None or (status.__class__ is str
                                        and status in MessageStatus._member_map_)) \
                and ((citations := get("citations")) is None
                     or (citations.__class__ is list and not citations)) \
                and message_id.__class__ in _STR_OR_NONE and thread_id.__class__ in _STR_OR_NONE \
                and created_by.__class__ in _STR_OR_NONE:
            new = object.__new__
            author_value = new(Author)
            author_value.__dict__.update({"id": "", "role": ""} if author is None else {
                "id": author.get("id") or "", "role": author.get("role") or ""})
            message = new(Message)
            message.__dict__.update({
                "id": message_id or "", "thread_id": thread_id or "",
                "created_by": created_by or "",
                "created_at": _timestamp(get("createdAt"), path + ".createdAt"),
                "author": author_value, "labels": {} if labels is None else dict(labels),
                "parts": _parts(get("content"), path + ".content"),
                "status": _MESSAGE_UNSPECIFIED if status is None
                else MessageStatus._member_map_[status], "citations": ()})
            return message
    return _decode_message_fields(value, path)


def _decode_message_fields(value: Any, path: str) -> Message:
    obj = _object(value, path)
    author = _object(_get(obj, "author"), path + ".author")
    citations = tuple(
        Citation(tuple(
            _decode_source(_object(s, "%s.citations[%d].sources[%d]" % (path, i, j)),
                           "%s.citations[%d].sources[%d]" % (path, i, j))
            for j, s in enumerate(_list(_get(_object(c, "%s.citations[%d]" % (path, i)), "sources"),
                                        "%s.citations[%d].sources" % (path, i)))
        ))
        for i, c in enumerate(_list(_get(obj, "citations"), path + ".citations"))
    )
    return Message(
        id=_str(_get(obj, "id"), path + ".id"),
        thread_id=_str(_get(obj, "threadId"), path + ".threadId"),
        created_by=_str(_get(obj, "createdBy"), path + ".createdBy"),
        created_at=_timestamp(_get(obj, "createdAt"), path + ".createdAt"),
        author=Author(_str(_get(author, "id"), path + ".author.id"),
                      _str(_get(author, "role"), path + ".author.role")),
        labels=_labels(_get(obj, "labels"), path + ".labels"),
        parts=_parts(_get(obj, "content"), path + ".content"),
        status=_enum(MessageStatus, _get(obj, "status"), path + ".status"),
        citations=citations,
    )


def _decode_error(value: Any, path: str) -> Optional[RunError]:
    if value is None:
        return None
    obj = _object(value, path)
    # a key the service echoes in a run's error is redacted as in error answers
    return RunError(_redact(_str(_get(obj, "message"), path + ".message"), ()),
                    _decode_int64(_get(obj, "code"), path + ".code"))


def _decode_tool_calls(value: Any, path: str) -> Tuple[ToolCall, ...]:
    if value is None:
        return ()
    calls = []
    items = _list(_get(_object(value, path), "toolCalls"), path + ".toolCalls")
    for i, item in enumerate(items):
        where = "%s.toolCalls[%d].functionCall" % (path, i)
        call = _object(_get(_object(item, where), "functionCall"), where)
        arguments = _get(call, "arguments")
        if isinstance(arguments, str):  # some gateways send the Struct as JSON text
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except (ValueError, RecursionError):
                raise _malformed(where + ".arguments", "a JSON object", arguments) from None
        calls.append(ToolCall(FunctionCall(_str(_get(call, "name"), where + ".name"),
                                           _object(arguments, where + ".arguments"))))
    return tuple(calls)


def _decode_usage(value: Any, path: str) -> Optional[Usage]:
    if value is None:
        return None
    obj = _object(value, path)
    get = _getter(obj, _USAGE_KEYS)
    return Usage(_int_at(get, "promptTokens", path) or 0,
                 _int_at(get, "completionTokens", path) or 0,
                 _int_at(get, "totalTokens", path) or 0)


_USAGE_KEYS = frozenset(("promptTokens", "completionTokens", "totalTokens"))
_RESULT_STATE_KEYS = frozenset(("status", "error", "toolCallList", "completedMessage"))
_RUN_KEYS = frozenset(("id", "assistantId", "threadId", "createdBy", "createdAt", "labels",
                       "customCompletionOptions", "customPromptTruncationOptions",
                       "customResponseFormat", "tools", "state", "usage"))


def _getter(obj: Dict[str, Any], camel: "frozenset[str]") -> Callable[[str], Any]:
    """_get of ``obj``: its own get when its keys are all lowerCamelCase names from
    ``camel`` (no snake_case twin to fall back to), one dict lookup per field."""
    return obj.get if obj.keys() <= camel else lambda name: _get(obj, name)


def _decode_result(obj: Dict[str, Any], path: str) -> RunResult:
    state = _object(_get(obj, "state"), path + ".state")
    get = _getter(state, _RESULT_STATE_KEYS)
    completed = get("completedMessage")
    return RunResult(
        status=_enum(RunStatus, get("status"), path + ".state.status"),
        error=_decode_error(get("error"), path + ".state.error"),
        tool_calls=_decode_tool_calls(get("toolCallList"), path + ".state.toolCallList"),
        usage=_decode_usage(_get(obj, "usage"), path + ".usage"),
        completed_message=None if completed is None
        else _decode_message(completed, path + ".state.completedMessage"),
    )


def _decode_truncation(value: Any, path: str) -> Optional[PromptTruncationOptions]:
    if value is None:
        return None
    obj = _object(value, path)
    strategy: Union[str, Dict[str, int], None] = None
    if _get(obj, "autoStrategy") is not None:
        strategy = "auto"
    last = _get(obj, "lastMessagesStrategy")
    if last is not None:
        count = _decode_int64(_get(_object(last, path + ".lastMessagesStrategy"), "numMessages"),
                     path + ".lastMessagesStrategy.numMessages")
        strategy = {"last_messages": count or 0}
    return PromptTruncationOptions(_decode_int64(_get(obj, "maxPromptTokens"), path + ".maxPromptTokens"),
                                   strategy)


def _decode_run(value: Any, cls: Type[RunT], runs: Any, path: str = "Run") -> RunT:
    """A Run (or AsyncRun) from its JSON, bound to ``runs`` for further calls."""
    obj = _object(value, path)
    get = _getter(obj, _RUN_KEYS)
    run_id = _str_at(get, "id", path)
    if not run_id:
        raise MalformedResponseError("%s: the response has no run id" % path)
    completion = _object(get("customCompletionOptions"), path + ".customCompletionOptions")
    result = _decode_result(obj, path)
    tools = get("tools")
    fields = {
        "id": run_id,
        "assistant_id": _str_at(get, "assistantId", path),
        "thread_id": _str_at(get, "threadId", path),
        "created_by": _str_at(get, "createdBy", path),
        "created_at": _timestamp(get("createdAt"), path + ".createdAt"),
        "labels": _labels(get("labels"), path + ".labels"),
        "custom_temperature": _float(_get(completion, "temperature"),
                                     path + ".customCompletionOptions.temperature"),
        "custom_max_tokens": _decode_int64(_get(completion, "maxTokens"),
                                           path + ".customCompletionOptions.maxTokens"),
        "custom_prompt_truncation_options": _decode_truncation(
            get("customPromptTruncationOptions"), path + ".customPromptTruncationOptions"),
        "custom_response_format": get("customResponseFormat")
        if isinstance(get("customResponseFormat"), dict) else None,
        "tools": () if tools is None else tuple(
            _object(t, "%s.tools[%d]" % (path, i))
            for i, t in enumerate(_list(tools, path + ".tools"))),
        "status": result.status,
        "result": result,
        "_runs": runs,
    }
    return _new_run(cls, fields)


def _new_run(cls: Type[RunT], fields: Dict[str, Any]) -> RunT:
    """A Run (or AsyncRun) of ``fields`` (all but _state): what the dataclass __init__ makes,
    without its object.__setattr__ call per field; a subclass's own __init__ is called."""
    if cls.__init__ is not _RunFields.__init__:
        return cls(**fields)
    run = object.__new__(cls)
    run.__dict__.update(fields)
    run.__dict__["_state"] = None
    return run


_STREAM_EVENTS: Dict[str, StreamEvent] = dict(StreamEvent.__members__)
_CAMEL_EVENT_KEYS = frozenset(("eventType", "streamCursor", "partialMessage", "completedMessage",
                               "error", "toolCallList", "usage"))


def _cursor_int(cursor: Dict[str, Any], name: str) -> int:
    """A stream cursor's int64 (in either spelling of its name), 0 when missing."""
    return _int_at(lambda key: _get(cursor, key), name, "StreamEvent.streamCursor") or 0


def _decode_stream_event(obj: Dict[str, Any], previous_text: str) -> RunStreamEvent:
    """A StreamEvent; ``previous_text`` is the text of the stream's last partial message."""
    # The three frozen dataclasses made per event are filled through their __dict__ with
    # every field: the generated __init__ would call object.__setattr__ once per field.
    new = object.__new__
    # the hot path of listen: one dict lookup per field when the gateway speaks camelCase
    # (it names eventType); a snake_case event goes through _get for every field
    get: Callable[[str], Any] = obj.get if obj.keys() <= _CAMEL_EVENT_KEYS else (
        lambda name: _get(obj, name))
    cursor = get("streamCursor")
    index: Any = 0
    users: Any = 0
    if cursor is not None:
        cursor = _object(cursor, "StreamEvent.streamCursor")
        index = _cursor_int(cursor, "currentEventIdx")
        users = _cursor_int(cursor, "numUserEventsReceived")
    partial_json = get("partialMessage")
    partial = None
    if partial_json is not None:
        partial = new(Message)
        partial.__dict__.update({
            "id": "", "thread_id": "", "created_by": "", "created_at": None,
            "author": _NO_AUTHOR, "labels": {},
            "parts": _parts(partial_json, "StreamEvent.partialMessage"),
            "status": _MESSAGE_UNSPECIFIED, "citations": ()})
    completed_json = get("completedMessage")
    completed = None if completed_json is None else _decode_message(
        completed_json, "StreamEvent.completedMessage")
    message = completed or partial
    delta, reset = "", False
    if message is not None:
        text = "\n".join(message.parts)
        if text.startswith(previous_text):
            delta = text[len(previous_text):]
        else:
            delta, reset = text, True
    error, tool_calls, usage = get("error"), get("toolCallList"), get("usage")
    status = get("eventType")
    status = _STREAM_EVENTS.get(status) if status.__class__ is str else None
    stream_cursor = new(StreamCursor)
    stream_cursor.__dict__.update({"current_event_idx": index, "num_user_events_received": users})
    event = new(RunStreamEvent)
    event.__dict__.update({
        "status": status or _enum(StreamEvent, get("eventType"), "StreamEvent.eventType"),
        "error": None if error is None else _decode_error(error, "StreamEvent.error"),
        "tool_calls": () if tool_calls is None else _decode_tool_calls(
            tool_calls, "StreamEvent.toolCallList"),
        "usage": None if usage is None else _decode_usage(usage, "StreamEvent.usage"),
        "stream_cursor": stream_cursor,
        "partial_message": partial,
        "completed_message": completed,
        "delta": delta,
        "delta_reset": reset,
    })
    return event


# every field of a partial Message and of its PARTIAL_MESSAGE event, in field order, each
# with the value _decode_stream_event gives it when the line does not (labels: a new dict)
_PARTIAL_FIELDS: Dict[str, Any] = {
    "id": "", "thread_id": "", "created_by": "", "created_at": None, "author": _NO_AUTHOR,
    "labels": None, "parts": (), "status": MessageStatus.MESSAGE_STATUS_UNSPECIFIED,
    "citations": ()}
_PARTIAL_EVENT_FIELDS: Dict[str, Any] = {
    "status": StreamEvent.PARTIAL_MESSAGE, "error": None, "tool_calls": (), "usage": None,
    "stream_cursor": None, "partial_message": None, "completed_message": None, "delta": "",
    "delta_reset": False}
_DONE_EVENT_FIELDS: Dict[str, Any] = dict(_PARTIAL_EVENT_FIELDS, status=StreamEvent.DONE)
_CURSOR_KEYS = frozenset(("currentEventIdx", "numUserEventsReceived"))


# ============================================================================
# Assistant API wire (sans-IO), 3: the caller's arguments into request bodies
# ============================================================================


def _id_of(value: Any, what: str) -> str:
    """An id from a string or from any object with an ``id``."""
    ident = getattr(value, "id", value) if not isinstance(value, str) else value
    if not isinstance(ident, str):
        raise TypeError("%s must be an id string or an object with an id, not %s"
                        % (what, type(value).__name__))
    if not ident:
        raise ValueError("%s id is empty" % what)
    return ident


def _encode_int64(value: Any, what: str) -> str:
    """A caller's int as the decimal string proto3 JSON sends an int64 as."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (what, type(value).__name__))
    if value < 0:
        raise ValueError("%s must not be negative, got %d" % (what, value))
    return str(value)


def _str_map(value: Any, what: str) -> Dict[str, str]:
    if not isinstance(value, Mapping):
        raise TypeError("%s must be a dict of strings, not %s" % (what, type(value).__name__))
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError("%s must map str to str; %r: %r is not" % (what, k, v))
    return dict(value)


def _message_data(message: Any, index: int, what: str = "additional_messages") -> Dict[str, Any]:
    """A MessageData from a string (a user message) or a dict."""
    where = what if what == "message" else "%s[%d]" % (what, index)
    if isinstance(message, str):
        return {"content": {"content": [{"text": {"content": message}}]}}
    if not isinstance(message, Mapping):
        raise TypeError("%s must be a str or a MessageData dict, not %s"
                        % (where, type(message).__name__))
    data = dict(message)
    content = data.get("content")
    if isinstance(content, str):  # {"content": "text"} is accepted as a shorthand
        data["content"] = {"content": [{"text": {"content": content}}]}
    elif not isinstance(content, Mapping):
        raise ValueError("%s needs a 'content' string or MessageContent, not %s"
                         % (where, "nothing" if content is None else _kind(content)))
    if isinstance(data.get("role"), str):  # {"role": "user", ...} shorthand for author.role
        data.setdefault("author", {"role": data.pop("role").upper()})
    return data


def _tool(tool: Any, index: int) -> Dict[str, Any]:
    """The API's Tool from a function-tool dict, a Tool dict, or a Python function."""
    if callable(tool) and not isinstance(tool, Mapping):
        return function_tool(tool)
    if not isinstance(tool, Mapping):
        raise TypeError("tools[%d] must be a dict or a function, not %s"
                        % (index, type(tool).__name__))
    for kind in ("function", "searchIndex", "genSearch", "search_index", "gen_search"):
        if kind in tool:
            return dict(tool)
    if isinstance(tool.get("name"), str):
        spec: Dict[str, Any] = {"name": tool["name"]}
        if tool.get("description") is not None:
            spec["description"] = str(tool["description"])
        spec["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
        return {"function": spec}
    raise ValueError("tools[%d] needs a 'name' (a function tool) or one of "
                     "'function', 'searchIndex', 'genSearch'" % index)


def _response_format(value: Any) -> Dict[str, Any]:
    if value == "json":
        return {"jsonObject": True}
    if isinstance(value, Mapping):
        if "jsonObject" in value or "jsonSchema" in value:
            return dict(value)
        schema = value.get("json_schema")
        if isinstance(schema, Mapping):
            if "schema" in schema and "properties" not in schema:
                return {"jsonSchema": dict(schema)}
            return {"jsonSchema": {"schema": dict(schema)}}
    raise (ValueError if isinstance(value, (str, Mapping)) else TypeError)(
        'custom_response_format must be "json" or {"json_schema": {...}}, got %r' % (value,))


def _truncation_strategy(value: Any) -> Dict[str, Any]:
    if value == "auto":
        return {"autoStrategy": {}}
    if isinstance(value, Mapping):
        if "autoStrategy" in value or "lastMessagesStrategy" in value:
            return dict(value)
        if "last_messages" in value:
            count = _encode_int64(value["last_messages"],
                           "custom_prompt_truncation_strategy's last_messages")
            return {"lastMessagesStrategy": {"numMessages": count}}
    raise (ValueError if isinstance(value, (str, Mapping)) else TypeError)(
        'custom_prompt_truncation_strategy must be "auto" or {"last_messages": N}, got %r'
        % (value,))


def _encode_create(
    assistant: Any, thread: Any, *, stream: bool, labels: Optional[Mapping[str, str]],
    additional_messages: Optional[Iterable[Any]], custom_temperature: Optional[float],
    custom_max_tokens: Optional[int], custom_max_prompt_tokens: Optional[int],
    custom_prompt_truncation_strategy: Any, custom_response_format: Any,
    tools: Optional[Iterable[Any]], extra_body: Optional[Mapping[str, Any]],
) -> Dict[str, Any]:
    """The CreateRunRequest body: lowerCamelCase, int64 as strings, unset fields omitted."""
    body: Dict[str, Any] = {"assistantId": _id_of(assistant, "assistant"),
                            "threadId": _id_of(thread, "thread")}
    if labels is not None:
        body["labels"] = _str_map(labels, "labels")
    if additional_messages is not None:
        if isinstance(additional_messages, (str, Mapping)):
            additional_messages = [additional_messages]
        elif isinstance(additional_messages, bytes) or not isinstance(additional_messages, Iterable):
            raise TypeError("additional_messages must be a str, a MessageData dict or a list of "
                            "them, not %s" % type(additional_messages).__name__)
        body["additionalMessages"] = [_message_data(m, i)
                                      for i, m in enumerate(additional_messages)]
    completion: Dict[str, Any] = {}
    if custom_temperature is not None:
        if isinstance(custom_temperature, bool) or not isinstance(custom_temperature,
                                                                  (int, float)):
            raise TypeError("custom_temperature must be a number, not %s"
                            % type(custom_temperature).__name__)
        completion["temperature"] = float(custom_temperature)
    if custom_max_tokens is not None:
        completion["maxTokens"] = _encode_int64(custom_max_tokens, "custom_max_tokens")
    if completion:
        body["customCompletionOptions"] = completion
    truncation: Dict[str, Any] = {}
    if custom_max_prompt_tokens is not None:
        truncation["maxPromptTokens"] = _encode_int64(custom_max_prompt_tokens,
                                               "custom_max_prompt_tokens")
    if custom_prompt_truncation_strategy is not None:
        truncation.update(_truncation_strategy(custom_prompt_truncation_strategy))
    if truncation:
        body["customPromptTruncationOptions"] = truncation
    if custom_response_format is not None:
        body["customResponseFormat"] = _response_format(custom_response_format)
    if stream:
        body["stream"] = True
    if not isinstance(stream, bool):
        raise TypeError("stream must be True or False, not %s" % type(stream).__name__)
    if tools is not None:
        if isinstance(tools, Mapping) or callable(tools):
            tools = [tools]
        elif isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
            raise TypeError("tools must be a list of tool dicts or functions, not %s"
                            % type(tools).__name__)
        body["tools"] = [_tool(t, i) for i, t in enumerate(tools)]
    if extra_body is not None:
        if not isinstance(extra_body, Mapping):
            raise TypeError("extra_body must be a dict, not %s" % type(extra_body).__name__)
        body.update(extra_body)
    return body


def _encode_tool_results(tool_results: Any) -> List[Dict[str, Any]]:
    """toolResults from one {"name", "content"} dict or an iterable of them."""
    if isinstance(tool_results, Mapping):
        tool_results = [tool_results]
    elif isinstance(tool_results, (str, bytes)) or not isinstance(tool_results, Iterable):
        raise TypeError('tool_results must be a {"name": ..., "content": ...} dict or an '
                        "iterable of them, not %s" % type(tool_results).__name__)
    encoded = []
    for i, item in enumerate(tool_results):
        if isinstance(item, Mapping) and isinstance(item.get("functionResult"), Mapping):
            item = item["functionResult"]
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise TypeError('tool_results[%d] must be a dict with a "name" string and a '
                            '"content"' % i)
        if "content" not in item:
            raise ValueError('tool_results[%d] (%s) has no "content"' % (i, item["name"]))
        content = item["content"]
        if not isinstance(content, str):
            try:
                content = json.dumps(content, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise TypeError("tool_results[%d] (%s): content is not JSON-serializable: %s"
                                % (i, item["name"], exc)) from None
        encoded.append({"functionResult": {"name": item["name"], "content": content}})
    if not encoded:
        raise ValueError("tool_results is empty")
    return encoded


# ============================================================================
# Assistant API wire (sans-IO), 4: what each call sends, and list pages
# ============================================================================


if TYPE_CHECKING:  # pragma: no cover - at run time a collections.namedtuple, cheaper to make
    class _Request(NamedTuple):
        method: str
        target: str  # path and query under the base URL
        body: Optional[bytes]
        idempotent: bool
else:
    _Request = namedtuple("_Request", "method target body idempotent")


_RUNS = "/assistants/v1/runs"
_RETRY_STATUSES = frozenset((429, 500, 502, 503, 504))


_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def _quote(value: str) -> str:
    """Percent-encoded for a path segment or a query value (every reserved character)."""
    if not value.strip(_UNRESERVED):  # an id, a token: nothing to encode (no import, no call)
        return value
    from urllib.parse import quote

    return quote(value, safe="")


def _json_bytes(body: Any, what: str) -> bytes:
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError("%s is not JSON-serializable: %s" % (what, exc)) from None


def _create_request(body: Dict[str, Any]) -> _Request:
    return _Request("POST", _RUNS, _json_bytes(body, "the create request"), False)


def _get_request(run_id: Any) -> _Request:
    ident = _id_of(run_id, "run")
    if ident in (".", ".."):  # a dot segment: URL normalization would make it another path
        raise ValueError("run id %r is not an id; it would change the request path" % ident)
    return _Request("GET", "%s/%s" % (_RUNS, _quote(ident)), None, True)


def _last_by_thread_request(thread: Any) -> _Request:
    return _Request("GET", "%s:getByThread?threadId=%s" % (_RUNS, _quote(_id_of(thread, "thread"))),
                    None, True)


def _listen_request(run_id: str, events_start_idx: int) -> _Request:
    return _Request("GET", "%s/listen?runId=%s&eventsStartIdx=%d"
                    % (_RUNS, _quote(run_id), events_start_idx), None, True)


def _submit_request(run_id: str, tool_results: Any) -> _Request:
    body = {"runId": run_id, "toolResultList": {"toolResults": _encode_tool_results(tool_results)}}
    return _Request("PATCH", _RUNS + "/submit", _json_bytes(body, "tool_results"), False)


_MAX_TIMEOUT = 1e7  # seconds (116 days): beyond it a socket timeout overflows on some systems


def _check_timeout(timeout: Any, what: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("%s must be a number of seconds, not %s" % (what, type(timeout).__name__))
    if not timeout > 0:
        raise ValueError("%s must be positive, got %r" % (what, timeout))
    if not timeout <= _MAX_TIMEOUT:  # inf and nan too
        raise ValueError("%s must be at most %g seconds, got %r" % (what, _MAX_TIMEOUT, timeout))
    return float(timeout)


def _logs(level: int) -> bool:
    """Whether a record at ``level`` would reach a handler: a record with costly arguments
    asks first. False until the application imports logging."""
    logging = sys.modules.get("logging")
    return logging is not None and logging.getLogger("yc_runs").isEnabledFor(level)


def _log(level: int, message: str, *args: Any) -> None:
    """A record on the ``yc_runs`` logger. An application that has not imported logging has
    configured no handler, so until it does, nothing is imported or formatted here."""
    logging = sys.modules.get("logging")
    if logging is not None:
        logger = logging.getLogger("yc_runs")
        if not _LOGGER_READY:  # a library's logger: nothing reaches logging's last resort
            logger.addHandler(logging.NullHandler())
            _LOGGER_READY.append(True)
        if logger.isEnabledFor(level):
            logger.log(level, message, *args)


_LOGGER_READY: List[bool] = []


def _log_debug(message: str, *args: Any) -> None:
    _log(10, message, *args)


def _log_info(message: str, *args: Any) -> None:
    _log(20, message, *args)


class _Pager:
    """List pages: follow nextPageToken, stop at the first empty one."""

    def __init__(self, folder_id: Optional[str], page_size: Optional[int], path: str = _RUNS,
                 key: str = "runs") -> None:
        if page_size is not None:  # the caller's arguments first, then the configuration
            _encode_int64(page_size, "page_size")
        if not folder_id:  # a missing folder is a missing argument, not a credential problem
            raise ValueError("listing %s needs a folder: pass folder_id= to the client or "
                             "set YC_FOLDER_ID" % key)
        self.path, self.key = path, key
        self.what = "List%sResponse" % key.capitalize()
        self.folder_id = folder_id
        self.page_size = page_size
        self.token: Optional[str] = ""
        self.seen: Set[str] = set()

    def request(self) -> Optional[_Request]:
        if self.token is None:
            return None
        target = "%s?folderId=%s" % (self.path, _quote(self.folder_id))
        if self.page_size is not None:
            target += "&pageSize=%d" % self.page_size
        if self.token:
            target += "&pageToken=" + _quote(self.token)
        return _Request("GET", target, None, True)

    def accept(self, page: Any) -> List[Any]:
        obj = _object(page, self.what)
        token = _str(_get(obj, "nextPageToken"), self.what + ".nextPageToken")
        if token in self.seen:
            raise MalformedResponseError("the service returned page token %r twice" % token[:40])
        self.seen.add(token)
        self.token = token or None
        return _list(_get(obj, self.key), "%s.%s" % (self.what, self.key))


_THREADS = "/assistants/v1/threads"
_MESSAGES = "/assistants/v1/messages"


def _thread_create_request(folder_id: Optional[str], messages: Any, name: Optional[str],
                           labels: Optional[Mapping[str, str]]) -> _Request:
    """Thread.Create: the folder, the first messages, a name and labels."""
    body: Dict[str, Any] = {}
    if messages is not None:
        if isinstance(messages, (str, Mapping)):
            messages = [messages]
        elif isinstance(messages, bytes) or not isinstance(messages, Iterable):
            raise TypeError("messages must be a str, a message dict or a list of them, not %s"
                            % type(messages).__name__)
        body["messages"] = [_message_data(m, i, "messages") for i, m in enumerate(messages)]
    if name is not None:
        if not isinstance(name, str):
            raise TypeError("name must be a str, not %s" % type(name).__name__)
        body["name"] = name
    if labels is not None:
        body["labels"] = _str_map(labels, "labels")
    if not folder_id:
        raise ValueError("creating a thread needs a folder: pass folder_id= to the client or "
                         "set YC_FOLDER_ID")
    body["folderId"] = folder_id
    return _Request("POST", _THREADS, _json_bytes(body, "the thread"), False)


def _message_create_request(thread: Any, message: Any) -> _Request:
    """Message.Create: one message written to the thread."""
    body = _message_data(message, 0, "message")
    body["threadId"] = _id_of(thread, "thread")
    return _Request("POST", _MESSAGES, _json_bytes(body, "the message"), False)


def _decode_thread(value: Any, cls: Type[ThreadT], threads: Any, path: str = "Thread") -> ThreadT:
    obj = _object(value, path)
    thread_id = _str(_get(obj, "id"), path + ".id")
    if not thread_id:
        raise MalformedResponseError("%s: the answer has no thread id" % path)
    return cls(id=thread_id, name=_str(_get(obj, "name"), path + ".name"),
               labels=_labels(_get(obj, "labels"), path + ".labels"),
               created_at=_timestamp(_get(obj, "createdAt"), path + ".createdAt"),
               _threads=threads)


def _decode_message_lines(body: bytes) -> List[Message]:
    """Message.List's answer: one Message a line (bare or as {"result": ...}), newest first."""
    lines = _LineSplitter()
    lines.feed(body + b"\n")
    messages = []
    for i, line in enumerate(lines.take()):
        if not line.strip():
            continue
        try:
            obj = _json_line(line.decode("utf-8"))
        except (ValueError, RecursionError):
            obj = _MALFORMED
        if obj is _MALFORMED:
            raise MalformedResponseError("Message.List line %d is not JSON" % (i + 1))
        if isinstance(obj, dict) and isinstance(obj.get("result"), dict):
            obj = obj["result"]
        messages.append(_decode_message(obj, "Message.List[%d]" % i))
    return messages


# ============================================================================
# Assistant API wire (sans-IO), 5: the Listen stream, NDJSON lines into events once each
# ============================================================================


class _LineSplitter:
    """NDJSON framing: feed bytes, iterate over complete lines (without the newline)."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.pending: List[bytes] = []  # pieces of a line whose newline has not come yet
        self.pending_size = 0
        self.lines: List[bytes] = []
        self.index = 0
        self.max_line = max_line

    def feed(self, data: bytes) -> None:
        if b"\n" not in data:
            self.pending.append(data)
            self.pending_size += len(data)
            return
        if self.pending:
            data = b"".join(self.pending) + data
            self.pending.clear()
        lines = data.split(b"\n")
        tail = lines.pop()
        self.pending_size = len(tail)
        if tail:
            self.pending.append(tail)
        if self.index < len(self.lines):
            lines = self.lines[self.index:] + lines
        self.lines, self.index = lines, 0

    def feed_block(self, data: bytes) -> bytes:
        """The complete lines ``data`` ends, as one block ending in a newline (b"" when it ends
        none). A block longer than max_line, or one behind lines not taken, goes to take()."""
        end = data.rfind(b"\n") + 1
        if not end:
            self.pending.append(data)
            self.pending_size += len(data)
            return b""
        block = data[:end] if end < len(data) else data
        if self.pending:
            block = b"".join(self.pending) + block
            self.pending.clear()
        self.pending_size = len(data) - end
        if self.pending_size:
            self.pending.append(data[end:])
        if len(block) > self.max_line or self.index < len(self.lines):
            lines = block.split(b"\n")
            lines.pop()
            if self.index < len(self.lines):
                lines = self.lines[self.index:] + lines
            self.lines, self.index = lines, 0
            return b""
        return block

    def take(self) -> List[bytes]:
        """All complete lines at once (the listen hot path); an over-long line is raised by
        the call after the one returning the lines before it."""
        lines = self.lines[self.index:] if self.index else self.lines
        self.lines, self.index = [], 0
        if not lines:
            if self.pending_size > self.max_line:
                raise StreamError("a stream line is longer than %d bytes" % self.max_line)
            return lines
        if max(map(len, lines)) > self.max_line:
            good = next(i for i, line in enumerate(lines) if len(line) > self.max_line)
            if good == 0:
                raise StreamError("a stream line is longer than %d bytes" % self.max_line)
            self.lines = lines[good:]
            return lines[:good]
        return lines

    def tail(self) -> bytes:
        return b"".join(self.pending)


class _ListenState:
    """One logical Listen stream across reconnections.

    Feeds body bytes in, gives events out exactly once and in order (whatever cursors the
    server repeats, on one connection or after a reconnection), keeps the cursor to resume
    from, and decides whether a fault is resumable.
    """

    def __init__(self, run_id: str, events_start_idx: int) -> None:
        if isinstance(events_start_idx, bool) or not isinstance(events_start_idx, int) \
                or events_start_idx < 0:
            raise ValueError("events_start_idx must be an int >= 0, got %r" % (events_start_idx,))
        self.run_id = run_id
        self.next_idx = events_start_idx
        self.last_idx: Optional[int] = None
        self.last_event_idx: Optional[int] = None
        self.last_status: Optional[StreamEvent] = None
        self.reconnected = False
        self.text = ""
        self.done = False
        self.fatal = False
        self.failed: Optional[YCRunsError] = None  # raised once the events before it are out
        self.lines = _LineSplitter()
        self.secrets: Callable[[], List[str]] = list  # credentials to keep out of error lines
        self.request_ids: Tuple[Optional[str], Optional[str]] = (None, None)
        # the most listen feeds at once: ~40 usual lines, whose events the caller has before
        # the next slice is decoded; a whole 32 KiB read's ~150 kept events (with their dicts)
        # set off a garbage collection within each read, ~10 % of listen's time
        self.feed_bytes = 8192

    def answered(self, client_request_id: str, request_id: Optional[str]) -> None:
        """The ids of the connection now streaming, for errors it sends in-band."""
        self.request_ids = (client_request_id, request_id)

    def polls_instead(self, exc: BaseException) -> bool:
        return False  # the Assistant API's Listen is the stream: nothing to fall back to

    def streams(self, head: _Head) -> bool:
        return True

    def request(self) -> _Request:
        self.lines = _LineSplitter()
        return _listen_request(self.run_id, self.next_idx)

    def feed(self, data: bytes) -> List[RunStreamEvent]:
        """The events whose lines ``data`` completes. A line that cannot be decoded after
        good ones is raised by the next call, so the events before it are delivered first."""
        if self.failed is not None:
            failed, self.failed = self.failed, None
            raise failed
        events: List[RunStreamEvent] = []
        if self.done:
            return events
        splitter = self.lines
        block = splitter.feed_block(data)
        try:
            if block:
                self._block(block, events)
                if self.done:
                    return events
                if not splitter.lines and splitter.pending_size <= splitter.max_line:
                    return events  # the usual: every line was in the block
            lines = splitter.take()  # lines too long to scan as one block; raises an over-long line
            while lines and not self.done:
                for line in lines:
                    event = self._event(line)
                    if event is not None:
                        events.append(event)
                        if self.done:
                            break
                lines = self.lines.take()
        except YCRunsError as exc:
            if not events:
                raise
            self.failed = exc
        return events

    def end(self) -> List[RunStreamEvent]:
        """The body ended cleanly: a last line without a newline still counts, and a stream
        whose last event is of a type this client does not know (one the service added
        later) is over: a clean end is the server's word, not a broken connection."""
        if self.failed is not None:
            failed, self.failed = self.failed, None
            raise failed
        tail = self.lines.tail()
        self.lines = _LineSplitter()
        event = self._event(tail) if tail else None
        if self.last_status is _EVENT_UNKNOWN:
            self.done = True
        return [] if event is None else [event]

    def _block(self, block: bytes, events: List[RunStreamEvent]) -> None:
        """The events of complete lines, decoded as one text and scanned at offsets; any line
        but a plain ``{"result": {...}}`` object goes through _event, as its own bytes."""
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:  # _event finds the line, after the good ones before it
            for line in block.split(b"\n")[:-1]:
                one = self._event(line)
                if one is not None:
                    events.append(one)
                    if self.done:
                        return
            return
        scan, find, size, pos = _JSON_SCAN, text.find, len(text), 0
        new, partial_message = object.__new__, _EVENT_PARTIAL
        while pos < size:
            end = line_end = find("\n", pos)
            value: Any = None
            try:
                value, end = scan(text, pos)
            except (StopIteration, ValueError, RecursionError):
                pass  # a blank line, a BOM, leading spaces, not JSON: _event says which
            obj: Any = value.get("result") if value.__class__ is dict and len(value) == 1 \
                else None
            event: Any = _MALFORMED  # not built yet
            if obj.__class__ is not dict or (end != line_end and (
                    end > line_end or text[end:line_end].strip())):
                event = self._event(text[pos:line_end].encode("utf-8"))
            # The usual PARTIAL_MESSAGE (one text part) and DONE, with a cursor of decimal
            # strings ({} at first, as the service sends it), are built here as
            # _decode_stream_event and _accept would build them; anything else by those two.
            elif len(obj) == 3 and (cursor := obj.get("streamCursor")).__class__ is dict \
                    and cursor.keys() <= _CURSOR_KEYS \
                    and (index := cursor.get("currentEventIdx", "0")).__class__ is str \
                    and (users := cursor.get("numUserEventsReceived", "0")).__class__ is str \
                    and len(index) < 19 and len(users) < 19 and index.isascii() \
                    and index.isdigit() and users.isascii() and users.isdigit():
                kind = obj.get("eventType")
                if kind == "PARTIAL_MESSAGE":
                    if (partial := obj.get("partialMessage")).__class__ is dict \
                            and (content := partial.get("content")).__class__ is list \
                            and len(content) == 1 and (part := content[0]).__class__ is dict \
                            and (part := part.get("text")).__class__ is dict \
                            and (part := part.get("content")).__class__ is str:
                        idx, last = int(index), self.last_idx
                        if idx < self.next_idx and (last is not None or self.reconnected):
                            event = None  # a cursor already delivered, repeated or replayed
                        else:
                            previous = self.text
                            message = new(Message)
                            fields = message.__dict__
                            fields.update(_PARTIAL_FIELDS)  # a merge of a dict: faster than a literal
                            fields["labels"] = {}
                            fields["parts"] = (part,)
                            stream_cursor = new(StreamCursor)
                            stream_cursor.__dict__.update({"current_event_idx": idx,
                                                           "num_user_events_received": int(users)})
                            event = new(RunStreamEvent)
                            fields = event.__dict__
                            fields.update(_PARTIAL_EVENT_FIELDS)
                            fields["stream_cursor"] = stream_cursor
                            fields["partial_message"] = message
                            if part.startswith(previous):
                                fields["delta"] = part[len(previous):]
                            else:
                                fields["delta"], fields["delta_reset"] = part, True
                            self.text = part
                            self.last_idx = self.last_event_idx = idx if last is None \
                                or idx > last else last
                            self.next_idx = self.last_idx + 1
                            self.last_status = partial_message
                elif kind == "DONE" and (done := obj.get("completedMessage")).__class__ is dict:
                    event = self._done(done, int(index), int(users))
            if event is _MALFORMED:
                try:
                    event = self._accept(_decode_stream_event(obj, self.text))
                except MalformedResponseError as exc:
                    raise StreamError(str(exc), last_event_idx=self.last_idx) from None
            pos = line_end + 1
            if event is not None:
                events.append(event)
                if self.done:
                    return

    def _done(self, completed: Dict[str, Any], idx: int, users: int
              ) -> Optional[RunStreamEvent]:
        """The usual DONE line's event, as _decode_stream_event and _accept would make it
        (once per stream, and its latency is the stream's: no general decoder on the way)."""
        last = self.last_idx
        try:  # first: a malformed message is raised whatever its cursor, as by _event
            message = _decode_message(completed, "StreamEvent.completedMessage")
        except MalformedResponseError as exc:
            raise StreamError(str(exc), last_event_idx=last) from None
        if idx < self.next_idx and (last is not None or self.reconnected):
            return None  # a cursor already delivered, repeated or replayed
        new = object.__new__
        stream_cursor = new(StreamCursor)
        stream_cursor.__dict__.update({"current_event_idx": idx,
                                       "num_user_events_received": users})
        event = new(RunStreamEvent)
        fields = event.__dict__
        fields.update(_DONE_EVENT_FIELDS)
        fields["stream_cursor"] = stream_cursor
        fields["completed_message"] = message
        text, previous = "\n".join(message.parts), self.text
        if text.startswith(previous):
            fields["delta"] = text[len(previous):]
        else:
            fields["delta"], fields["delta_reset"] = text, True
        self.text = text
        self.last_idx = self.last_event_idx = idx if last is None or idx > last else last
        self.next_idx = self.last_idx + 1
        self.last_status = _EVENT_DONE
        self.done = True
        return event

    def _event(self, line: bytes) -> Optional[RunStreamEvent]:
        if not line or line.isspace():
            return None
        if line.startswith(b"\xef\xbb\xbf"):  # a BOM, as json.loads of bytes would allow
            line = line[3:]
        try:
            obj = _json_line(line.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            obj = _MALFORMED
        if obj is _MALFORMED:  # raised outside the except: no JSONDecodeError (with the body) chained
            raise StreamError("malformed stream line: %s"
                              % _redact(repr(line[:80]), self.secrets()),
                              last_event_idx=self.last_idx)
        if not isinstance(obj, dict):
            raise StreamError("stream line is %s, not an object" % _kind(obj),
                              last_event_idx=self.last_idx)
        if "result" in obj:
            obj = obj["result"]
            if not isinstance(obj, dict):
                raise StreamError("stream line's result is %s, not an object" % _kind(obj),
                                  last_event_idx=self.last_idx)
        elif "error" in obj and _get(obj, "eventType") is None:
            self.fatal = True  # the service's own word on this stream: not resumed
            client_id, server_id = self.request_ids
            raise _error_from_body(None, line, {"x-request-id": server_id or ""}, self.secrets(),
                                   client_id)
        try:
            event = _decode_stream_event(obj, self.text)
        except MalformedResponseError as exc:
            message = str(exc)
        else:
            return self._accept(event)
        raise StreamError(message, last_event_idx=self.last_idx)

    def _accept(self, event: RunStreamEvent) -> Optional[RunStreamEvent]:
        idx = event.stream_cursor.current_event_idx
        if idx < self.next_idx and (self.last_idx is not None or self.reconnected):
            return None  # a cursor already delivered, repeated on this connection or replayed
        message = event.completed_message or event.partial_message
        if message is not None:
            self.text = message.text
        self.last_idx = self.last_event_idx = idx if self.last_idx is None else max(idx, self.last_idx)
        self.next_idx = self.last_idx + 1
        self.last_status = event.status
        self.done = event.status in _TERMINAL_EVENTS
        return event

_MALFORMED = object()


def _warm_lines() -> List[bytes]:
    """A made-up Listen body as the service sends one: three partial messages, then DONE."""
    lines = [json.dumps({"result": {
        "eventType": "PARTIAL_MESSAGE", "streamCursor": {"currentEventIdx": str(i)} if i else {},
        "partialMessage": {"content": [{"text": {"content": "Hello, world"[:4 * i + 4]}}]}}}
        ).encode() for i in range(3)]
    lines.append(json.dumps({"result": {
        "eventType": "DONE", "streamCursor": {"currentEventIdx": "3"}, "completedMessage": {
            "id": "m", "threadId": "t", "createdBy": "u", "createdAt": "2025-04-07T14:42:57.152722375Z",
            "author": {"id": "a", "role": "ASSISTANT"},
            "content": {"content": [{"text": {"content": "Hello, world"}}]},
            "status": "COMPLETED"}}}).encode())
    return [line + b"\n" for line in lines]


# ============================================================================
# Responses wire (sans-IO), 1: Response and Conversation JSON into data classes
# ============================================================================

_RESPONSES = "/v1/responses"
_CONVERSATIONS = "/v1/conversations"

if TYPE_CHECKING:  # pragma: no cover - at run time collections.namedtuple, cheaper to make
    class _SSEMessage(NamedTuple):
        event: str  # the event type: the `event:` field, "message" without one
        data: str  # the `data:` lines joined with "\n"
        id: str  # the last event id seen on the connection

    class _ResponseFields(NamedTuple):
        id: str
        status: RunStatus
        result: RunResult
        created_at: Optional[datetime]
        thread_id: str  # the conversation's id, "" for a stateless response
        assistant_id: str  # the model URI, or the saved agent's id
        instructions: Optional[str]
        temperature: Optional[float]
        max_output_tokens: Optional[int]
        response_format: Optional[Dict[str, Any]]  # text.format
        tools: Tuple[Dict[str, Any], ...]
        previous_response_id: Optional[str]

    class _ConversationFields(NamedTuple):
        id: str
        created_at: Optional[datetime]
        metadata: Dict[str, str]

    class _ItemPage(NamedTuple):
        messages: Tuple[Message, ...]  # the message items; other item types are passed over
        has_more: bool
        last_id: Optional[str]  # the `after` for the next page
else:
    _SSEMessage = namedtuple("_SSEMessage", "event data id")
    _ResponseFields = namedtuple("_ResponseFields", "id status result created_at thread_id "
                                 "assistant_id instructions temperature max_output_tokens "
                                 "response_format tools previous_response_id")
    _ConversationFields = namedtuple("_ConversationFields", "id created_at metadata")
    _ItemPage = namedtuple("_ItemPage", "messages has_more last_id")


_RESPONSE_STATUSES = {"queued": RunStatus.PENDING, "in_progress": RunStatus.IN_PROGRESS,
                      "completed": RunStatus.COMPLETED, "incomplete": RunStatus.COMPLETED,
                      "failed": RunStatus.FAILED, "cancelled": RunStatus.FAILED}
_INCOMPLETE_REASONS = {"max_output_tokens": MessageStatus.TRUNCATED,
                       "content_filter": MessageStatus.FILTERED_CONTENT}


def _epoch(value: Any, path: str) -> Optional[datetime]:
    """Seconds since 1970 as a number (1.790262606E9), or milliseconds when over 1e11."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return _timestamp(value, path)  # RFC 3339, in case a gateway rewrites it
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _malformed(path, "seconds since 1970", value)
    last = _LAST_EPOCH  # a response's time, read again: its answer to create or get, then
    if last[0] == value and last[0].__class__ is value.__class__:  # its stream's final event
        return last[1]  # type: ignore[no-any-return]
    if not _DATETIME:
        _warm_decoders()
    make, utc = _DATETIME
    try:
        stamp = make.fromtimestamp(value / 1000.0 if value > 1e11 else value, utc)
    except (OverflowError, OSError, ValueError):
        raise MalformedResponseError("%s: not a valid time: %r" % (path, value)) from None
    _remember_epoch(value, stamp)
    return stamp  # type: ignore[no-any-return]


_LAST_EPOCH: Tuple[Any, Any] = (None, None)  # (seconds, datetime): replaced whole, not changed


def _remember_epoch(value: Any, stamp: Any) -> None:
    global _LAST_EPOCH
    _LAST_EPOCH = (value, stamp)


def _response_error(value: Any, path: str) -> Optional[RunError]:
    """{code, message}: the code is a word ("server_error"), kept in the message."""
    if value is None:
        return None
    obj = _object(value, path)
    message = _redact(_str(obj.get("message"), path + ".message"), ())  # an echoed key, too
    code = obj.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        return RunError(message, code)
    code = _str(code, path + ".code")
    if code and code not in message:
        message = "%s (%s)" % (message, code) if message else code
    return RunError(message or "the response failed")


def _response_arguments(value: Any, path: str) -> Dict[str, Any]:
    if isinstance(value, str):  # the API's own form: JSON text
        try:
            value = json.loads(value) if value.strip() else {}
        except (ValueError, RecursionError):
            raise _malformed(path, "a JSON object", value) from None
    if not isinstance(value, dict):
        raise _malformed(path, "a JSON object", value)
    return value


def _response_citation(value: Any, path: str) -> Optional[Citation]:
    obj = _object(value, path)
    kind = obj.get("type")
    if kind == "url_citation":
        source = Source(url=_str(obj.get("url"), path + ".url"),
                        title=_str(obj.get("title"), path + ".title"))
    elif kind == "file_citation":
        source = Source(file_id=_str(obj.get("file_id"), path + ".file_id"),
                        file_name=_str(obj.get("filename"), path + ".filename"))
    else:
        return None
    return Citation((source,))


def _response_content(value: Any, path: str, citations: Optional[List[Citation]] = None
                      ) -> Tuple[List[str], bool]:
    """The texts of a message item's content (a string or parts) and whether it refused."""
    if isinstance(value, str):
        return [value], False
    texts, refused = [], False
    for i, part in enumerate(value if value.__class__ is list else _list(value, path)):
        if part.__class__ is not dict:
            part = _object(part, "%s[%d]" % (path, i))
        kind = part.get("type")
        if kind in ("output_text", "input_text", "text"):
            text = part.get("text")
            texts.append(text if text.__class__ is str else _str(text, "%s[%d].text" % (path, i)))
            notes = part.get("annotations")
            if citations is not None and notes is not None:
                where = "%s[%d].annotations" % (path, i)
                for j, note in enumerate(_list(notes, where)):
                    citation = _response_citation(note, "%s[%d]" % (where, j))
                    if citation is not None:
                        citations.append(citation)
        elif kind == "refusal":
            texts.append(_str(part.get("refusal"), "%s[%d].refusal" % (path, i)))
            refused = True
    return texts, refused


def _decode_response(value: Any, path: str = "Response") -> _ResponseFields:
    """A Response object (a Get's answer, or inside a terminal event) in the Runs model.
    The usual field types are checked inline; a path is built only for an error."""
    obj = value if value.__class__ is dict else _object(value, path)
    get = obj.get
    response_id = _str_at(get, "id", path)
    if not response_id:
        raise MalformedResponseError("%s: the response has no id" % path)
    name = get("status")
    status = _RUN_UNSPECIFIED if name is None else _RESPONSE_STATUSES.get(
        name if name.__class__ is str else _str(name, path + ".status"), _RUN_UNKNOWN)
    conversation = get("conversation")
    thread_id = "" if conversation is None else conversation if isinstance(conversation, str) \
        else _str_at(_object(conversation, path + ".conversation").get, "id",
                      path + ".conversation")
    prompt = get("prompt")
    if prompt is not None and prompt.__class__ is not dict:
        _object(prompt, path + ".prompt")  # raises
    assistant_id = _str_at(get, "model", path) or (
        "" if prompt is None else _str_at(prompt.get, "id", path + ".prompt"))
    created_at = _epoch(get("created_at"), path + ".created_at")
    incomplete = name == "incomplete"
    parts: List[str] = []
    citations: List[Citation] = []
    calls: List[ToolCall] = []
    message_id, refused, has_message = "", False, False
    output = get("output")
    for i, item in enumerate(output if output.__class__ is list else
                             _list(output, path + ".output")):
        if item.__class__ is not dict:
            item = _object(item, "%s.output[%d]" % (path, i))
        kind = item.get("type")
        if kind == "message":
            has_message = True
            if not message_id:
                message_id = item.get("id")
                if message_id.__class__ is not str:
                    message_id = _str_at(item.get, "id", "%s.output[%d]" % (path, i))
            texts, refusal = _response_content(item.get("content"),
                                               "%s.output[%d].content" % (path, i), citations)
            parts.extend(texts)
            refused = refused or refusal
        elif kind == "function_call":
            where = "%s.output[%d]" % (path, i)
            try:
                arguments = _response_arguments(item.get("arguments"), where + ".arguments")
            except MalformedResponseError:
                if incomplete:  # cut off by max_output_tokens: no call to make
                    continue
                raise
            call_id = _str(item.get("call_id"), where + ".call_id")
            calls.append(ToolCall(FunctionCall(_str(item.get("name"), where + ".name"), arguments),
                                  call_id=call_id or None))
    if status == _RUN_COMPLETED and calls and not incomplete:
        status = _RUN_TOOL_CALLS
    message = None
    if status == _RUN_COMPLETED or (status == _RUN_TOOL_CALLS and has_message):
        message_status = _MESSAGE_COMPLETED
        if incomplete:
            reason = _object(get("incomplete_details"), path + ".incomplete_details").get("reason")
            message_status = _INCOMPLETE_REASONS.get(str(reason), MessageStatus.TRUNCATED)
        elif refused:
            message_status = MessageStatus.FILTERED_CONTENT
        author = object.__new__(Author)  # as _decode_message makes them: no per-field call
        author.__dict__.update({"id": assistant_id, "role": "ASSISTANT"})
        message = object.__new__(Message)
        message.__dict__.update({
            "id": message_id, "thread_id": thread_id, "created_by": "", "created_at": created_at,
            "author": author, "labels": {}, "parts": tuple(parts), "status": message_status,
            "citations": tuple(citations)})
    error = get("error")
    error = None if error is None else _response_error(error, path + ".error")
    if status == _RUN_FAILED and error is None:
        error = RunError("the response was %s" % name)
    counts = get("usage")
    usage = None
    if counts is not None:
        if counts.__class__ is not dict:
            counts = _object(counts, path + ".usage")
        where = path + ".usage"
        usage = Usage(_int_at(counts.get, "input_tokens", where) or 0,
                      _int_at(counts.get, "output_tokens", where) or 0,
                      _int_at(counts.get, "total_tokens", where) or 0)
    text = get("text")
    response_format = None if text is None else _object(text, path + ".text").get("format")
    previous = get("previous_response_id")
    instructions = get("instructions")
    temperature = get("temperature")
    tools = get("tools")
    return _ResponseFields(
        id=response_id, status=status,
        result=RunResult(status, error, tuple(calls), usage, message),
        created_at=created_at, thread_id=thread_id, assistant_id=assistant_id,
        instructions=None if instructions is None else _str(instructions, path + ".instructions"),
        temperature=temperature if temperature.__class__ is float else _float(
            temperature, path + ".temperature"),
        max_output_tokens=_int_at(get, "max_output_tokens", path),
        response_format=None if response_format is None else (
            _object(response_format, path + ".text.format") or None),
        tools=() if not tools and tools.__class__ is list else tuple(
            _object(t, "%s.tools[%d]" % (path, i))
            for i, t in enumerate(_list(tools, path + ".tools"))),
        previous_response_id=None if previous is None else _str(
            previous, path + ".previous_response_id"),
    )


def _decode_response_run(value: Any, cls: Type[RunT], runs: Any, path: str = "Response") -> RunT:
    """A Run (or AsyncRun) from a Response object, bound to ``runs`` for further calls."""
    fields = _decode_response(value, path)
    return _new_run(cls, {
        "id": fields.id, "assistant_id": fields.assistant_id, "thread_id": fields.thread_id,
        "created_by": "", "created_at": fields.created_at, "labels": {},
        "custom_temperature": fields.temperature, "custom_max_tokens": fields.max_output_tokens,
        "custom_prompt_truncation_options": None,
        "custom_response_format": fields.response_format, "tools": fields.tools,
        "status": fields.status, "result": fields.result, "_runs": runs})


def _decode_conversation(value: Any, path: str = "Conversation") -> _ConversationFields:
    obj = _object(value, path)
    conversation_id = _str(obj.get("id"), path + ".id")
    if not conversation_id:
        raise MalformedResponseError("%s: the conversation has no id" % path)
    return _ConversationFields(conversation_id, _epoch(obj.get("created_at"), path + ".created_at"),
                               _labels(obj.get("metadata"), path + ".metadata"))


_ITEM_STATUSES = {"completed": MessageStatus.COMPLETED, "incomplete": MessageStatus.TRUNCATED}


def _decode_items(value: Any, conversation_id: str = "", path: str = "ConversationItemList"
                  ) -> _ItemPage:
    """A list of conversation items: its messages as Messages, and where the next page starts."""
    obj = _object(value, path)
    messages = []
    for i, item in enumerate(_list(obj.get("data"), path + ".data")):
        where = "%s.data[%d]" % (path, i)
        item = _object(item, where)
        if item.get("type", "message") != "message":
            continue  # function calls and their outputs, searches: not messages of a thread
        citations: List[Citation] = []
        texts, refused = _response_content(item.get("content"), where + ".content", citations)
        status = _ITEM_STATUSES.get(str(item.get("status")), MessageStatus.MESSAGE_STATUS_UNSPECIFIED)
        messages.append(Message(
            id=_str(item.get("id"), where + ".id"), thread_id=conversation_id,
            created_at=_epoch(item.get("created_at"), where + ".created_at"),
            author=Author(role=_str(item.get("role"), where + ".role").upper()),
            parts=tuple(texts), citations=tuple(citations),
            status=MessageStatus.FILTERED_CONTENT if refused else status))
    has_more = obj.get("has_more")
    if has_more is not None and not isinstance(has_more, bool):
        raise _malformed(path + ".has_more", "a boolean", has_more)
    last_id = _str(obj.get("last_id"), path + ".last_id") or None
    return _ItemPage(tuple(messages), bool(has_more) and last_id is not None, last_id)


# ============================================================================
# Responses wire (sans-IO), 2: server-sent events, bytes into messages
# ============================================================================


def _warm_messages() -> List[bytes]:
    """A made-up Responses stream as the service sends one: its opening events, three text
    deltas, its closing events."""
    item = {"id": "item-1", "type": "message", "role": "assistant", "status": "in_progress",
            "content": []}
    part = {"type": "output_text", "text": "", "annotations": []}
    response = {"id": "resp-1", "object": "response", "created_at": 1.790262606e9,
                "status": "in_progress", "model": "gpt://folder/yandexgpt/latest", "output": [],
                "error": None, "incomplete_details": None, "instructions": None,
                "temperature": 0.1, "max_output_tokens": None, "previous_response_id": None,
                "conversation": None, "prompt": None, "text": None, "tools": [], "usage": None}
    text = "Hello, world"
    done_part = dict(part, text=text)
    done_item = dict(item, status="completed", content=[done_part])
    events: List[Dict[str, Any]] = [
        {"type": "response.created", "response": response},
        {"type": "response.in_progress", "response": response},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", "item_id": "item-1", "output_index": 0,
         "content_index": 0, "part": part}]
    events += [{"type": "response.output_text.delta", "item_id": "item-1", "output_index": 0,
                "content_index": 0, "delta": text[4 * i:4 * i + 4]} for i in range(3)]
    events += [
        {"type": "response.output_text.done", "item_id": "item-1", "output_index": 0,
         "content_index": 0, "text": text},
        {"type": "response.content_part.done", "item_id": "item-1", "output_index": 0,
         "content_index": 0, "part": done_part},
        {"type": "response.output_item.done", "output_index": 0, "item": done_item},
        {"type": "response.completed", "response": dict(
            response, status="completed", output=[done_item],
            usage={"input_tokens": 15, "output_tokens": 4, "total_tokens": 19})}]
    return [b"data:%s\nevent:%s\n\n" % (json.dumps(dict(event, sequence_number=number)
                                                    ).encode(), event["type"].encode())
            for number, event in enumerate(events, 1)]


class _SSEDecoder:
    """Server-sent events by the WHATWG rules: bytes cut anywhere in, whole messages out.

    An over-long line or bytes that are not UTF-8 raise StreamError, after the messages
    before them have been returned; a message the body ends in the middle of is dropped.
    """

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self.pending: List[bytes] = []  # pieces of a line whose end has not come yet
        self.pending_size = 0
        self.skip_lf = False  # the last piece ended in CR: an LF opening the next is its pair
        self.started = False  # past the first line, where a BOM may sit
        self.event = ""
        self.data: List[str] = []
        self.data_size = 0
        self.last_event_id = ""
        self.retry: Optional[int] = None  # milliseconds, as the server asked
        self.failed: Optional[StreamError] = None

    def feed(self, data: bytes) -> List[_SSEMessage]:
        if self.failed is not None:
            raise self.failed  # the framing is lost: nothing after it can be trusted
        if self.skip_lf:
            self.skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        if b"\r" in data:
            self.skip_lf = data[-1:] == b"\r"
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = data.rfind(b"\n")
        if end < 0:
            self.pending.append(data)
            self.pending_size += len(data)
            if self.pending_size > self.max_line:
                self.failed = StreamError("a stream line is longer than %d bytes" % self.max_line)
                raise self.failed
            return []
        block = data[:end]
        if self.pending:  # one copy of a long line, not two
            self.pending.append(block)
            block = b"".join(self.pending)
            self.pending.clear()
        tail = data[end + 1:]
        self.pending_size = len(tail)
        if tail:
            self.pending.append(tail)
        if len(block) > self.max_line or self.pending_size > self.max_line:
            lines = block.split(b"\n")
            good = next((i for i, line in enumerate(lines) if len(line) > self.max_line),
                        len(lines))
            if good < len(lines) or self.pending_size > self.max_line:
                block = b"\n".join(lines[:good])
                self.failed = StreamError("a stream line is longer than %d bytes" % self.max_line)
                if good == 0:
                    raise self.failed
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.failed = StreamError("the stream is not UTF-8 text: %r"
                                      % block[max(0, exc.start - 20):exc.end + 20])
            good = block.rfind(b"\n", 0, exc.start)  # the lines before it are still good
            if good < 0:
                raise self.failed from None
            text = block[:good].decode("utf-8")
        del block  # a long line is then held as its lines alone, not as bytes and text too
        if not self.started:
            self.started = True
            if text[:1] == "\ufeff":
                text = text[1:]
        text_lines = text.split("\n")
        del text
        messages = self._lines(text_lines)
        if self.failed is not None and not messages:
            raise self.failed
        return messages

    def _lines(self, lines: List[str]) -> List[_SSEMessage]:
        messages: List[_SSEMessage] = []
        data = self.data
        for line in lines:
            if line[:5] == "data:":  # the usual line, as the general rules below take it
                value = line[6:] if line[5:6] == " " else line[5:]
                data.append(value)
                self.data_size += len(value) + 1
                if self.data_size > self.max_line and self.failed is None:
                    self.failed = StreamError("a stream event is longer than %d bytes"
                                              % self.max_line)
                    break
                continue
            if line[:6] == "event:":  # the service's other line, as the rules below take it
                self.event = line[7:] if line[6:7] == " " else line[6:]
                continue
            if not line:  # a blank line dispatches the message collected so far
                if data:
                    messages.append(_SSEMessage(self.event or "message", "\n".join(data),
                                                self.last_event_id))
                    data = self.data = []
                    self.data_size = 0
                self.event = ""
                continue
            colon = line.find(":")
            if colon == 0:
                continue  # a comment, or a keep-alive
            if colon < 0:
                name, value = line, ""
            else:
                name, value = line[:colon], line[colon + 1:]
                if value[:1] == " ":
                    value = value[1:]
            if name == "data":
                data.append(value)
                self.data_size += len(value) + 1
                if self.data_size > self.max_line and self.failed is None:
                    self.failed = StreamError("a stream event is longer than %d bytes"
                                              % self.max_line)
                    break
            elif name == "event":
                self.event = value
            elif name == "id":
                if "\0" not in value:
                    self.last_event_id = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    self.retry = int(value)
        return messages


# ============================================================================
# Responses wire (sans-IO), 3: one response's stream as the Runs model's events
# ============================================================================


def _partial_message(item_id: str, parts: Tuple[str, ...]) -> Message:
    message = object.__new__(Message)  # as in _decode_stream_event: no per-field __setattr__
    fields = message.__dict__
    fields.update(_PARTIAL_FIELDS)
    fields["id"] = item_id
    fields["labels"] = {}
    fields["parts"] = parts
    return message


def _run_stream_event(status: StreamEvent, index: int, result: Optional[RunResult] = None,
                      partial: Optional[Message] = None, delta: str = "",
                      reset: bool = False) -> RunStreamEvent:
    cursor = object.__new__(StreamCursor)
    cursor.__dict__.update({"current_event_idx": index, "num_user_events_received": 0})
    event = object.__new__(RunStreamEvent)
    if result is None and status is _EVENT_PARTIAL:  # a text delta's, per event
        fields = event.__dict__
        fields.update(_PARTIAL_EVENT_FIELDS)
        fields["stream_cursor"] = cursor
        fields["partial_message"] = partial
        fields["delta"] = delta
        fields["delta_reset"] = reset
        return event
    event.__dict__.update({
        "status": status, "error": None if result is None else result.error,
        "tool_calls": () if result is None else result.tool_calls,
        "usage": None if result is None else result.usage, "stream_cursor": cursor,
        "partial_message": partial,
        "completed_message": None if result is None else result.completed_message,
        "delta": delta, "delta_reset": reset})
    return event


_TERMINAL_RESPONSE_EVENTS = frozenset(("response.completed", "response.incomplete",
                                       "response.failed"))
_RESPONSE_EVENT_FIELDS = {  # the object or text each passed-over event carries, when it does
    "response.created": ("response", dict), "response.in_progress": ("response", dict),
    "response.queued": ("response", dict),
    "response.output_item.added": ("item", dict), "response.output_item.done": ("item", dict),
    "response.content_part.added": ("part", dict), "response.content_part.done": ("part", dict),
    "response.output_text.done": ("text", str),
    "response.function_call_arguments.delta": ("delta", str),
    "response.function_call_arguments.done": ("arguments", str),
}


class _EndedEarly(APIConnectionError):
    """A stream the server ended cleanly before its final event."""


class _ResponsesStreamState:
    """One response's SSE stream across reconnections, as the Runs model's events.

    Feed body bytes in; get RunStreamEvents out once each, in order, with
    ``current_event_idx`` = ``offset`` + the event's ``sequence_number``. Events at or
    below ``last_sequence_number`` (``starting_after`` at first) are dropped as repeats.
    Undecodable data raises StreamError once the events before it are out.
    """

    def __init__(self, response_id: Optional[str] = None, *, offset: int = 0,
                 starting_after: int = 0) -> None:
        self.response_id = response_id  # learned from response.created when None
        self.offset = offset  # events of the run before this response
        self.last_sequence_number = starting_after
        self.text = ""  # the text so far: the output_text parts joined with "\n"
        self.parts: List[str] = []
        self.part_index: Dict[Tuple[int, int], int] = {}  # (output_index, content_index)
        self.done = False
        self.response: Optional[_ResponseFields] = None  # from the terminal event
        self.failed: Optional[YCRunsError] = None  # raised once the events before it are out
        self.sse = _SSEDecoder()
        self.secrets: Callable[[], List[str]] = list  # credentials to keep out of error text
        self.fatal = False  # in-band errors end the stream as ERROR events: nothing is fatal
        self.reconnected = False

    @property
    def feed_bytes(self) -> int:
        """The most listen feeds at once. Each text delta's event holds the whole text so far,
        and a slice's events are alive together until the caller has them: 2 KiB (~10 deltas)
        while the text is short, then slices of fewer events, so that together they hold
        about 256 KiB of text, but at least one (a delta is ~200 bytes on the wire)."""
        copies = (1 << 18) // sys.getsizeof(self.text)
        return 2048 if copies >= 10 else 200 * copies if copies > 1 else 256

    @property
    def run_id(self) -> str:
        return self.response_id or "(unnamed)"

    def answered(self, client_request_id: str, request_id: Optional[str]) -> None:
        """The stream has begun (its ids are not needed: errors come as events)."""

    def polls_instead(self, exc: BaseException) -> bool:
        """A service may refuse streaming Gets (Yandex does not say which responses it keeps
        events for): a 4xx but an auth or rate-limit answer, or 501, means poll instead; so
        does a stream the server ended cleanly before a final event (a cancelled response:
        its state tells the end)."""
        if isinstance(exc, _EndedEarly):
            return True
        return isinstance(exc, APIError) and exc.status is not None and (
            (400 <= exc.status < 500 and exc.status not in (401, 403, 429)) or exc.status == 501)

    def streams(self, head: _Head) -> bool:
        """Whether the answer to a streaming Get is a stream (a server that ignores
        ``stream=true`` answers the response as JSON: poll instead)."""
        return "json" not in head.headers.get("content-type", "").lower()

    @property
    def last_event_idx(self) -> Optional[int]:
        return self.offset + self.last_sequence_number if self.last_sequence_number else None

    @property
    def next_offset(self) -> int:
        """The ``offset`` for the stream of the follow-up response that answers this one."""
        return self.offset + self.last_sequence_number

    def request(self) -> _Request:
        """The streaming Get that goes on after the last event delivered, on a new connection."""
        if not self.response_id:
            raise StreamError("the stream broke before it named its response: it cannot be "
                              "resumed")
        self.new_connection()
        return _response_get_request(self.response_id, stream=True,
                                     starting_after=self.last_sequence_number)

    def new_connection(self) -> None:
        """A new body begins: SSE framing starts afresh; the sequence numbers carry on."""
        self.sse = _SSEDecoder()

    def feed(self, data: bytes) -> List[RunStreamEvent]:
        if self.failed is not None:
            failed, self.failed = self.failed, None
            raise failed
        events: List[RunStreamEvent] = []
        if self.done:
            return events
        scan, parts, new = _JSON_SCAN, self.parts, object.__new__
        try:
            for message in self.sse.feed(data):
                text = message.data
                obj: Any = None
                if text[:1] == "{":
                    try:
                        obj, end = scan(text, 0)
                    except (StopIteration, ValueError, RecursionError):
                        obj = None
                    else:
                        if end != len(text):
                            obj = None  # _event says what follows the value
                # The usual text delta (of the one part so far) is built here as _event and
                # _decode would; anything else by them.
                if obj.__class__ is dict and obj.get("type") == "response.output_text.delta" \
                        and (number := obj.get("sequence_number")).__class__ is int \
                        and (delta := obj.get("delta")).__class__ is str \
                        and (output_index := obj.get("output_index")).__class__ is int \
                        and (content_index := obj.get("content_index")).__class__ is int \
                        and len(parts) == 1 \
                        and self.part_index.get((output_index, content_index)) == 0:
                    if number <= self.last_sequence_number:
                        continue  # sent before: a replay after a reconnection
                    parts[0] += delta
                    self.text = parts[0]
                    item_id = obj.get("item_id")
                    partial = new(Message)
                    fields = partial.__dict__
                    fields.update(_PARTIAL_FIELDS)
                    fields["id"] = item_id if item_id.__class__ is str else ""
                    fields["labels"] = {}
                    fields["parts"] = (parts[0],)
                    cursor = new(StreamCursor)
                    cursor.__dict__.update({"current_event_idx": self.offset + number,
                                            "num_user_events_received": 0})
                    delta_event = new(RunStreamEvent)
                    fields = delta_event.__dict__
                    fields.update(_PARTIAL_EVENT_FIELDS)
                    fields["stream_cursor"] = cursor
                    fields["partial_message"] = partial
                    fields["delta"] = delta
                    self.last_sequence_number = number
                    events.append(delta_event)
                    continue
                event = self._event(message) if obj is None else self._object_event(message, obj)
                if event is not None:
                    events.append(event)
                if self.done:
                    break
        except YCRunsError as exc:
            if isinstance(exc, StreamError) and exc.last_event_idx is None:
                exc.last_event_idx = self.last_event_idx
            if not events:
                raise
            self.failed = exc
        return events

    def end(self) -> List[RunStreamEvent]:
        """The body ended cleanly; raises APIConnectionError (resumable) before the final event."""
        if self.failed is not None:
            failed, self.failed = self.failed, None
            raise failed
        if not self.done and self.sse.failed is not None:
            if self.sse.failed.last_event_idx is None:
                self.sse.failed.last_event_idx = self.last_event_idx
            raise self.sse.failed
        if not self.done:
            raise _EndedEarly("the stream of response %s ended before its final event"
                              % (self.response_id or "(unnamed)"))
        return []


    def _event(self, message: _SSEMessage) -> Optional[RunStreamEvent]:
        data = message.data
        if data == "[DONE]" or not data or data.isspace():
            return None
        try:
            obj = _json_line(data)
        except (ValueError, RecursionError):
            raise StreamError("malformed event data: %s" % _redact(repr(data[:80]), self.secrets()),
                              last_event_idx=self.last_event_idx) from None
        return self._object_event(message, obj)

    def _object_event(self, message: _SSEMessage, obj: Any) -> Optional[RunStreamEvent]:
        """The event of a message whose data is the JSON value ``obj``."""
        data = message.data
        if obj.__class__ is not dict:
            raise StreamError("event data is %s, not an object" % _kind(obj),
                              last_event_idx=self.last_event_idx)
        kind = obj.get("type")
        if kind.__class__ is not str:
            kind = message.event
            if kind == "message":
                raise StreamError("an event with no type: %s" % _redact(repr(data[:80]),
                                                                       self.secrets()),
                                  last_event_idx=self.last_event_idx)
        number = obj.get("sequence_number")
        try:
            if number is not None:
                if number.__class__ is not int:
                    number = _decode_int64(number, kind + ".sequence_number") or 0
                if number <= self.last_sequence_number:
                    return None  # sent before: a replay after a reconnection
            event = self._decode(kind, obj, self.offset + (number or self.last_sequence_number))
        except MalformedResponseError as exc:
            raise StreamError(str(exc), last_event_idx=self.last_event_idx) from None
        if number is not None:
            self.last_sequence_number = number
        return event

    def _redacted(self, error: RunError) -> RunError:
        """The server's message without a credential it echoes, as for error answers."""
        message = _redact(error.message, self.secrets())
        return error if message == error.message else RunError(message, error.code)

    def _decode(self, kind: str, obj: Dict[str, Any], index: int) -> Optional[RunStreamEvent]:
        if kind == "response.output_text.delta":
            delta = obj.get("delta")
            if delta.__class__ is not str:
                delta = _str(delta, kind + ".delta")
            output_index, content_index = obj.get("output_index"), obj.get("content_index")
            if output_index.__class__ is not int or content_index.__class__ is not int:
                output_index = _decode_int64(output_index, kind + ".output_index") or 0
                content_index = _decode_int64(content_index, kind + ".content_index") or 0
            key = (output_index, content_index)
            slot = self.part_index.get(key)
            reset = False
            if slot is None:
                slot = self.part_index[key] = len(self.parts)
                self.parts.append(delta)
                if slot:
                    delta = "\n" + delta  # a new part: Message.text joins parts with "\n"
                    self.text += delta
                else:
                    self.text = delta
            elif slot == len(self.parts) - 1:
                self.parts[slot] += delta
                # one part (the usual answer): its text is the text so far, not a second copy
                self.text = self.parts[0] if slot == 0 else self.text + delta
            else:  # more text for an earlier part: the text so far does not just grow
                self.parts[slot] += delta
                self.text = delta = "\n".join(self.parts)
                reset = True
            item_id = obj.get("item_id")
            return _run_stream_event(_EVENT_PARTIAL, index, None, _partial_message(
                item_id if item_id.__class__ is str else "", tuple(self.parts)), delta, reset)
        if kind in _TERMINAL_RESPONSE_EVENTS:
            fields = _decode_response(obj.get("response"), kind + ".response")
            if fields.id and self.response_id is None:
                self.response_id = fields.id
            self.done = True
            result = fields.result
            if kind == "response.failed":
                status = _EVENT_ERROR
                result = dataclasses.replace(result, error=self._redacted(
                    result.error or RunError("the response failed")))
                fields = fields._replace(result=result)
            elif result.tool_calls and kind == "response.completed":
                status = _EVENT_TOOL_CALLS
            else:
                status = _EVENT_DONE
            delta, reset = "", False
            if result.completed_message is not None and status != _EVENT_ERROR:
                text = result.completed_message.text
                if text.startswith(self.text):
                    delta = text[len(self.text):]
                else:
                    delta, reset = text, True
                self.text = text
            self.response = fields
            return _run_stream_event(status, index, result, None, delta, reset)
        if kind == "error":
            self.done = True
            error = self._redacted(_response_error(obj, "error") or RunError("the stream failed"))
            return _run_stream_event(_EVENT_ERROR, index, RunResult(_RUN_FAILED, error))
        expected = _RESPONSE_EVENT_FIELDS.get(kind)
        if expected is not None:
            name, kind_of = expected
            value = obj.get(name)
            if value is not None and value.__class__ is not kind_of:
                raise _malformed("%s.%s" % (kind, name), "an object" if kind_of is dict
                                 else "a string", value)
            if name == "response" and self.response_id is None and value is not None:
                self.response_id = _str(value.get("id"), kind + ".response.id") or None
        return None  # a step the Runs model has no event for, or a type this client does not know


# ============================================================================
# Responses wire (sans-IO), 4: the caller's arguments into requests
# ============================================================================


def _path_id(value: Any, what: str) -> str:
    ident = _id_of(value, what)
    if ident in (".", ".."):  # a dot segment: URL normalization would make it another path
        raise ValueError("%s id %r is not an id; it would change the request path" % (what, ident))
    return _quote(ident)


def _response_model(assistant: Any, folder_id: Optional[str]) -> Dict[str, Any]:
    """``model`` for a model URI or a short model name, ``prompt`` for a saved agent."""
    if isinstance(assistant, Mapping):  # a prompt object: {id, version?, variables?}
        if not isinstance(assistant.get("id"), str) or not assistant["id"]:
            raise ValueError("assistant as a prompt dict needs an 'id' string")
        return {"prompt": dict(assistant)}
    name = _id_of(assistant, "assistant")
    if "://" in name:
        return {"model": name}
    if _AGENT_ID(name) is None:  # "yandexgpt/latest", "yandexgpt-lite": a model of the folder
        if not folder_id:
            raise ValueError("the model name %r needs a folder: pass folder_id= to the client "
                             "or set YC_FOLDER_ID, or give the whole URI gpt://<folder>/%s"
                             % (name, name))
        return {"model": "gpt://%s/%s" % (folder_id, name.strip("/"))}
    return {"prompt": {"id": name}}  # an agent saved in the console


def _AGENT_ID(name: str) -> Optional[Any]:
    """A Yandex Cloud resource id (20 lowercase letters and digits): a saved agent's id."""
    return re.match(r"[a-z0-9]{20}\Z", name)


_INPUT_ROLES = frozenset(("user", "assistant", "system", "developer"))


def _response_item(message: Any, where: str) -> Dict[str, Any]:
    """An input item from a string (a user message), a Message, or a message dict of either API."""
    if isinstance(message, str):
        return {"role": "user", "content": message}
    if isinstance(message, Message):
        author_role = (message.author.role or "user").lower()
        return {"role": author_role if author_role in _INPUT_ROLES else "user",
                "content": message.text}
    if not isinstance(message, Mapping):
        raise TypeError("%s must be a str, a Message or a message dict, not %s"
                        % (where, type(message).__name__))
    if "type" in message and message.get("type") != "message":
        return dict(message)  # a Responses item as it is: function_call_output and the like
    role: Any = message.get("role")
    if role is None:
        author = message.get("author")
        role = author.get("role") if isinstance(author, Mapping) else "user"
    if not isinstance(role, str) or role.lower() not in _INPUT_ROLES:
        raise ValueError("%s: role must be one of %s, got %r"
                         % (where, ", ".join(sorted(_INPUT_ROLES)), role))
    content = message.get("content")
    if isinstance(content, Mapping):  # the Assistant API's MessageContent
        content = "\n".join(_parts(content, where + ".content"))
    elif not isinstance(content, (str, list)):
        raise ValueError("%s needs a 'content' string" % where)
    if message.get("labels"):
        raise UnsupportedOperationError("%s: the Responses API has no labels on messages" % where)
    item = {k: v for k, v in message.items() if k not in ("author", "labels")}
    item.update(role=role.lower(), content=content)
    return item


def _response_input(messages: Any, what: str) -> List[Dict[str, Any]]:
    if isinstance(messages, (str, Mapping, Message)):
        messages = [messages]
    elif not isinstance(messages, Iterable):
        raise TypeError("%s must be a message or an iterable of them, not %s"
                        % (what, type(messages).__name__))
    return [_response_item(m, "%s[%d]" % (what, i)) for i, m in enumerate(messages)]


def _response_tool(tool: Any, index: int) -> Dict[str, Any]:
    """A flat Responses tool from a Python function, the Assistant API's shape, or a flat dict."""
    if callable(tool) and not isinstance(tool, Mapping):
        tool = function_tool(tool)
    if not isinstance(tool, Mapping):
        raise TypeError("tools[%d] must be a dict or a function, not %s"
                        % (index, type(tool).__name__))
    if isinstance(tool.get("type"), str):
        return dict(tool)  # already the Responses shape: function, web_search, file_search
    if isinstance(tool.get("function"), Mapping):
        tool = tool["function"]
    for kind in ("searchIndex", "genSearch", "search_index", "gen_search"):
        if kind in tool:
            raise UnsupportedOperationError(
                "tools[%d]: the Responses API has no %s tool; send {\"type\": \"file_search\", "
                "...} or {\"type\": \"web_search\", ...} instead" % (index, kind))
    if not isinstance(tool.get("name"), str):
        raise ValueError("tools[%d] needs a 'name' (a function tool) or a 'type'" % index)
    flat: Dict[str, Any] = {"type": "function", "name": tool["name"]}
    if tool.get("description") is not None:
        flat["description"] = str(tool["description"])
    flat["parameters"] = tool.get("parameters") or {"type": "object", "properties": {}}
    if tool.get("strict") is not None:
        flat["strict"] = bool(tool["strict"])
    return flat


def _response_text_format(value: Any) -> Dict[str, Any]:
    """text.format from the response format argument: "json", {"json_schema": ...} or the API's."""
    if value in ("text", "json"):
        return {"type": "text" if value == "text" else "json_object"}
    if isinstance(value, Mapping):
        if value.get("type") in ("text", "json_object", "json_schema"):
            return dict(value)
        if value.get("jsonObject"):
            return {"type": "json_object"}
        schema = value.get("json_schema", value.get("jsonSchema"))
        if isinstance(schema, Mapping):
            named = "schema" in schema and "properties" not in schema
            name = str(schema.get("name") or "response") if named else "response"
            body: Dict[str, Any] = {"type": "json_schema", "name": name,
                                    "schema": dict(schema["schema"] if named else schema)}
            if named and schema.get("strict") is not None:
                body["strict"] = bool(schema["strict"])
            return body
    raise ValueError('custom_response_format must be "json" or {"json_schema": {...}}, got %r'
                     % (value,))


def _encode_response_create(
    assistant: Any, thread: Any = None, *, folder_id: Optional[str] = None, stream: bool = False,
    additional_messages: Any = None, instructions: Optional[str] = None,
    custom_temperature: Optional[float] = None, custom_max_tokens: Optional[int] = None,
    custom_response_format: Any = None, tools: Optional[Iterable[Any]] = None,
    background: Optional[bool] = None, store: Optional[bool] = None,
    previous_response_id: Any = None, extra_body: Optional[Mapping[str, Any]] = None,
    labels: Optional[Mapping[str, str]] = None, custom_max_prompt_tokens: Optional[int] = None,
    custom_prompt_truncation_strategy: Any = None,
) -> Dict[str, Any]:
    """The POST /v1/responses body; what the API has no field for raises UnsupportedOperationError."""
    lacking = [name for name, given in (
        ("labels", bool(labels)), ("custom_max_prompt_tokens", custom_max_prompt_tokens is not None),
        ("custom_prompt_truncation_strategy", custom_prompt_truncation_strategy is not None))
        if given]
    if lacking:
        raise UnsupportedOperationError("the Responses API has nothing for %s: a response has "
                                        "no labels and no prompt truncation options"
                                        % ", ".join(lacking))
    body = _response_model(assistant, folder_id)
    if thread is not None:
        body["conversation"] = _id_of(thread, "thread")
    if additional_messages is not None:
        body["input"] = _response_input(additional_messages, "additional_messages")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise TypeError("instructions must be a str, not %s" % type(instructions).__name__)
        body["instructions"] = instructions
    if custom_temperature is not None:
        if isinstance(custom_temperature, bool) or not isinstance(custom_temperature,
                                                                  (int, float)):
            raise TypeError("custom_temperature must be a number, not %s"
                            % type(custom_temperature).__name__)
        body["temperature"] = float(custom_temperature)
    if custom_max_tokens is not None:
        body["max_output_tokens"] = int(_encode_int64(custom_max_tokens, "custom_max_tokens"))
    if tools is not None:
        if isinstance(tools, Mapping) or callable(tools):
            tools = [tools]
        elif isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
            raise TypeError("tools must be a list of tool dicts or functions, not %s"
                            % type(tools).__name__)
        body["tools"] = [_response_tool(t, i) for i, t in enumerate(tools)]
    if custom_response_format is not None:
        body["text"] = {"format": _response_text_format(custom_response_format)}
    if stream:
        body["stream"] = True
    for name, flag in (("background", background), ("store", store)):
        if flag is not None:
            if not isinstance(flag, bool):
                raise TypeError("%s must be a bool, not %s" % (name, type(flag).__name__))
            body[name] = flag
    if previous_response_id is not None:
        body["previous_response_id"] = _id_of(previous_response_id, "previous_response_id")
    if extra_body is not None:
        if not isinstance(extra_body, Mapping):
            raise TypeError("extra_body must be a dict, not %s" % type(extra_body).__name__)
        body.update(extra_body)
    return body


def _tool_results_list(tool_results: Any) -> List[Any]:
    """The caller's tool results as a list: one dict, or an iterable of them."""
    if isinstance(tool_results, Mapping):
        return [tool_results]
    if isinstance(tool_results, (str, bytes)) or not isinstance(tool_results, Iterable):
        raise TypeError('tool_results must be a {"name": ..., "content": ...} dict or an '
                        "iterable of them, not %s" % type(tool_results).__name__)
    return list(tool_results)


def _encode_tool_outputs(tool_results: Any, pending: Sequence[ToolCall]) -> List[Dict[str, Any]]:
    """function_call_output items, each matched to a pending call by call_id or by name."""
    tool_results = _tool_results_list(tool_results)
    unanswered = list(pending)
    known = ", ".join("%s (call_id %s)" % (c.name, c.call_id or c.name) for c in pending) or "none"
    items = []
    for i, result in enumerate(tool_results):
        if isinstance(result, Mapping) and isinstance(result.get("functionResult"), Mapping):
            result = result["functionResult"]
        if not isinstance(result, Mapping):
            raise TypeError("tool_results[%d] must be a dict, not %s" % (i, type(result).__name__))
        call_id, name = result.get("call_id"), result.get("name")
        if call_id is not None:
            if not isinstance(call_id, str):
                raise TypeError("tool_results[%d]: call_id must be a str" % i)
            # a shared call_id (Yandex sets it to the function's name) is answered in order
            matches = [c for c in unanswered if (c.call_id or c.name) == call_id]
            if not matches:
                raise ValueError("tool_results[%d]: no pending call has call_id %r; pending: %s"
                                 % (i, call_id, known))
            if isinstance(name, str) and matches[0].name != name:
                raise ValueError("tool_results[%d]: call_id %r is a call of %r, not of %r"
                                 % (i, call_id, matches[0].name, name))
        elif isinstance(name, str):
            matches = [c for c in unanswered if c.name == name]
            if len(matches) > 1:
                raise ValueError("tool_results[%d]: %d pending calls are named %r; give each "
                                 "result the call_id of its call" % (i, len(matches), name))
            if not matches:
                raise ValueError("tool_results[%d]: no pending call named %r; pending: %s"
                                 % (i, name, known))
            call_id = matches[0].call_id or matches[0].name
        else:
            raise TypeError('tool_results[%d] needs a "name" or a "call_id" string' % i)
        unanswered.remove(matches[0])
        if "content" in result:
            content = result["content"]
        elif "output" in result:
            content = result["output"]
        else:
            raise ValueError('tool_results[%d] (%s) has no "content"' % (i, name or call_id))
        if not isinstance(content, str):
            try:
                content = json.dumps(content, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise TypeError("tool_results[%d] (%s): content is not JSON-serializable: %s"
                                % (i, name or call_id, exc)) from None
        items.append({"type": "function_call_output", "call_id": call_id, "output": content})
    if not items:
        raise ValueError("tool_results is empty")
    return items


def _encode_response_followup(create_body: Mapping[str, Any], response_id: str,
                              tool_results: Any, pending: Sequence[ToolCall]) -> Dict[str, Any]:
    """The next POST /v1/responses of a tool round: the run's settings sent again, the outputs,
    and the link: its conversation, or else ``previous_response_id``."""
    body = {k: v for k, v in create_body.items() if k not in ("input", "previous_response_id")}
    body["input"] = _encode_tool_outputs(tool_results, pending)
    if "conversation" not in body:
        body["previous_response_id"] = response_id
    return body


def _response_create_request(body: Dict[str, Any]) -> _Request:
    return _Request("POST", _RESPONSES, _json_bytes(body, "the create request"), False)


def _response_get_request(response_id: Any, *, stream: bool = False,
                          starting_after: Optional[int] = None) -> _Request:
    """GET /v1/responses/{id}; with ``stream``, its events after ``starting_after`` as SSE."""
    target = "%s/%s" % (_RESPONSES, _path_id(response_id, "response"))
    if stream:
        target += "?stream=true"
        if starting_after:
            target += "&starting_after=%s" % _encode_int64(starting_after, "starting_after")
    return _Request("GET", target, None, True)


def _response_cancel_request(response_id: Any) -> _Request:
    # cancelling twice leaves the response as cancelling once does: safe to retry
    return _Request("POST", "%s/%s/cancel" % (_RESPONSES, _path_id(response_id, "response")),
                    None, True)


def _conversation_create_request(messages: Any = None,
                                 metadata: Optional[Mapping[str, str]] = None) -> _Request:
    body: Dict[str, Any] = {}
    if messages is not None:
        body["items"] = _response_input(messages, "messages")
    if metadata:
        body["metadata"] = _str_map(metadata, "metadata")
    return _Request("POST", _CONVERSATIONS, _json_bytes(body, "the conversation"), False)


def _conversation_get_request(conversation_id: Any) -> _Request:
    return _Request("GET", "%s/%s" % (_CONVERSATIONS, _path_id(conversation_id, "conversation")),
                    None, True)


def _conversation_add_items_request(conversation_id: Any, messages: Any) -> _Request:
    body = {"items": _response_input(messages, "messages")}
    return _Request("POST", "%s/%s/items" % (_CONVERSATIONS, _path_id(conversation_id,
                                                                      "conversation")),
                    _json_bytes(body, "the items"), False)


def _conversation_items_request(conversation_id: Any, *, after: Optional[str] = None,
                                limit: Optional[int] = None,
                                order: Optional[str] = None) -> _Request:
    """GET /v1/conversations/{id}/items; ``after`` is the last id of the page before."""
    query = []
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise ValueError("limit must be an int from 1 to 100, got %r" % (limit,))
        query.append("limit=%d" % limit)
    if order is not None:
        if order not in ("asc", "desc"):
            raise ValueError('order must be "asc" or "desc", got %r' % (order,))
        query.append("order=" + order)
    if after is not None:
        query.append("after=" + _quote(_id_of(after, "after")))
    target = "%s/%s/items" % (_CONVERSATIONS, _path_id(conversation_id, "conversation"))
    return _Request("GET", target + ("?" + "&".join(query) if query else ""), None, True)


# ============================================================================
# Error answers (sans-IO): every body shape, Retry-After, credentials redacted
# ============================================================================


def _error_from_body(
    status: Optional[int], body: bytes, headers: Mapping[str, str], secrets: Sequence[str],
    client_request_id: Optional[str] = None,
) -> APIError:
    """An APIError from any of the error body shapes, with credentials redacted."""
    message, grpc_code, http_code = "", None, None
    try:
        obj: Any = json.loads(body) if body.strip() else None
    except (ValueError, RecursionError):
        obj = None
    if isinstance(obj, dict):
        inner: Dict[str, Any] = obj["error"] if isinstance(obj.get("error"), dict) else obj
        message = inner["message"] if isinstance(inner.get("message"), str) else ""
        for key in ("grpcCode", "grpc_code", "code"):
            if isinstance(inner.get(key), int) and not isinstance(inner.get(key), bool):
                grpc_code = inner[key]
                break
        code = inner.get("httpCode", inner.get("http_code"))
        if code is None and "title" in inner:  # RFC 7807: {type, title, status, detail}
            code = inner.get("status")
            for key in ("detail", "title"):
                if not message and isinstance(inner.get(key), str):
                    message = inner[key]
        http_code = code if isinstance(code, int) and not isinstance(code, bool) else None
        if not message and isinstance(obj.get("error"), str):
            message = obj["error"]
    elif body.strip():
        text = body.decode("utf-8", "replace")
        title = re.search(r"<title>(.*?)</title>", text, re.I | re.S)
        snippet = title.group(1) if title else re.sub(r"<[^>]*>", " ", text)
        message = "non-JSON error body: " + " ".join(snippet.split())[:120]
    if status is None:
        status = http_code or _GRPC_TO_HTTP.get(grpc_code or -1)
    if not message:
        message = "HTTP %s with no error message" % status
    cls = _ERROR_CLASSES.get(status or 0, ServerError if (status or 0) >= 500 else APIError)
    return cls(
        _redact(message, secrets),
        status=status,
        grpc_code=grpc_code,
        request_id=_redact(headers.get("x-request-id", ""), secrets) or None,
        client_request_id=client_request_id,
        retry_after=_retry_after(headers.get("retry-after")),
    )


# a quoted value after "api key"/"token", or a value after an auth scheme, as services echo them
_ECHOED_KEY = (
    r"""(?i)((?:api[ _-]?key|token)\s*[:=]?\s*['"])[^'"]+(?=['"])|((?:Api-Key|Bearer)\s+)[\w.~+/=-]{8,}""")


def _redact(text: str, secrets: Sequence[str]) -> str:
    """The text without any credential: the ones we sent, and any the server quotes."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return re.sub(_ECHOED_KEY, lambda m: (m.group(1) or m.group(2)) + "***", text)


_MONTHS = {m: i for i, m in enumerate(
    "jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


def _retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Retry-After in seconds, from delta-seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    match = re.match(r"\w{3}, (\d\d) (\w{3}) (\d{4}) (\d\d):(\d\d):(\d\d) GMT\Z", value)
    if match is None or match.group(2).lower() not in _MONTHS:
        return None
    day, month, year, hour, minute, second = match.groups()
    from datetime import datetime, timezone

    try:
        when = datetime(int(year), _MONTHS[month.lower()], int(day), int(hour), int(minute),
                        int(second), tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
    return max(0.0, when - (time.time() if now is None else now))


def _decode_json_body(status: int, body: bytes, headers: Mapping[str, str],
                      client_request_id: Optional[str], secrets: Sequence[str] = ()) -> Any:
    try:
        if body[:1] == b"{":  # the usual: no BOM, no leading space, an object
            return _json_line(body.decode("utf-8", "surrogatepass"))  # as json.loads decodes
        return json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):  # deep nesting makes json raise RecursionError
        text = body[:200].decode("utf-8", "replace")
        snippet = _redact(" ".join(re.sub(r"<[^>]*>", " ", text).split())[:80], secrets)
        raise MalformedResponseError(
            "the response is not JSON (%s): %r" % (headers.get("content-type", "no content type"),
                                                   snippet),
            status=status, request_id=headers.get("x-request-id"),
            client_request_id=client_request_id) from None


def _error_answer(options: "_Options", head: _Head, body: bytes, request_id: str) -> APIError:
    """The APIError of a non-2xx answer; a redirect is refused, never followed."""
    if 300 <= head.status < 400:
        from urllib.parse import urlsplit

        where = urlsplit(head.headers.get("location", "")).netloc or "an unknown place"
        return APIError("the server redirected to %s; redirects are not followed, so the "
                        "credential stays with %s" % (where, options.origin.host),
                        status=head.status, request_id=head.headers.get("x-request-id"),
                        client_request_id=request_id)
    return _error_from_body(head.status, body, head.headers, options.credentials._secrets(),
                            request_id)


def _answer(options: "_Options", head: _Head, body: bytes, request_id: str, raw: bool = False) -> Any:
    """The JSON (with ``raw``, the bytes) of a successful (2xx) response; raises the
    APIError of any other. A body over _MAX_BODY_BYTES is malformed when successful, and
    an error's is cut there."""
    if not 200 <= head.status < 300:
        raise _error_answer(options, head, body[:_MAX_BODY_BYTES], request_id)
    if len(body) > _MAX_BODY_BYTES:
        raise MalformedResponseError("the response is over %d bytes" % _MAX_BODY_BYTES,
                                     status=head.status,
                                     request_id=head.headers.get("x-request-id"),
                                     client_request_id=request_id)
    if raw:
        return body
    return _decode_json_body(head.status, body, head.headers, request_id,
                             options.credentials._secrets())


# ============================================================================
# Plans (sans-IO), 1: the policies: when to retry, resume and poll, and for how long
# ============================================================================


def _jitter() -> float:
    return int.from_bytes(os.urandom(2), "big") / 65536.0


_MAX_RETRY_AFTER = 60.0  # a server asking for longer gets its error raised at once


_MAX_RETRY_DELAY = 8.0


def _backoff(attempt: int, retry_after: Optional[float] = None, first: float = 0.5) -> float:
    """Retry-After when the server gives one, else ``first`` (the client's retry_delay)
    doubling to 8 s, less up to a quarter of jitter."""
    if retry_after is not None:
        return float(min(retry_after, _MAX_RETRY_AFTER))
    return float(min(first * 2.0 ** attempt, _MAX_RETRY_DELAY) * (1 - 0.25 * _jitter()))


def _check_retry_delay(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("retry_delay must be a number of seconds, not %s" % type(value).__name__)
    if not 0 <= value <= _MAX_RETRY_DELAY:  # nan too
        raise ValueError("retry_delay must be between 0 and %g seconds, got %r"
                         % (_MAX_RETRY_DELAY, value))
    return float(value)


class _Retry:
    """Which failures of one call to retry, and after how long."""

    def __init__(self, max_retries: int, idempotent: bool, first_delay: float = 0.5) -> None:
        self.max_retries = max_retries
        self.idempotent = idempotent
        self.first_delay = first_delay
        self.retries = 0
        self.stale_retried = False

    def delay(self, exc: BaseException) -> Optional[float]:
        """Seconds to wait before the next attempt, or None to raise ``exc``."""
        retry_after = None
        if isinstance(exc, APIConnectionError) and not exc.retryable:
            retryable = False
        elif isinstance(exc, APIConnectionError):
            if exc.reused and self.idempotent and not self.stale_retried:
                self.stale_retried = True  # a keep-alive connection the server had closed
                return 0.0
            retryable = not exc.connected or (
                self.idempotent and not isinstance(exc, APITimeoutError))
        elif isinstance(exc, APIError):
            # 429: the service refused the call unprocessed, so even create and submit are safe
            retryable = exc.status == 429 or (self.idempotent and exc.status in _RETRY_STATUSES)
            retry_after = exc.retry_after
            if retry_after is not None and retry_after > _MAX_RETRY_AFTER:
                retryable = False  # the caller decides whether to wait that long
        else:
            retryable = False
        if not retryable or self.retries >= self.max_retries:
            return None
        self.retries += 1
        return _backoff(self.retries - 1, retry_after, self.first_delay)


class _Resume:
    """Whether a broken stream goes on, after how long, and what the caller gets when it
    does not; for either wire's stream state."""

    def __init__(self, stream: Any, config: "_Options", resume: bool) -> None:
        self.stream = stream
        self.max_retries = config.max_retries if resume else 0
        self.first_delay = config.retry_delay
        self.failures = 0
        self.stale_retried = False
        credentials = config.credentials
        self.refresh: Optional[Callable[[], None]] = \
            credentials._invalidate if credentials.refreshes else None  # after a 401, once
        stream.secrets = credentials._secrets

    def progressed(self) -> None:
        self.failures = 0

    def delay(self, exc: BaseException) -> float:
        """Seconds before reconnecting after ``exc``; raises when the stream cannot go on:
        the error itself for an HTTP error answer (so ``except ServerError`` works around
        listen as around get), StreamError when the connection kept breaking."""
        stream = self.stream
        if isinstance(exc, AuthenticationError) and self.refresh is not None and not stream.fatal:
            self.refresh()  # one new token, as for the other calls
            self.refresh = None
            return 0.0
        resumable = (isinstance(exc, APIConnectionError) and exc.retryable) or (
            isinstance(exc, APIError) and exc.status in _RETRY_STATUSES
            and (exc.retry_after or 0) <= _MAX_RETRY_AFTER)
        if not resumable or stream.fatal:
            raise exc
        if isinstance(exc, APIConnectionError) and exc.reused and not self.stale_retried:
            self.stale_retried = True  # a kept-alive connection the server had closed: once,
            return 0.0                 # at once, whatever max_retries says (as unary calls do)
        last = stream.last_event_idx
        if self.failures >= self.max_retries:
            if isinstance(exc, APIError):
                raise exc
            where = ("after event %d" % last) if last is not None else "before its first event"
            raise StreamError("the stream of run %s broke %s: %s"
                              % (stream.run_id, where, exc), last_event_idx=last) from exc
        self.failures += 1
        stream.reconnected = True
        retry_after = exc.retry_after if isinstance(exc, APIError) else None
        _log_info("listen of run %s: %s; resuming after event %s (attempt %d of %d)",
                  stream.run_id, exc, "-" if last is None else last, self.failures,
                  self.max_retries)
        if self.failures == 1 and retry_after is None and last is not None:
            return 0.0  # the first reconnection after progress is immediate
        return _backoff(self.failures - 1, retry_after, self.first_delay)


class _Waiter:
    """Polling for ``wait``: when to stop, how long to sleep, when to give up.

    ``answered`` is the TOOL_CALLS result whose tool results were just submitted: a
    service whose reads lag its writes may show it again, and it is not a new round until
    the run has been seen in another state or asks something else.
    """

    def __init__(self, run_id: str, poll_timeout: Optional[float],
                 poll_interval: Optional[float], now: float,
                 answered: Optional[RunResult] = None) -> None:
        self.run_id = run_id
        self.poll_timeout = 300.0 if poll_timeout is None else _check_timeout(
            poll_timeout, "poll_timeout")
        self.poll_interval = 0.5 if poll_interval is None else _check_timeout(
            poll_interval, "poll_interval")
        self.deadline = now + self.poll_timeout
        self.status = RunStatus.RUN_STATUS_UNSPECIFIED
        self.answered = answered

    def result(self, run: _RunFields) -> Optional[RunResult]:
        self.status = run.status
        answered = self.answered
        if answered is not None:
            if run.status != RunStatus.TOOL_CALLS:
                self.answered = None  # moved on: any later TOOL_CALLS is a new round
            elif run.result.tool_calls == answered.tool_calls \
                    and run.result.usage == answered.usage:
                return None  # still the round just answered
        return run.result if run.status.is_finished else None

    def timed_out(self) -> WaitTimeoutError:
        if self.status == RunStatus.RUN_STATUS_UNSPECIFIED:
            return WaitTimeoutError("run %s: no poll was answered within %.1f s of waiting"
                                    % (self.run_id, self.poll_timeout),
                                    run_id=self.run_id, status=self.status)
        return WaitTimeoutError("run %s is still %s after %.1f s of waiting"
                                % (self.run_id, self.status.name, self.poll_timeout),
                                run_id=self.run_id, status=self.status)

    def sleep_time(self, now: float) -> float:
        remaining = self.deadline - now
        if remaining <= 0:
            raise self.timed_out()
        return min(self.poll_interval, remaining)


# The plans: each workflow is a generator that yields what it needs from its driver (an
# exchange opened, a body read, a sleep, a tool called, events handed to the caller) and
# is sent the outcome, or has the failure thrown into it. Every decision is here; the
# drivers (Client._drive, AsyncClient._drive) only perform.

# ============================================================================
# Plans (sans-IO), 2: what a workflow yields, and the call, listen and wait plans
# ============================================================================


if TYPE_CHECKING:  # pragma: no cover
    class _Open(NamedTuple):  # send request; answered with (its _Head, its x-client-request-id)
        request: _Request
        deadline: float  # time.monotonic() by which the head must be in
        warm: Optional[Callable[[], None]] = None  # work to do while the head is on its way

    class _Read(NamedTuple):  # answered with the next body piece (b"" at the end), or with
        deadline: float       # `limit` the rest of the body, more than `limit` bytes meaning
        limit: Optional[int]  # it was over (the connection is then dropped)

    class _Sleep(NamedTuple):
        seconds: float

    class _Emit(NamedTuple):  # events for the caller of listen
        events: List[RunStreamEvent]

    class _Invoke(NamedTuple):  # call a tool's function; answered with its value
        function: Callable[..., Any]
        arguments: Dict[str, Any]
        name: str

    class _Fetch(NamedTuple):  # one request to a token service, within `timeout` seconds;
        method: str            # answered with (status, body) (the body read to the cap)
        url: str
        headers: List[Tuple[str, str]]
        body: Optional[bytes]
        timeout: float

    from typing import Generator
    Plan = Generator[Any, Any, T]
else:
    _Open = namedtuple("_Open", "request deadline warm", defaults=(None,))
    _Read = namedtuple("_Read", "deadline limit")
    _Sleep = namedtuple("_Sleep", "seconds")
    _Emit = namedtuple("_Emit", "events")
    _Invoke = namedtuple("_Invoke", "function arguments name")
    _Fetch = namedtuple("_Fetch", "method url headers body timeout")

_LINGER = 0.25  # seconds a stream gets to end after its final event


class _Stepper:
    """A plan as its driver runs it: the next need, then its value or its error."""

    __slots__ = ("error", "plan", "value")

    def __init__(self, plan: "Plan[Any]") -> None:
        self.plan = plan
        self.value: Any = None
        self.error: Optional[BaseException] = None

    def send(self, answer: Any) -> Any:
        """What the plan needs next after ``answer``; None once it has ended."""
        try:
            return self.plan.send(answer)
        except StopIteration as stop:
            self.value = stop.value
        except Exception as exc:
            self.error = exc
        return None

    def throw(self, failure: BaseException) -> Any:
        """What the plan needs next after ``failure`` of what it asked for."""
        try:
            return self.plan.throw(failure)
        except StopIteration as stop:
            self.value = stop.value
        except Exception as exc:
            self.error = exc
        return None

    def outcome(self) -> Any:
        error, self.error = self.error, None
        if error is not None:
            _scrub(error)
            raise error
        return self.value


def _scrub(exc: BaseException) -> None:
    """Nothing a credential could hide in leaves with an exception: suppressed contexts are
    dropped (a JSONDecodeError keeps the whole body) and the finished frames of its traceback
    lose their locals (request bytes, token answers), for tracebacks printed with locals and
    error trackers that capture them."""
    seen: Set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if current.__suppress_context__:
            current.__context__ = None
        tb = current.__traceback__
        while tb is not None:
            try:
                tb.tb_frame.clear()
            except RuntimeError:  # still running: a driver or the caller, holding no secret
                pass
            tb = tb.tb_next
        current = current.__cause__ or current.__context__


def _token_plan(config: "_Options", deadline: float) -> "Plan[str]":
    """A new token from the credential's token service (IAM, metadata), as the header to
    send: within the call's deadline, the answer decoded and cached by the credential. A
    token service that cannot be reached is a CredentialsError naming it. The driver holds
    the credential's lock around this plan (a thread lock, or one asyncio lock a loop)."""
    credentials = config.credentials
    method, url, headers, body = credentials._token_request()
    try:
        status, answer = yield _Fetch(method, url, headers, body,
                                      _token_timeout(credentials, deadline, config.clock()))
    except APIConnectionError as exc:
        raise CredentialsError("cannot get an IAM token from %s: %s"
                               % (url.split("?")[0], exc)) from None
    return credentials._accept(status, answer, config.clock())


def _call_plan(config: "_Options", request: _Request, timeout: Optional[float],
               until: Optional[float] = None, raw: bool = False) -> "Plan[Any]":
    """The JSON answer to ``request``. Each attempt has ``timeout`` seconds from connect to
    its last body byte; retried as its kind allows, after one token refresh for a 401;
    the whole call, retries included, ends by ``until`` or the client's total_timeout."""
    clock = config.clock
    seconds = config.seconds(timeout)
    started = clock()
    if config.total_timeout is not None:
        until = min(until or math.inf, started + config.total_timeout)
    retry: Optional[_Retry] = None  # made by the first failure
    refreshed = False
    while True:
        begun = clock()
        deadline = begun + seconds if until is None else min(begun + seconds, until)
        try:
            head, request_id = yield _Open(request, deadline)
            body = yield _Read(deadline, _MAX_BODY_BYTES)
            if _logs(10):
                _log_debug("%s %s: HTTP %d in %.3f s (x-client-request-id %s, x-request-id %s)",
                           request.method, request.target.split("?")[0], head.status,
                           clock() - begun, request_id, head.headers.get("x-request-id", "-"))
            return _answer(config, head, body, request_id, raw)
        except AuthenticationError:
            if refreshed or not config.credentials.refreshes:
                raise
            refreshed = True
            config.credentials._invalidate()
        except (APIError, APIConnectionError) as exc:
            retry = retry or _Retry(config.max_retries, request.idempotent, config.retry_delay)
            delay = retry.delay(exc)
            if delay is None or (until is not None and clock() + delay >= until):
                raise
            _log_info("%s %s failed: %s; retrying in %.2f s (retry %d of %d)",
                      request.method, request.target.split("?")[0], exc, delay,
                      retry.retries, retry.max_retries)
            yield _Sleep(delay)


def _listen_plan(config: "_Options", state: Any, seconds: float, resume: _Resume,
                 run: Optional["_RunState"] = None, deliver_from: int = 0) -> "Plan[None]":
    """Listen's events, each exactly once across reconnections, for either wire's stream
    ``state``. ``seconds`` is the longest wait for the next event: a stall is a drop, resumed
    like one. After the final event the stream has _LINGER seconds to end, whatever the
    server goes on sending. A service that refuses streaming Gets is polled instead."""
    clock = config.clock
    pump = _Pump(state, resume, run, deliver_from, seconds)
    while not state.done:
        deadline = clock() + seconds
        try:
            request = state.request()
            head, request_id = yield _Open(request, deadline, _warm_up(config))
            state.answered(request_id, head.headers.get("x-request-id"))
            _log_debug("%s %s: HTTP %d, streaming (x-client-request-id %s, x-request-id %s)",
                       request.method, request.target.split("?")[0], head.status, request_id,
                       head.headers.get("x-request-id", "-"))
            if not 200 <= head.status < 300:
                body = yield _Read(deadline, _MAX_BODY_BYTES)
                raise _error_answer(config, head, body[:_MAX_BODY_BYTES], request_id)
            if run is not None and not state.streams(head):
                yield from config.wire.poll_final(config, state, seconds, run)
                return
            pump.deadline, pump.piece = deadline, b""
            yield pump  # answered once the body has ended; the errors of its reads come here
            if not state.done:
                events = pump.end()
                if events:
                    yield _Emit(events)
                if not state.done:
                    raise APIConnectionError("the stream ended before its final event")
        except (APIError, APIConnectionError) as exc:
            if state.done:
                return
            if run is not None and state.polls_instead(exc):
                yield from config.wire.poll_final(config, state, seconds, run)
                return
            yield _Sleep(resume.delay(exc))


class _Pump:
    """A need: the driver reads the streaming body's pieces and hands on the events that
    feed() makes of them, until the body ends (the plan is then answered None) or a read or
    a line fails (that error is raised in the plan). Between pieces only the driver runs:
    an event's way from its bytes to the caller passes no plan step."""

    __slots__ = ("deadline", "deliver_from", "piece", "resume", "run", "seconds", "start",
                 "state", "wait")

    def __init__(self, state: Any, resume: _Resume, run: Optional["_RunState"],
                 deliver_from: int, seconds: float) -> None:
        self.state = state
        self.resume = resume
        self.run = run
        self.deliver_from = deliver_from  # the first index handed on (0: all)
        self.seconds = seconds
        self.wait = seconds  # for the next event; after the final one, the linger
        self.deadline = 0.0  # for the first read of a connection: its head's
        self.piece = b""  # a piece read and not yet fed to its end
        self.start = 0

    def feed(self, piece: Optional[bytes]) -> Optional[List[RunStreamEvent]]:
        """The events of ``piece`` (None: of the rest of the piece held), fed in slices: the
        events of one slice are all alive until the caller has them, and each holds the text
        so far. [] when the piece is used up; None at the end of the body."""
        if piece is not None:
            if not piece:
                return None
            self.piece, self.start = piece, 0
        piece, start, state = self.piece, self.start, self.state
        size, step = len(piece), state.feed_bytes
        while start < size:
            last = state.last_event_idx
            events: List[RunStreamEvent] = state.feed(
                piece[start:start + step] if start or size > step else piece)
            start += step
            if start < size:
                self.start = start
            else:
                self.piece = b""  # used up: the driver reads next, with no call back here
            if state.last_event_idx != last and self.resume.failures:
                self.resume.progressed()  # the stream went on (a status event delivers nothing)
            if events:
                if self.deliver_from or state.done:
                    events = self._deliver(events)
                    if not events:
                        continue
                elif self.run is not None:  # the usual event, as _deliver would hand it on
                    self.run.saw(events)
                return events
        self.piece = b""
        return []

    def end(self) -> List[RunStreamEvent]:
        """The events of a clean end of the body (a last line without its newline)."""
        events = self.state.end()
        return self._deliver(events) if events else events

    def _deliver(self, events: List[RunStreamEvent]) -> List[RunStreamEvent]:
        if self.deliver_from:
            events, self.deliver_from = _from_index(events, self.deliver_from)
            if self.state.done and self.deliver_from:
                raise ValueError("events_start_idx %d is past the run's last event %d"
                                 % (self.deliver_from, self.state.last_event_idx or 0))
            if not events:
                return events
        if self.run is not None:
            self.run.saw(events)
        if self.state.done:
            self.wait = min(self.seconds, _LINGER)
        return events


_WARMED: Set[str] = set()  # the wires this process has listened on


def _warm_up(config: "_Options") -> Optional[Callable[[], None]]:
    """The wire's warm-up, the first time this process listens on it (else None)."""
    wire = config.wire
    if wire.name in _WARMED:
        return None

    def warm() -> None:  # marked when it runs: a first listen that never sent leaves it due
        _WARMED.add(wire.name)
        wire.warm(config)

    return warm


def _warm_listen(config: "_Options", new_state: Callable[[], Any], pieces: List[bytes]) -> None:
    """Listen's path from the body's bytes to events (framing, the wire's decoder, the
    pump), over a made-up stream, 10 times. Run while a process's first listen waits for
    its answer: Python quickens a function in its first calls (its 8th costs ~3x the next
    ones) and specializes it over the next, which would otherwise fall on the stream's
    first events, and once a stream on its final one."""
    for _ in range(10):
        state = new_state()
        pump = _Pump(state, _Resume(state, config, False), _RunState("warm-up"), 0, 60.0)
        exchange = _Exchange(config.origin, "GET", False, 60.0)
        exchange.feed(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        exchange.next_event()
        for piece in pieces:
            exchange.feed(b"%x\r\n%s\r\n" % (len(piece), piece))
            data = exchange.next_event()
            assert isinstance(data, bytes)
            events = pump.feed(data)
            while events and pump.piece:
                events = pump.feed(None)
        if not state.done:
            raise AssertionError("the warm-up stream did not end")  # pragma: no cover


def _from_index(events: List[RunStreamEvent], first: int) -> Tuple[List[RunStreamEvent], int]:
    """The events from index ``first`` of a stream replayed to rebuild the text so far: the
    first one delivered carries that whole text as its delta, as a listen from an index does
    on the Assistant API; 0 once it is out (nothing more to drop)."""
    kept = [e for e in events if e.stream_cursor.current_event_idx >= first]
    if not kept:
        return kept, first
    kept[0] = dataclasses.replace(kept[0], delta=kept[0].text or "", delta_reset=False)
    return kept, 0


def _new_listen(config: "_Options", run: "_RunState", events_start_idx: int,
                timeout: Optional[float], resume: bool) -> "Plan[None]":
    """The listen plan of the run's wire, its arguments checked now rather than at the
    first event."""
    return config.wire.listen(config, run, events_start_idx, config.seconds(timeout), resume)  # type: ignore[no-any-return]


def _wait_plan(config: "_Options", run_id: str, timeout: Optional[float],
               poll_timeout: Optional[float], poll_interval: Optional[float],
               answered: Optional[RunResult] = None,
               run: Optional["_RunState"] = None) -> "Plan[RunResult]":
    """Poll until the run is finished. ``poll_timeout`` bounds the whole wait, a poll in
    flight included: past it, WaitTimeoutError."""
    waiter = _Waiter(run_id, poll_timeout, poll_interval, config.clock(), answered)
    request = config.wire.get_request(run_id)
    while True:
        try:
            obj = yield from _call_plan(config, request, timeout, waiter.deadline)
        except APIConnectionError:
            if config.clock() < waiter.deadline:
                raise
            timed_out = True
        else:
            timed_out = False
            result = waiter.result(config.wire.fields(obj))
            if result is not None:
                if run is not None:
                    run.result(result)
                return result
        if timed_out:  # raised outside the except: the poll's own timeout is not the story
            raise waiter.timed_out()
        yield _Sleep(waiter.sleep_time(config.clock()))


# ============================================================================
# Plans (sans-IO), 3: a run's state; tool rounds, submits, create, get and threads
# ============================================================================


def _tools_plan(config: "_Options", run: "_RunState", functions: Any, max_rounds: int,
                timeout: Optional[float], poll_timeout: Optional[float],
                poll_interval: Optional[float]) -> "Plan[RunResult]":
    """``run_tools``: wait, answer each round's calls once, submit, until the run finishes."""
    loop = _ToolLoop(functions, max_rounds)
    result = yield from _wait_plan(config, run.ids[-1], timeout, poll_timeout, poll_interval,
                                   run=run)
    while result.status == RunStatus.TOOL_CALLS:
        outputs = []
        for call in loop.calls(result):
            try:
                function, arguments = loop.target(call)
                value = yield _Invoke(function, arguments, call.name)
                outputs.append(loop.output(call, value))
            except _AsyncInSyncError:
                raise
            except Exception as exc:  # the model gets the error and can recover
                outputs.append(loop.failure(call, exc))
        answered = run.ids[-1]
        yield from config.wire.submit(config, run, outputs, timeout)
        # the same run may still show the round just answered; a follow-up response cannot
        result = yield from _wait_plan(config, run.ids[-1], timeout, poll_timeout, poll_interval,
                                       answered=result if run.ids[-1] == answered else None,
                                       run=run)
    return result


class _RunState:
    """What a Run remembers between calls: its ids (one on the Assistant API; on Responses,
    each response of its chain, newest last), where each response's events start on the run's
    one cursor, the settings a follow-up sends again, the tool calls waiting for results."""

    __slots__ = ("echo", "highest", "ids", "offsets", "pending", "settings", "stream")

    def __init__(self, run_id: str, settings: Optional[Dict[str, Any]] = None,
                 stream: bool = True) -> None:
        self.ids = [run_id]
        self.offsets = [0]
        self.settings = settings
        self.echo: Any = None  # a fetched response, whose settings a follow-up would send again
        self.pending: Optional[Tuple[ToolCall, ...]] = None
        self.stream = stream
        self.highest = 0  # the highest stream cursor handed to the caller

    def saw(self, events: List[RunStreamEvent]) -> None:
        """Events a listen delivered (in their cursors' order, as it delivers them)."""
        last = events[-1]
        if last.stream_cursor.current_event_idx > self.highest:
            self.highest = last.stream_cursor.current_event_idx
        if last.status is _EVENT_TOOL_CALLS:
            self.pending = last.tool_calls

    def result(self, result: RunResult) -> None:
        if result.status == RunStatus.TOOL_CALLS:
            self.pending = result.tool_calls

    def follow(self, response_id: str) -> None:
        """A follow-up answers the newest response: the run goes on under its id."""
        self.ids.append(response_id)
        self.offsets.append(max(self.highest, self.offsets[-1]))
        self.pending = None


def _newest(run: _RunFields) -> str:
    """The id the run goes on under (on Responses, the newest response of its chain, which
    another Run object of the same run may have moved on); ``run.id`` follows it."""
    newest = _state_of(run).ids[-1]
    if run.id != newest:
        object.__setattr__(run, "id", newest)
    return newest


def _state_of(run: _RunFields) -> "_RunState":
    """The run's _RunState, made on first use for a Run built from an id."""
    state = run._state
    if state is None:
        state = _RunState(run.id)
        object.__setattr__(run, "_state", state)
    return state  # type: ignore[no-any-return]


def _create_plan(config: "_Options", cls: Type[RunT], runs: Any, assistant: Any, thread: Any,
                 options: Dict[str, Any], timeout: Optional[float]) -> "Plan[RunT]":
    request, state = config.wire.create_request(config, assistant, thread, options)
    obj = yield from _call_plan(config, request, timeout)
    return config.wire.run(obj, cls, runs, state)  # type: ignore[no-any-return]


def _get_plan(config: "_Options", cls: Type[RunT], runs: Any, run_id: Any,
              timeout: Optional[float], state: Optional["_RunState"] = None) -> "Plan[RunT]":
    obj = yield from _call_plan(config, config.wire.get_request(run_id), timeout)
    return config.wire.run(obj, cls, runs, state)  # type: ignore[no-any-return]


def _last_by_thread_plan(config: "_Options", cls: Type[RunT], runs: Any, thread: Any,
                         timeout: Optional[float]) -> "Plan[RunT]":
    obj = yield from _call_plan(config, config.wire.last_by_thread_request(thread), timeout)
    return config.wire.run(obj, cls, runs)  # type: ignore[no-any-return]


def _thread_plan(config: "_Options", cls: Type[ThreadT], threads: Any, request: _Request,
                 timeout: Optional[float]) -> "Plan[ThreadT]":
    obj = yield from _call_plan(config, request, timeout)
    return config.wire.thread(obj, cls, threads)  # type: ignore[no-any-return]


def _write_plan(config: "_Options", thread: Any, message: Any,
                timeout: Optional[float]) -> "Plan[Message]":
    request = config.wire.thread_write_request(thread, message)
    obj = yield from _call_plan(config, request, timeout)
    return config.wire.message(obj, _id_of(thread, "thread"))  # type: ignore[no-any-return]


# ============================================================================
# Wires: each dialect behind the one interface the plans call (sans-IO)
# ============================================================================


def _unsupported(wire: str, what: str, why: str) -> UnsupportedOperationError:
    return UnsupportedOperationError("%s: not on the %s API (api=%r): %s"
                                     % (what, "Responses" if wire == "responses" else "Assistant",
                                        wire, why))


class _AssistantsWire:
    """The Assistant API (``/assistants/v1``): Runs and Threads, NDJSON streams."""

    name = "assistants"
    base_url = "https://rest-assistant.api.cloud.yandex.net"
    folder_header = "x-folder-id"

    def create_request(self, config: "_Options", assistant: Any, thread: Any,
                       options: Dict[str, Any]) -> Tuple[_Request, _RunState]:
        instructions = options.pop("instructions")
        if instructions is not None:
            raise _unsupported(self.name, "instructions=", "a run takes the assistant's own "
                               "instructions; change them on the assistant")
        if thread is None:
            raise TypeError("thread is required on the Assistant API (a run belongs to a thread)")
        body = _encode_create(assistant, thread, **options)
        return _create_request(body), _RunState("", stream=bool(options["stream"]))

    def fields(self, obj: Any) -> Any:
        """An answer's status and result, for wait."""
        return _decode_run(obj, _RunFields, None)

    def run(self, obj: Any, cls: Type[RunT], runs: Any, state: Optional[_RunState] = None,
            path: str = "Run") -> RunT:
        run = _decode_run(obj, cls, runs, path)
        state = state or _RunState(run.id)
        state.ids[-1] = state.ids[-1] or run.id
        object.__setattr__(run, "_state", state)
        return run

    def get_request(self, run_id: Any) -> _Request:
        return _get_request(run_id)

    def last_by_thread_request(self, thread: Any) -> _Request:
        return _last_by_thread_request(thread)

    def pager(self, folder_id: Optional[str], page_size: Optional[int]) -> _Pager:
        return _Pager(folder_id, page_size)

    def listen(self, config: "_Options", state: _RunState, events_start_idx: int,
               seconds: float, resume: bool) -> "Plan[None]":
        stream = _ListenState(state.ids[-1], events_start_idx)
        return _listen_plan(config, stream, seconds, _Resume(stream, config, resume), state)

    def submit(self, config: "_Options", state: _RunState, tool_results: Any,
               timeout: Optional[float]) -> "Plan[Any]":
        request = _submit_request(state.ids[-1], tool_results)
        return _call_plan(config, request, timeout)

    def warm(self, config: "_Options") -> None:
        _warm_listen(config, lambda: _ListenState("warm-up", 0), _warm_lines())

    def poll_final(self, config: "_Options", stream: Any, seconds: float,
                   state: _RunState) -> "Plan[None]":
        # _ListenState streams every answer and never asks to poll instead
        raise AssertionError("the Assistant API's Listen is always a stream")  # pragma: no cover

    def cancel_request(self, run_id: str) -> _Request:
        raise _unsupported(self.name, "cancel", "the Runs API has no cancel operation; a run "
                           "ends by itself (the official SDK's cancel() raises too)")

    # threads: ThreadService and MessageService
    def thread_create_request(self, config: "_Options", messages: Any, name: Optional[str],
                              labels: Optional[Mapping[str, str]]) -> _Request:
        return _thread_create_request(config.folder_id, messages, name, labels)

    def thread(self, obj: Any, cls: Type[ThreadT], threads: Any) -> ThreadT:
        return _decode_thread(obj, cls, threads)

    def thread_get_request(self, thread: Any) -> _Request:
        return _Request("GET", "%s/%s" % (_THREADS, _path_id(thread, "thread")), None, True)

    def thread_write_request(self, thread: Any, message: Any) -> _Request:
        return _message_create_request(thread, message)

    def message(self, obj: Any, thread_id: str) -> Message:
        return _decode_message(obj, "Message")

    def messages_plan(self, config: "_Options", thread: Any,
                      timeout: Optional[float]) -> "Plan[List[Message]]":
        request = _Request("GET", "%s?threadId=%s" % (_MESSAGES, _quote(_id_of(thread, "thread"))),
                           None, True)
        body = yield from _call_plan(config, request, timeout, raw=True)
        return _decode_message_lines(body)

    def thread_delete_request(self, thread: Any) -> _Request:
        return _Request("DELETE", "%s/%s" % (_THREADS, _path_id(thread, "thread")), None, True)

    def thread_pager(self, folder_id: Optional[str], page_size: Optional[int]) -> _Pager:
        return _Pager(folder_id, page_size, _THREADS, "threads")


# the two plans only the Responses wire has: a submit is a follow-up response, and a
# response that cannot be streamed is polled to its final event


def _responses_submit_plan(config: "_Options", state: _RunState, tool_results: Any,
                           timeout: Optional[float]) -> "Plan[Any]":
    """A follow-up response carrying the outputs for the pending calls; the run goes on under
    the follow-up's id."""
    response_id = state.ids[-1]
    tool_results = _tool_results_list(tool_results)  # a caller's mistake is raised before a Get
    if not tool_results:
        raise ValueError("tool_results is empty")
    if state.pending is None or (state.settings is None and state.echo is None):
        obj = yield from _call_plan(config, _response_get_request(response_id), timeout)
        fields = _decode_response(obj)  # the calls (or the settings) are not known: ask
        if fields.status != RunStatus.TOOL_CALLS:
            raise ValueError("run %s is %s, not waiting for tool results"
                             % (response_id, fields.status.name))
        state.pending, state.echo = fields.result.tool_calls, obj
    if state.settings is None:
        state.settings = _response_settings(state.echo)  # made only when a submit needs them
    body = _encode_response_followup(state.settings or {}, response_id, tool_results,
                                     state.pending)
    obj = yield from _call_plan(config, _response_create_request(body), timeout)
    fields = _decode_response(obj)
    state.follow(fields.id)
    return obj


def _poll_final_plan(config: "_Options", stream: "_ResponsesStreamState", seconds: float,
                     state: _RunState) -> "Plan[None]":
    """Listen without a stream: poll until the response is finished, then its final event
    (on the run's cursor, after the events already handed on)."""
    result = yield from _wait_plan(config, stream.response_id or state.ids[-1], seconds,
                                   max(300.0, seconds), None)
    status = {RunStatus.COMPLETED: StreamEvent.DONE, RunStatus.TOOL_CALLS: StreamEvent.TOOL_CALLS
              }.get(result.status, StreamEvent.ERROR)
    text = result.text or ""
    delta, reset = (text[len(stream.text):], False) if text.startswith(stream.text) \
        else (text, True)
    index = stream.offset + stream.last_sequence_number + 1
    events = [_run_stream_event(status, index, result, None, delta, reset)]
    state.saw(events)
    yield _Emit(events)

class _ResponsesWire:
    """The Responses and Conversations APIs (``/v1``): a run is a chain of responses, a
    thread a conversation, a stream SSE."""

    name = "responses"
    base_url = "https://ai.api.cloud.yandex.net"
    folder_header = "OpenAI-Project"

    def create_request(self, config: "_Options", assistant: Any, thread: Any,
                       options: Dict[str, Any]) -> Tuple[_Request, _RunState]:
        stream = options.pop("stream")
        if not isinstance(stream, bool):
            raise TypeError("stream must be True or False, not %s" % type(stream).__name__)
        body = _encode_response_create(assistant, thread, folder_id=config.folder_id,
                                       background=True, **options)
        # background: create answers at once, as on the Assistant API; listen streams with a Get
        settings = {k: v for k, v in body.items() if k not in ("input", "stream")}
        return _response_create_request(body), _RunState("", settings, stream)

    def fields(self, obj: Any) -> Any:
        return _decode_response(obj)

    def run(self, obj: Any, cls: Type[RunT], runs: Any, state: Optional[_RunState] = None,
            path: str = "Response") -> RunT:
        run = _decode_response_run(obj, cls, runs, path)
        if state is None:
            state = _RunState(run.id)
            state.echo = obj
        state.ids[-1] = state.ids[-1] or run.id  # a fresh create's; else the chain's stays
        if run.id == state.ids[-1]:
            state.result(run.result)
        object.__setattr__(run, "_state", state)
        return run

    def get_request(self, run_id: Any) -> _Request:
        return _response_get_request(_id_of(run_id, "run"))

    def last_by_thread_request(self, thread: Any) -> _Request:
        raise _unsupported(self.name, "get_last_by_thread", "a conversation does not list its "
                           "responses; keep the run's id")

    def pager(self, folder_id: Optional[str], page_size: Optional[int]) -> _Pager:
        raise _unsupported(self.name, "list", "there is no list of responses (neither Yandex's "
                           "API nor the OpenAI API has one)")

    def listen(self, config: "_Options", state: _RunState, events_start_idx: int,
               seconds: float, resume: bool) -> "Plan[None]":
        if isinstance(events_start_idx, bool) or not isinstance(events_start_idx, int) \
                or events_start_idx < 0:
            raise ValueError("events_start_idx must be an int >= 0, got %r" % (events_start_idx,))
        offset = state.offsets[-1]
        # from a later index the text so far is not known: the response's stream is replayed
        # (an increment says nothing of the text before it) and delivered from that index
        stream = _ResponsesStreamState(state.ids[-1], offset=offset)
        policy = _Resume(stream, config, resume)
        if not state.stream:  # created with stream=False: only the final event, as runs have it
            return _poll_final_plan(config, stream, seconds, state)
        first = events_start_idx if events_start_idx > offset + 1 else 0
        return _listen_plan(config, stream, seconds, policy, state, first)

    def submit(self, config: "_Options", state: _RunState, tool_results: Any,
               timeout: Optional[float]) -> "Plan[Any]":
        return _responses_submit_plan(config, state, tool_results, timeout)

    def warm(self, config: "_Options") -> None:
        _warm_listen(config, lambda: _ResponsesStreamState("warm-up"), _warm_messages())

    def poll_final(self, config: "_Options", stream: Any, seconds: float,
                   state: _RunState) -> "Plan[None]":
        return _poll_final_plan(config, stream, seconds, state)

    def cancel_request(self, run_id: str) -> _Request:
        return _response_cancel_request(_id_of(run_id, "run"))

    # threads: Conversations
    def thread_create_request(self, config: "_Options", messages: Any, name: Optional[str],
                              labels: Optional[Mapping[str, str]]) -> _Request:
        metadata = dict(_str_map(labels, "labels")) if labels is not None else {}
        if "name" in metadata:
            raise ValueError('labels has a "name" key: on Responses a conversation keeps the '
                             "thread's name there; pass name= instead")
        if name is not None:
            if not isinstance(name, str):
                raise TypeError("name must be a str, not %s" % type(name).__name__)
            metadata["name"] = name  # a conversation has no name: it is kept in its metadata
        return _conversation_create_request(messages, metadata)

    def thread(self, obj: Any, cls: Type[ThreadT], threads: Any) -> ThreadT:
        fields = _decode_conversation(obj)
        labels = {k: v for k, v in fields.metadata.items() if k != "name"}
        return cls(id=fields.id, name=fields.metadata.get("name", ""), labels=labels,
                   created_at=fields.created_at, _threads=threads)

    def thread_get_request(self, thread: Any) -> _Request:
        return _conversation_get_request(_id_of(thread, "thread"))

    def thread_write_request(self, thread: Any, message: Any) -> _Request:
        return _conversation_add_items_request(_id_of(thread, "thread"), [message])

    def message(self, obj: Any, thread_id: str) -> Message:
        page = _decode_items(obj, thread_id)
        if not page.messages:
            raise MalformedResponseError("the conversation's answer to new items holds no message")
        return page.messages[0]

    def messages_plan(self, config: "_Options", thread: Any,
                      timeout: Optional[float]) -> "Plan[List[Message]]":
        thread_id = _id_of(thread, "thread")
        messages: List[Message] = []
        after: Optional[str] = None
        seen: Set[str] = set()
        while True:
            obj = yield from _call_plan(config, _conversation_items_request(
                thread_id, after=after, limit=100), timeout)
            page = _decode_items(obj, thread_id)
            messages.extend(page.messages)
            if not page.has_more:
                return messages
            if page.last_id in seen:
                raise MalformedResponseError("the service returned the page after %r twice"
                                             % page.last_id)
            seen.add(page.last_id or "")
            after = page.last_id

    def thread_delete_request(self, thread: Any) -> _Request:
        raise _unsupported(self.name, "threads.delete", "Yandex marks deleting a conversation "
                           "[CURRENTLY NOT SUPPORTED]")

    def thread_pager(self, folder_id: Optional[str], page_size: Optional[int]) -> _Pager:
        raise _unsupported(self.name, "threads.list", "there is no list of conversations")


_WIRES: Dict[str, Any] = {"assistants": _AssistantsWire(), "responses": _ResponsesWire()}


def _response_settings(obj: Any) -> Dict[str, Any]:
    """What a follow-up of a response fetched with Get sends again, from the response's echo."""
    obj = obj if isinstance(obj, dict) else {}
    settings: Dict[str, Any] = {"background": True}
    for name in ("model", "instructions", "temperature", "max_output_tokens", "tool_choice",
                 "parallel_tool_calls", "max_tool_calls"):
        if obj.get(name) is not None:
            settings[name] = obj[name]
    prompt = obj.get("prompt")
    if isinstance(prompt, dict) and prompt.get("id"):
        settings["prompt"] = {k: v for k, v in prompt.items() if k in ("id", "version", "variables")}
    text = obj.get("text")
    if isinstance(text, dict) and text.get("format") is not None:
        settings["text"] = {"format": text["format"]}
    conversation = obj.get("conversation")
    if isinstance(conversation, dict) and conversation.get("id"):
        settings["conversation"] = conversation["id"]
    elif isinstance(conversation, str) and conversation:
        settings["conversation"] = conversation
    tools = obj.get("tools")
    if isinstance(tools, list) and tools:
        settings["tools"] = [{k: v for k, v in tool.items()
                              if k in ("type", "name", "description", "parameters", "strict",
                                       "vector_store_ids", "max_num_results")
                              and v is not None}
                             for tool in tools if isinstance(tool, dict)]
    return settings


# ============================================================================
# Tool rounds and handler callbacks
# ============================================================================


class _ToolLoop:
    """``run_tools``: which function answers which call, and how results are encoded."""

    def __init__(self, functions: Any, max_rounds: int) -> None:
        if isinstance(functions, Mapping):
            table = dict(functions)
        elif isinstance(functions, Iterable) and not isinstance(functions, (str, bytes)):
            table = {getattr(f, "__name__", repr(f)): f for f in functions}
        else:
            raise TypeError("functions must map tool names to callables, not %s"
                            % type(functions).__name__)
        for name, function in table.items():
            if not callable(function):
                raise TypeError("functions[%r] is not callable" % (name,))
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise ValueError("max_rounds must be an int >= 1, got %r" % (max_rounds,))
        self.functions: Dict[str, Callable[..., Any]] = table
        self.max_rounds = max_rounds
        self.rounds = 0

    def calls(self, result: RunResult) -> Tuple[ToolCall, ...]:
        if self.rounds >= self.max_rounds:
            raise ToolLoopError("the run still asks for tools after %d rounds" % self.rounds,
                                rounds=self.rounds, result=result)
        self.rounds += 1
        return result.tool_calls

    def target(self, call: ToolCall) -> Tuple[Callable[..., Any], Dict[str, Any]]:
        """The function for ``call`` and its keyword arguments."""
        function = self.functions.get(call.name)
        if function is None:
            raise LookupError("no function named %r; known: %s"
                              % (call.name, ", ".join(sorted(self.functions)) or "none"))
        return function, _coerce_arguments(function, call.arguments)

    @staticmethod
    def output(call: ToolCall, value: Any) -> Dict[str, Any]:
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, default=str)
        return _ToolLoop.result(call, value)

    @staticmethod
    def failure(call: ToolCall, exc: BaseException) -> Dict[str, Any]:
        message = "%s: %s" % (type(exc).__name__, exc)
        return _ToolLoop.result(call, json.dumps({"error": message}, ensure_ascii=False))

    @staticmethod
    def result(call: ToolCall, content: str) -> Dict[str, Any]:
        """A result for ``call``: by name, and by call_id where the wire has one (two calls
        of one function are told apart by it, answered in order when they share it)."""
        result = {"name": call.name, "content": content}
        if call.call_id is not None:
            result["call_id"] = call.call_id
        return result


def _is_awaitable(value: Any) -> bool:
    return hasattr(value, "__await__")


class _AsyncInSyncError(TypeError):
    """An async callable given to the sync client: a mistake to raise, not to send the model."""


def _not_awaitable(value: Any, name: str) -> Any:
    if _is_awaitable(value):
        close = getattr(value, "close", None)
        if callable(close):
            close()  # no "never awaited" warning on top of the error
        raise _AsyncInSyncError("%s is async: use AsyncClient (AsyncRun) for async functions"
                                % name)
    return value


def _handler_calls(handler: Any, event: RunStreamEvent) -> List[Tuple[Callable[..., Any],
                                                                        Tuple[Any, ...]]]:
    """The handler callbacks one event triggers, in order, with their arguments."""
    def hook(name: str) -> Optional[Callable[..., Any]]:
        found = handler.get(name) if isinstance(handler, Mapping) else getattr(handler, name, None)
        return found if callable(found) else None

    calls: List[Tuple[Callable[..., Any], Tuple[Any, ...]]] = []
    plan: List[Tuple[str, Tuple[Any, ...]]] = [("on_event", (event,))]
    if event.delta:
        snapshot = event.text if not event.status.is_failed else ""
        plan.append(("on_text_delta", (event.delta, snapshot)))
    if event.status == StreamEvent.DONE:
        plan.append(("on_message_done", (event.completed_message,)))
    elif event.status == StreamEvent.TOOL_CALLS:
        plan.append(("on_tool_calls", (event.tool_calls,)))
    elif event.status == StreamEvent.ERROR:
        plan.append(("on_error", (event.error,)))
    for name, args in plan:
        function = hook(name)
        if function is not None:
            calls.append((function, args))
    return calls


# ============================================================================
# HTTP/1.1 codec (sans-IO): request bytes out; head, body pieces and end in
# ============================================================================

_MAX_HEAD_BYTES = 64 * 1024
_MAX_CHUNK_LINE = 4 * 1024


def _unsafe(value: str) -> bool:
    """CR, LF or NUL: a header value with them could split the request."""
    return "\r" in value or "\n" in value or "\x00" in value


if TYPE_CHECKING:  # pragma: no cover
    class _Head(NamedTuple):
        status: int
        reason: str
        headers: Dict[str, str]  # lower-cased names; repeated headers joined with ", "

    class _End(NamedTuple):
        keep_alive: bool

    class _OriginFields(NamedTuple):
        scheme: str
        host: str
        port: int
else:
    _Head = namedtuple("_Head", "status reason headers")
    _End = namedtuple("_End", "keep_alive")
    _OriginFields = namedtuple("_Origin", "scheme host port")


class _ProtocolError(Exception):
    """The peer broke HTTP/1.1 framing."""


def _encode_request(method: str, target: str, host: str,
                    headers: Sequence[Tuple[str, str]], body: Optional[bytes]) -> bytes:
    """Request bytes; refuses a header value that could split the request."""
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + host]
    for name, value in headers:
        if _unsafe(value) or _unsafe(name):
            raise ValueError("header %s contains CR, LF or NUL" % name)
        lines.append("%s: %s" % (name, value))
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    lines.append("\r\n")
    head = "\r\n".join(lines).encode("latin-1", "strict")
    return head + body if body else head


_CHUNK_SIZES: Dict[bytes, int] = {}  # chunk size lines seen, short ones only, as their sizes


# In a chunked body, ``remaining`` counts the bytes of chunk data still to come; below zero it
# names where the parser stands between chunks (0: at a chunk size line).
_AFTER_CHUNK_DATA = -2  # the CRLF that ends a chunk's data
_IN_TRAILERS = -1  # after the last (zero-size) chunk: trailer lines until an empty one


class _ResponseParser:
    """One response: feed() bytes (b"" at EOF), then next_event() until it is None.

    Events: a _Head, then body pieces (bytes), then an _End. Framing by
    Content-Length, chunked (extensions and trailers skipped), or connection close.
    The buffer is immutable bytes read at an offset: one copy per body piece.
    """

    def __init__(self, method: str = "GET") -> None:
        self.method = method
        self.buffer = b""
        self.pos = 0
        self.eof = False
        self.state = "head"
        self.remaining = 0
        self.keep_alive = True
        self.head: Optional[_Head] = None
        self.interim = 0  # 1xx responses skipped so far

    def feed(self, data: bytes) -> None:
        if not data:
            self.eof = True
        elif self.pos >= len(self.buffer):
            self.buffer, self.pos = data, 0
        else:
            self.buffer, self.pos = self.buffer[self.pos:] + data, 0

    def next_event(self) -> Union[_Head, bytes, _End, None]:
        """The next event, or None when more bytes are needed."""
        state = self.state
        if state == "chunked":
            if self.pos >= len(self.buffer) and not self.eof:
                return None  # read to its end: a stream between events (no work, no calls)
            return self._chunked_body()
        if state == "length":
            return self._length_body()
        if state == "head":
            if self.pos >= len(self.buffer) and not self.eof:
                return None  # nothing yet (the call before the first read)
            return self._head()
        if state == "close":
            if self.pos < len(self.buffer):
                data = self.buffer[self.pos:]
                self.buffer, self.pos = b"", 0
                return data
            if self.eof:
                self.state = "done"
                return _End(False)
            return None
        raise _ProtocolError("read past the end of the response")

    def _incomplete(self, what: str) -> None:
        if self.eof:
            raise _ProtocolError("connection closed %s" % what)

    def _head(self) -> Optional[_Head]:
        # the blank line that ends the head; bare LF line ends are taken too (RFC 9112 2.2)
        end, size = self.buffer.find(b"\n\r\n", self.pos), 3
        bare = self.buffer.find(b"\n\n", self.pos, None if end < 0 else end)
        if bare >= 0:
            end, size = bare, 2
        if end < 0:
            if len(self.buffer) - self.pos > _MAX_HEAD_BYTES:
                raise _ProtocolError("response head is over %d bytes" % _MAX_HEAD_BYTES)
            self._incomplete("before a response" if self.pos >= len(self.buffer)
                             else "inside the response head")
            return None
        raw = self.buffer[self.pos:end].decode("latin-1")
        self.pos = end + size
        lines = raw.split("\r\n")  # the last one still ends with the CR of "\r\n\r\n"
        if raw.count("\n") != len(lines) - 1:  # a bare LF ends a line too
            lines = raw.split("\n")
            lines[:-1] = [line[:-1] if line.endswith("\r") else line for line in lines[:-1]]
        if lines[-1].endswith("\r"):
            lines[-1] = lines[-1][:-1]
        first = lines[0]  # HTTP/1.x SP 3DIGIT [SP reason], by hand: a regex costs a call
        code = first[9:12]
        if not (first[:7] == "HTTP/1." and first[7:8] in ("0", "1") and first[8:9] == " "
                and len(code) == 3 and code.isdigit() and code.isascii()
                and (len(first) == 12 or first[12] == " ")):
            raise _ProtocolError("not an HTTP/1.x status line: %r" % first[:60])
        status = int(code)
        headers: Dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep or not name or name != name.strip():
                raise _ProtocolError("malformed header line: %r" % line[:60])
            name = name.lower()
            value = value.strip()
            headers[name] = headers[name] + ", " + value if name in headers else value
        if 100 <= status < 200:  # 100 Continue and friends precede the real response
            self.interim += 1
            if self.interim > 16:
                raise _ProtocolError("more than 16 interim (1xx) responses")
            return self._head()
        connection = headers.get("connection", "").lower()
        self.keep_alive = ("close" not in connection) and (
            first[7] == "1" or "keep-alive" in connection)
        self.head = _Head(status, first[13:], headers)
        encoding = headers.get("transfer-encoding", "").lower()
        if (self.method == "CONNECT" and status < 300) or status in (204, 304) \
                or self.method == "HEAD":
            self.state, self.remaining = "length", 0
        elif encoding:
            if encoding.split(",")[-1].strip() != "chunked":
                raise _ProtocolError("unsupported Transfer-Encoding: %s" % encoding[:40])
            self.state = "chunked"
        elif "content-length" in headers:
            length = headers["content-length"]
            if length.isdigit() and length.isascii():  # the usual: one length
                self.state, self.remaining = "length", int(length)
                return self.head
            lengths = {v.strip() for v in headers["content-length"].split(",")}
            length = lengths.pop() if len(lengths) == 1 else ""
            if not (length.isascii() and length.isdigit()):  # "1²" passes isdigit alone
                raise _ProtocolError("bad Content-Length: %r" % headers["content-length"][:40])
            self.state, self.remaining = "length", int(headers["content-length"].split(",")[0])
        else:
            self.state, self.keep_alive = "close", False
        return self.head

    def _length_body(self) -> Union[bytes, _End, None]:
        if self.remaining == 0:
            self.state = "done"
            return _End(self.keep_alive)
        available = len(self.buffer) - self.pos
        if available <= 0:
            self._incomplete("with %d body bytes still to come" % self.remaining)
            return None
        take = min(self.remaining, available)
        data = self.buffer[self.pos:self.pos + take] if self.pos or take < available \
            else self.buffer
        self.pos += take
        self.remaining -= take
        return data

    def _chunked_body(self) -> Union[bytes, _End, None]:
        """Every chunk's data already in the buffer as one piece (a stream sends a chunk per
        event: joining them saves a trip through every layer above per event). Runs on
        locals: this loop is per event on a stream."""
        buffer, pos, remaining = self.buffer, self.pos, self.remaining
        size_limit = len(buffer)
        pieces: List[bytes] = []
        if remaining == 0:  # whole chunks of sizes seen before: the usual stream, one by one
            sizes, find, starts, append = _CHUNK_SIZES, buffer.find, buffer.startswith, \
                pieces.append
            while True:
                end = find(b"\r\n", pos)
                size = sizes.get(buffer[pos:end]) if end >= 0 else None
                if not size:
                    break  # the general loop below takes whatever this is
                stop = end + 2 + size
                if stop + 2 > size_limit or not starts(b"\r\n", stop):
                    break
                append(buffer[end + 2:stop])
                pos = stop + 2
                if pos == size_limit:  # the buffer read to its end: the usual stream read
                    self.pos = pos
                    return pieces[0] if len(pieces) == 1 else b"".join(pieces)
        try:
            while True:
                if remaining > 0:  # inside chunk data
                    available = size_limit - pos
                    if available <= 0:
                        if not pieces:
                            self._incomplete("inside a chunk")
                        break
                    take = remaining if remaining < available else available
                    pieces.append(buffer[pos:pos + take])
                    pos += take
                    remaining -= take
                    if remaining:
                        break
                    remaining = _AFTER_CHUNK_DATA
                if remaining == _AFTER_CHUNK_DATA:
                    if size_limit - pos < 2:
                        if not pieces:
                            self._incomplete("after a chunk")
                        break
                    if buffer[pos] != 13 or buffer[pos + 1] != 10:
                        raise _ProtocolError("chunk data not followed by CRLF")
                    pos += 2
                    remaining = 0
                elif remaining == _IN_TRAILERS and pieces:
                    break  # the data first; the trailers and the end on the next call
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    if size_limit - pos > _MAX_CHUNK_LINE:
                        raise _ProtocolError("chunk size line is too long")
                    if not pieces:
                        self._incomplete("inside a chunk size line")
                    break
                line = buffer[pos:end]
                pos = end + 2
                if remaining == _IN_TRAILERS:  # header lines until an empty one
                    if not line:
                        self.state = "done"
                        return _End(self.keep_alive)
                    continue
                size = _CHUNK_SIZES.get(line)  # a stream repeats a few hundred sizes
                if size is None:
                    if len(line) > _MAX_CHUNK_LINE:
                        raise _ProtocolError("chunk size line is too long")
                    semicolon = line.find(b";")
                    size_text = (line if semicolon < 0 else line[:semicolon]).strip(b" \t")
                    if not size_text or size_text.translate(None, b"0123456789abcdefABCDEF"):
                        raise _ProtocolError("bad chunk size: %r" % size_text[:20])
                    size = int(size_text, 16)
                    if len(line) < 8 and len(_CHUNK_SIZES) < 4096:
                        _CHUNK_SIZES[line] = size
                remaining = size or _IN_TRAILERS
        finally:
            self.pos, self.remaining = pos, remaining
        if not pieces:
            return None
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _Exchange:
    """One request and its response on one connection: what every read, failure and end
    means, for both transports (which only move the bytes)."""

    def __init__(self, origin: "_Origin", method: str, reused: bool, seconds: float) -> None:
        self.origin = origin
        self.seconds = seconds  # the timeout, for messages
        self.parser = _ResponseParser(method)
        self.reused = reused  # the connection came from the pool
        self.received = False
        self.keep = False  # the connection may go back to the pool

    def next_event(self) -> Union[_Head, bytes, _End, None]:
        try:
            event = self.parser.next_event()
        except _ProtocolError as exc:
            raise APIConnectionError("broken HTTP response from %s: %s"
                                     % (self.origin.host, exc)) from None
        if event.__class__ is _End:
            self.keep = event.keep_alive
        return event

    def feed(self, chunk: bytes) -> None:
        if not chunk and self.reused and not self.received:
            raise APIConnectionError("the server had closed the kept-alive connection",
                                     reused=True)
        self.received = True
        self.parser.feed(chunk)

    def receive(self, chunk: bytes) -> Union[_Head, bytes, _End, None]:
        """feed(chunk), then next_event(): a stream's read, in one call."""
        self.feed(chunk)
        return self.next_event()

    def timed_out(self) -> APITimeoutError:
        return APITimeoutError("no answer from %s within %.3g s" % (self.origin.host, self.seconds))

    def failed(self, reading: bool, exc: BaseException, deadline: float) -> APIConnectionError:
        """The error for a send (``reading`` False) or a read that raised ``exc``."""
        host = self.origin.host
        if isinstance(exc, (socket.timeout, TimeoutError)) or type(exc).__name__ == "TimeoutError":
            return self.timed_out() if reading else APITimeoutError(
                "sending the request to %s timed out" % host)
        doing = "reading the response from" if reading else "sending the request to"
        return APIConnectionError("%s %s failed: %s" % (doing, host, exc),
                                  reused=self.reused and not self.received)


_FIXED_HEADERS = "User-Agent: %s\r\nAccept: application/json\r\n" % _USER_AGENT


def _request_bytes(options: "_Options", request: _Request, authorization: str) -> Tuple[bytes, str]:
    """The request's bytes and its fresh x-client-request-id. What does not change between
    requests (Host, User-Agent, the folder) was checked and formatted once, by _Options."""
    if _unsafe(authorization):
        raise ValueError("header Authorization contains CR, LF or NUL")
    request_id = _uuid4()
    head = "%s %s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n%sx-client-request-id: %s\r\n%s" % (
        request.method, options.prefix, request.target, options.host, authorization,
        _FIXED_HEADERS, request_id, options.folder_line)
    body = request.body
    if body is None:
        return (head + "\r\n").encode("latin-1"), request_id
    return (head + "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
            ).encode("latin-1") + body, request_id


# ============================================================================
# URLs and proxies (sans-IO): where a request goes, and through what
# ============================================================================


class _Origin(_OriginFields):
    __slots__ = ()

    @property
    def host_header(self) -> str:
        host = "[%s]" % self.host if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else "%s:%d" % (host, self.port)


def _userinfo(url: str) -> str:
    """The ``user:password`` of a URL, or ""; never to be shown."""
    match = re.match(r"\s*[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)@", url)
    return match.group(1) if match else ""


def _shown_url(url: str) -> str:
    """The URL as an error message may show it: any ``user:password@`` replaced by ``***@``."""
    userinfo = _userinfo(url)
    return url.replace(userinfo + "@", "***@", 1) if userinfo else url


# What a base_url may end with that is the API's own path, and so not part of the base.
_API_PATHS = ("/assistants/v1", "/v1")


def _split_url(url: str, allow_insecure: bool, what: str = "base_url") -> Tuple[_Origin, str]:
    """(origin, path prefix); refuses plain http:// beyond loopback unless allowed. For a
    base_url, a trailing API path (``/assistants/v1``) is dropped: it is the same base."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise TypeError("%s must be a str, not %s" % (what, type(url).__name__))
    shown = _shown_url(url)  # a password in the URL is never echoed
    if re.search(r"[^\x21-\x7e]", url.strip()):  # urlsplit would drop CR/LF; spaces split the request line
        raise ValueError("%s contains whitespace, control or non-ASCII characters; "
                         "percent-encode them" % what)
    if _userinfo(url):
        raise ValueError("%s must not carry credentials in the URL (%s); pass the credential "
                         "as api_key/iam_token" % (what, shown))
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError("%s %r is not a valid URL: %s" % (what, shown, exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("%s must be an http:// or https:// URL, got %r" % (what, shown))
    host = parts.hostname
    if scheme == "http" and not allow_insecure and not _is_loopback(host):
        raise ValueError("%s %r is plain http:// to a host that is not loopback; use https:// "
                         "or pass allow_insecure=True" % (what, shown))
    origin = _Origin(scheme, host, port or (443 if scheme == "https" else 80))
    path = parts.path.rstrip("/")
    if what == "base_url":
        for api_path in _API_PATHS:
            if path.lower().endswith(api_path):
                path = path[:-len(api_path)].rstrip("/")
    return origin, path


def _is_loopback(host: str) -> bool:
    """localhost, 127/8 (also as 127.1) and ::1 (also spelt out, or IPv4-mapped)."""
    host = host.lower().strip("[]").rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return _address_is(host, "is_loopback")


def _address_is(host: str, kind: str) -> bool:
    """An ipaddress property (is_loopback, is_link_local) of a literal address; False for names."""
    import ipaddress

    try:
        address: Any = ipaddress.ip_address(host)
    except ValueError:
        try:  # the short IPv4 forms inet_aton accepts, such as 127.1
            address = ipaddress.ip_address(socket.inet_aton(host))
        except (OSError, ValueError):
            return False
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(getattr(mapped or address, kind))


def _proxy_for(origin: _Origin) -> Optional[Tuple[_Origin, Optional[str]]]:
    """The proxy for ``origin`` from the environment, as urllib.request sees it, with auth."""
    if not any(name.lower().endswith("_proxy") for name in os.environ):
        return None  # the common case: no urllib.request (and its email package) to import
    if _is_loopback(origin.host) or _address_is(origin.host.strip("[]"), "is_link_local"):
        return None  # this machine, or its metadata service: a proxy would reach another one
    import urllib.request
    from urllib.parse import unquote, urlsplit

    proxy = urllib.request.getproxies().get(origin.scheme)
    if not proxy or urllib.request.proxy_bypass(origin.host_header):
        return None
    if "://" not in proxy:
        proxy = "http://" + proxy
    parts = urlsplit(proxy)
    auth = None
    if parts.username is not None:
        import base64

        pair = "%s:%s" % (unquote(parts.username), unquote(parts.password or ""))
        auth = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
    proxy_origin = _Origin(parts.scheme or "http", parts.hostname or "",
                           parts.port or (443 if parts.scheme == "https" else 80))
    return proxy_origin, auth


def _connect_request(origin: _Origin, proxy_auth: Optional[str]) -> bytes:
    target = "%s:%d" % ("[%s]" % origin.host if ":" in origin.host else origin.host, origin.port)
    headers = [("Proxy-Authorization", proxy_auth)] if proxy_auth else []
    return _encode_request("CONNECT", target, target, headers, None)


def _one_off_request(method: str, url: str, headers: List[Tuple[str, str]],
                     body: Optional[bytes]) -> Tuple[_Origin, bytes]:
    """Where to send, and the bytes of, a request to a service other than the API."""
    from urllib.parse import urlsplit

    origin, path = _split_url(url, allow_insecure=True, what="url")
    query = urlsplit(url).query
    data = _encode_request(method, (path or "/") + ("?" + query if query else ""),
                           origin.host_header, headers + [("User-Agent", _USER_AGENT)], body)
    return origin, data


def _connect_target(origin: _Origin, proxy: Optional[Tuple[_Origin, Optional[str]]]) -> str:
    """host:port, and the proxy it goes through: what a connect error names (both clients)."""
    where = "%s:%d" % (origin.host, origin.port)
    if proxy is None:
        return where
    return "%s through the proxy %s:%d" % (where, proxy[0].host, proxy[0].port)


def _connect_timeout(origin: _Origin,
                     proxy: Optional[Tuple[_Origin, Optional[str]]]) -> APITimeoutError:
    return APITimeoutError("connecting to %s timed out" % _connect_target(origin, proxy),
                           connected=False)


def _connect_error(origin: _Origin, exc: BaseException,
                   proxy: Optional[Tuple[_Origin, Optional[str]]] = None) -> APIConnectionError:
    """The error for a failed connect, proxy tunnel or TLS handshake: nothing was sent."""
    if type(exc).__name__ == "SSLCertVerificationError":
        return APIConnectionError("TLS certificate verification failed for %s: %s"
                                  % (origin.host, getattr(exc, "verify_message", exc)),
                                  connected=False, retryable=False)
    kind = APITimeoutError if isinstance(exc, (socket.timeout, TimeoutError)) else APIConnectionError
    return kind("cannot connect to %s: %s" % (_connect_target(origin, proxy), exc),
                connected=False)


def _connect_refused(head: _Head) -> APIConnectionError:
    return APIConnectionError("the proxy refused the tunnel: HTTP %d %s"
                              % (head.status, head.reason), connected=False, retryable=False)


# ============================================================================
# Credentials
# ============================================================================


def _check_token(value: Any, what: str) -> str:
    """A credential fit for a header; the message never repeats the value."""
    if not isinstance(value, str):
        raise CredentialsError("%s must be a string, not %s" % (what, type(value).__name__))
    if _unsafe(value):
        raise CredentialsError("%s has CR, LF or NUL in it; refusing to send it" % what)
    if not value.isascii():  # a header cannot carry it; encoding it would put it in the exception
        raise CredentialsError("%s contains non-ASCII characters; refusing to send it" % what)
    value = value.strip()
    if not value:
        raise CredentialsError("%s is empty" % what)
    return str(value)


class Credentials:
    """A source of the Authorization header. Subclasses: API key, IAM token, OAuth, metadata."""

    refreshes = False  # True: a 401 is worth one retry with a freshly fetched token

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = ""

    def _header(self, now: float) -> Union[str, None, Awaitable[Any]]:
        """The header value; None when a token must be fetched; an awaitable from an async provider."""
        raise NotImplementedError

    def _finish(self, token: Any) -> str:
        raise NotImplementedError

    def _token_request(self) -> Tuple[str, str, List[Tuple[str, str]], Optional[bytes]]:
        """(method, url, headers, body) that fetches a fresh token."""
        raise NotImplementedError

    def _accept(self, status: int, body: bytes, now: float) -> str:
        raise NotImplementedError

    def _invalidate(self) -> None:
        """Forget a cached token (after a 401)."""

    def _secrets(self) -> List[str]:
        return [self._last] if self._last else []

    def __repr__(self) -> str:
        return "%s(***)" % type(self).__name__


class _TokenCredentials(Credentials):
    """A fixed token, a callable returning the current one, or an environment variable."""

    def __init__(self, token: Union[str, Callable[[], Any], None], scheme: str, what: str,
                 env: Optional[str] = None) -> None:
        super().__init__()
        self._scheme = scheme
        self._what = env or what
        self._env = env
        if isinstance(token, str):
            self._last = _check_token(token, what)
        elif token is not None and not callable(token):
            raise CredentialsError("%s must be a string or a callable returning one, not %s"
                                   % (what, type(token).__name__))
        self._token = token

    def _header(self, now: float) -> Union[str, None, Awaitable[Any]]:
        if self._env is not None:
            token: Any = os.environ.get(self._env)
            if token is None:
                raise CredentialsError("%s is no longer set in the environment" % self._env)
        elif callable(self._token):
            token = self._token()
            if _is_awaitable(token):
                return token  # type: ignore[no-any-return]
        else:
            token = self._last
        return self._finish(token)

    def _finish(self, token: Any) -> str:
        self._last = _check_token(token, self._what)
        return "%s %s" % (self._scheme, self._last)


class APIKeyCredentials(_TokenCredentials):
    """``Authorization: Api-Key …``; ``api_key`` may be a callable returning the current key."""

    def __init__(self, api_key: Union[str, Callable[[], Any]]) -> None:
        super().__init__(api_key, "Api-Key", "api_key")


class IAMTokenCredentials(_TokenCredentials):
    """``Authorization: Bearer …``; ``iam_token`` may be a callable returning the current token."""

    def __init__(self, iam_token: Union[str, Callable[[], Any]]) -> None:
        super().__init__(iam_token, "Bearer", "iam_token")


class _FetchedTokenCredentials(Credentials):
    """An IAM token fetched over HTTP, cached, and refreshed before it expires."""

    refreshes = True

    def __init__(self, url: str, timeout: float) -> None:
        super().__init__()
        _split_url(url, allow_insecure=True, what="token url")
        self.url = url
        self.timeout = _check_timeout(timeout)
        self._refresh_at = 0.0

    def _header(self, now: float) -> Optional[str]:
        return "Bearer " + self._last if self._last and now < self._refresh_at else None

    def _finish(self, token: Any) -> str:
        return "Bearer " + _check_token(token, "the IAM token")

    def _invalidate(self) -> None:
        self._refresh_at = 0.0

    def _parse(self, obj: Dict[str, Any]) -> Tuple[Any, float]:
        raise NotImplementedError

    def _accept(self, status: int, body: bytes, now: float) -> str:
        what = "the token service at %s" % self.url.split("?")[0]
        if status != 200:
            error = _error_from_body(status, body, {}, self._secrets())
            raise CredentialsError("%s answered HTTP %d: %s" % (what, status, error.message))
        try:
            obj = json.loads(body)
            token, lifetime = self._parse(_object(obj, "token response"))
        except (ValueError, RecursionError, MalformedResponseError) as exc:
            raise CredentialsError("%s sent an unusable answer: %s" % (what, exc)) from None
        header = self._finish(token)
        self._last = header[len("Bearer "):]
        # refresh when a tenth of its life (at least a minute) is left
        self._refresh_at = now + max(0.0, lifetime - max(60.0, lifetime * 0.1))
        return header


class OAuthCredentials(_FetchedTokenCredentials):
    """An OAuth token exchanged for an IAM token at ``url`` (the IAM service by default)."""

    def __init__(self, oauth_token: str, *, url: str = IAM_TOKEN_URL, timeout: float = 10.0) -> None:
        super().__init__(url, timeout)
        self._oauth = _check_token(oauth_token, "oauth_token")

    def _token_request(self) -> Tuple[str, str, List[Tuple[str, str]], Optional[bytes]]:
        body = json.dumps({"yandexPassportOauthToken": self._oauth}).encode()
        return "POST", self.url, [("Content-Type", "application/json")], body

    def _parse(self, obj: Dict[str, Any]) -> Tuple[Any, float]:
        expires = _timestamp(_get(obj, "expiresAt"), "expiresAt")
        lifetime = 3600.0 if expires is None else expires.timestamp() - time.time()
        return _get(obj, "iamToken"), lifetime

    def _secrets(self) -> List[str]:
        return super()._secrets() + [self._oauth]


class MetadataCredentials(_FetchedTokenCredentials):
    """The service account's IAM token from the metadata service of a Yandex Cloud VM or function.

    Contacted only when a request needs a token; ``url`` points elsewhere for tests.
    """

    def __init__(self, url: str = METADATA_TOKEN_URL, *, timeout: float = 5.0) -> None:
        super().__init__(url, timeout)

    def _token_request(self) -> Tuple[str, str, List[Tuple[str, str]], Optional[bytes]]:
        return "GET", self.url, [("Metadata-Flavor", "Google")], None

    def _parse(self, obj: Dict[str, Any]) -> Tuple[Any, float]:
        lifetime = _float(_get(obj, "expiresIn"), "expires_in")
        return _get(obj, "accessToken"), 3600.0 if lifetime is None else lifetime


_NO_CREDENTIALS = (
    "no credential: pass api_key=, iam_token= or credentials= (such as "
    "yc_runs.MetadataCredentials()), or set YC_API_KEY, YC_IAM_TOKEN, YC_TOKEN, "
    "YC_OAUTH_TOKEN, or YC_METADATA_CREDENTIALS=1"
)


def _pick_credentials(api_key: Any, iam_token: Any, credentials: Any) -> Credentials:
    """The explicit credential, else the first the environment offers, as the official SDK does."""
    given = [name for name, value in (("api_key", api_key), ("iam_token", iam_token),
                                      ("credentials", credentials)) if value is not None]
    if len(given) > 1:
        raise CredentialsError("pass only one of %s" % ", ".join(given))
    if api_key is not None:
        return APIKeyCredentials(api_key)
    if iam_token is not None:
        return IAMTokenCredentials(iam_token)
    if credentials is not None:
        if not isinstance(credentials, Credentials):
            raise CredentialsError("credentials must be a yc_runs.Credentials, not %s"
                                   % type(credentials).__name__)
        return credentials
    env = os.environ
    for name, scheme in (("YC_API_KEY", "Api-Key"), ("YC_IAM_TOKEN", "Bearer"),
                         ("YC_TOKEN", "Bearer")):
        if env.get(name):
            return _TokenCredentials(None, scheme, name, env=name)
    if env.get("YC_OAUTH_TOKEN"):
        return OAuthCredentials(env["YC_OAUTH_TOKEN"])
    if env.get("YC_METADATA_CREDENTIALS", "").lower() in ("1", "true", "yes"):
        return MetadataCredentials()
    raise CredentialsError(_NO_CREDENTIALS)


# ============================================================================
# Options: a client's arguments checked once; request ids, the TLS context, the caps
# ============================================================================


class _Options:
    """A client's checked options: the wire, where to send, the credential, the folder,
    timeouts and retries, TLS, and the plans' clock."""

    def __init__(self, api_key: Any, iam_token: Any, folder_id: Optional[str],
                 base_url: Optional[str],
                 timeout: float, max_retries: int, ssl_context: Optional["ssl.SSLContext"],
                 credentials: Any, allow_insecure: bool,
                 total_timeout: Optional[float] = None, api: Optional[str] = None,
                 retry_delay: float = 0.5) -> None:
        api = api if api is not None else os.environ.get("YC_RUNS_API") or "responses"
        if api not in _WIRES:
            raise ValueError('api must be "responses" (the live service) or "assistants" (the '
                             'Assistant API), got %r' % (api,))
        self.api = api
        self.wire = _WIRES[api]
        if base_url is None:  # as openai-python reads OPENAI_BASE_URL
            base_url = os.environ.get("YC_RUNS_BASE_URL") or self.wire.base_url
        self.origin, self.prefix = _split_url(base_url, bool(allow_insecure))
        self.base_url = base_url
        self.credentials = _pick_credentials(api_key, iam_token, credentials)
        folder = folder_id if folder_id is not None else os.environ.get("YC_FOLDER_ID") or None
        if folder is not None and (not isinstance(folder, str) or _unsafe(folder)
                                   or not folder.strip() or not folder.isascii()):
            raise ValueError("folder_id must be a non-empty ASCII string without CR, LF or NUL")
        self.folder_id = folder
        self.host = self.origin.host_header
        self.folder_line = "" if folder is None else "%s: %s\r\n" % (self.wire.folder_header,
                                                                      folder)
        self.timeout = _check_timeout(timeout)
        self.total_timeout = None if total_timeout is None else _check_timeout(
            total_timeout, "total_timeout")
        self.clock: Callable[[], float] = time.monotonic  # the plans' clock
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("max_retries must be an int >= 0, got %r" % (max_retries,))
        self.max_retries = max_retries
        self.retry_delay = _check_retry_delay(retry_delay)
        if ssl_context is not None and not hasattr(ssl_context, "wrap_socket"):
            raise TypeError("ssl_context must be an ssl.SSLContext, not %s"
                            % type(ssl_context).__name__)
        self.ssl_context = ssl_context
        self.allow_insecure = bool(allow_insecure)

    def seconds(self, timeout: Optional[float]) -> float:
        """A call's timeout: its own, else the client's."""
        return self.timeout if timeout is None else _check_timeout(timeout)

    def __repr__(self) -> str:
        return "api=%r, base_url=%r, folder_id=%r, credentials=%r" % (
            self.api, self.base_url, self.folder_id, self.credentials)


def _uuid4() -> str:
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    h = raw.hex()
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


_DEFAULT_SSL: List[Any] = []


def _ssl_context(custom: Optional["ssl.SSLContext"]) -> "ssl.SSLContext":
    if custom is not None:
        return custom
    if not _DEFAULT_SSL:
        import ssl

        _DEFAULT_SSL.append(ssl.create_default_context())
    return _DEFAULT_SSL[0]  # type: ignore[no-any-return]


def _token_timeout(credentials: Credentials, deadline: float, now: float) -> float:
    """A token fetch's timeout: the credential's own, within the call's deadline (at least a
    millisecond, as _remaining gives)."""
    return min(float(getattr(credentials, "timeout", 10.0)), max(deadline - now, 0.001))


_MAX_BODY_BYTES = 64 * 1024 * 1024


# ============================================================================
# Sync transport: blocking sockets feeding the codec, a keep-alive pool per process
# ============================================================================


def _readable(sock: socket.socket) -> bool:
    """True when the socket has data or EOF waiting (poll: no 1024-descriptor limit)."""
    import select

    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _close_idle(idle: Dict[_Origin, List[socket.socket]]) -> None:
    """Close a pool's sockets and empty it."""
    socks = [sock for pool in idle.values() for sock in pool]
    idle.clear()
    for sock in socks:
        sock.close()


class _SyncTransport:
    """Moves bytes: connects (TLS, CONNECT proxies), pools keep-alive sockets per process,
    feeds the parser."""

    max_idle = 16  # per origin

    def __init__(self, ssl_context: Optional["ssl.SSLContext"]) -> None:
        import weakref

        self._ssl = ssl_context
        self._idle: Dict[_Origin, List[socket.socket]] = {}  # one dict, emptied in place
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.connections_opened = 0
        # An unclosed client: its pooled sockets close with it, without a warning. A
        # finalizer, not __del__: collected in a reference cycle, the sockets could be
        # finalized first (each warning it was left open); a finalizer's callback runs
        # before any finalizer of the garbage, and it holds the pool, not the transport.
        weakref.finalize(self, _close_idle, self._idle)

    def _connect(self, origin: _Origin, deadline: float) -> socket.socket:
        proxy = _proxy_for(origin)
        address = (proxy[0].host, proxy[0].port) if proxy else (origin.host, origin.port)
        timeout = _remaining(deadline)
        try:
            sock = socket.create_connection(address, timeout)
        except socket.timeout:
            raise _connect_timeout(origin, proxy) from None
        except OSError as exc:
            raise _connect_error(origin, exc, proxy) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proxy is not None:
                sock.sendall(_connect_request(origin, proxy[1]))
                parser = _ResponseParser("CONNECT")
                event = parser.next_event()
                while event is None:
                    sock.settimeout(_remaining(deadline))
                    parser.feed(sock.recv(4096))
                    event = parser.next_event()
                if not isinstance(event, _Head) or event.status != 200:
                    raise _connect_refused(event)  # type: ignore[arg-type]
            if origin.scheme == "https":
                sock.settimeout(_remaining(deadline))
                sock = _ssl_context(self._ssl).wrap_socket(sock, server_hostname=origin.host)
        except YCRunsError:
            sock.close()
            raise
        except (OSError, _ProtocolError) as exc:
            sock.close()
            raise _connect_error(origin, exc, proxy) from None
        self.connections_opened += 1
        return sock

    def _forked(self) -> None:
        """In a child process: the pooled sockets are the parent's connections, whose
        answers would reach whichever process reads first. Forget them (closing a copy
        leaves the parent's open) and the lock, which a parent thread may have held."""
        self._lock = threading.Lock()
        self._pid = os.getpid()
        _close_idle(self._idle)

    def _acquire(self, origin: _Origin, deadline: float) -> Tuple[socket.socket, bool]:
        if self._pid != os.getpid():
            self._forked()
        with self._lock:
            idle = self._idle.get(origin)
            while idle:
                sock = idle.pop()
                if not _readable(sock):  # readable while idle: closed by the server, or garbage
                    return sock, True
                sock.close()
        return self._connect(origin, deadline), False

    def _release(self, origin: _Origin, sock: socket.socket) -> None:
        if self._pid == os.getpid():
            with self._lock:
                idle = self._idle.setdefault(origin, [])
                if len(idle) < self.max_idle:
                    idle.append(sock)
                    return
        sock.close()

    def open(self, origin: _Origin, data: bytes, method: str, deadline: float) -> "_SyncStream":
        """Send one request; its response is read from the stream this returns."""
        seconds = deadline - time.monotonic()
        sock, reused = self._acquire(origin, deadline)
        stream = _SyncStream(self, origin, sock, _Exchange(origin, method, reused, seconds))
        try:
            sock.settimeout(_remaining(deadline))
            sock.sendall(data)
        except OSError as exc:
            stream.close()
            raise stream.exchange.failed(False, exc, deadline) from None
        except BaseException:
            stream.close()
            raise
        return stream

    def fetch(self, method: str, url: str, headers: List[Tuple[str, str]], body: Optional[bytes],
              timeout: float) -> Tuple[int, bytes]:
        """A one-off request to another service (token endpoints); the body is cut at
        _MAX_BODY_BYTES."""
        deadline = time.monotonic() + timeout
        origin, data = _one_off_request(method, url, headers, body)
        stream = self.open(origin, data, method, deadline)
        try:
            head = stream.read(deadline, None)
            return head.status, stream.read(deadline, _MAX_BODY_BYTES)[:_MAX_BODY_BYTES]
        finally:
            stream.close()

    def close(self) -> None:
        with self._lock:
            idle = dict(self._idle)
            self._idle.clear()
        _close_idle(idle)


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline``, at least a millisecond (0 would mean non-blocking)."""
    return max(deadline - time.monotonic(), 0.001)


class _SyncStream:
    """One response, read from one socket by deadlines; the socket goes back to the pool
    when the response was read to its end and the server keeps the connection."""

    __slots__ = ("exchange", "origin", "sock", "timeout", "transport")

    def __init__(self, transport: _SyncTransport, origin: _Origin, sock: socket.socket,
                 exchange: _Exchange) -> None:
        self.transport = transport
        self.origin = origin
        self.sock: Optional[socket.socket] = sock
        self.exchange = exchange
        self.timeout = -1.0  # what the socket is set to

    def read(self, deadline: float, limit: Optional[int]) -> Any:
        """The head, then the next body piece (b"" at the end); with ``limit``, the rest of the
        body, reading at most ``limit`` + 1 bytes. APITimeoutError at ``deadline``."""
        if limit is not None:
            body = bytearray()
            while len(body) <= limit:
                piece = self.read(deadline, None)
                if not piece:
                    break
                body += piece
            return bytes(body)
        exchange = self.exchange
        event = exchange.next_event()
        while event is None:
            event = exchange.receive(self._recv(deadline))
        return b"" if event.__class__ is _End else event

    def _recv(self, deadline: float) -> bytes:
        sock = self.sock
        assert sock is not None
        if not self.exchange.received:
            _warm_decoders()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self.exchange.timed_out()
            try:
                # a syscall: only when the socket would otherwise wait past the deadline
                if remaining < self.timeout - 0.02 or self.timeout < 0:
                    sock.settimeout(remaining)
                    self.timeout = remaining
                return sock.recv(32768)  # it and its body piece are alive while events decode
            except socket.timeout:
                self.timeout = -1.0  # woke early for a later deadline: look again
            except OSError as exc:
                raise self.exchange.failed(True, exc, deadline) from None

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            if self.exchange.keep:
                self.transport._release(self.origin, sock)
            else:
                sock.close()


# ============================================================================
# Async transport: asyncio streams feeding the same codec, a keep-alive pool
# ============================================================================


class _AsyncTransport:
    """The async twin of _SyncTransport: no threads of its own, asyncio timeouts, the same
    parser. Pools are per event loop; a thread lock keeps them whole when threads each run
    their own loop, and a loop's pool closes while that loop shuts down (asyncio.run)."""

    max_idle = 64  # per origin

    def __init__(self, ssl_context: Optional["ssl.SSLContext"]) -> None:
        self._ssl = ssl_context
        # keyed by loop too: a client reused under a new asyncio.run() must not touch streams
        # of a loop that is closed
        self._idle: Dict[Tuple[int, _Origin], List[Tuple[
            "asyncio.StreamReader", "asyncio.StreamWriter", "asyncio.AbstractEventLoop"]]] = {}
        self._guards: Dict[int, Tuple["asyncio.AbstractEventLoop", AsyncIterator[None]]] = {}
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.connections_opened = 0

    async def _connect(self, origin: _Origin, deadline: float) -> Tuple[
            "asyncio.StreamReader", "asyncio.StreamWriter"]:
        import asyncio

        proxy = _proxy_for(origin)
        context = _ssl_context(self._ssl) if origin.scheme == "https" else None
        hostname = origin.host if context is not None else None
        try:
            if proxy is None:
                streams = await asyncio.wait_for(asyncio.open_connection(
                    origin.host, origin.port, ssl=context, server_hostname=hostname),
                    _remaining(deadline))
            else:
                sock = await asyncio.wait_for(self._tunnel(origin, proxy), _remaining(deadline))
                streams = await asyncio.wait_for(asyncio.open_connection(
                    sock=sock, ssl=context, server_hostname=hostname), _remaining(deadline))
        except asyncio.TimeoutError:
            raise _connect_timeout(origin, proxy) from None
        except (OSError, _ProtocolError) as exc:
            raise _connect_error(origin, exc, proxy) from None
        self.connections_opened += 1
        return streams

    @staticmethod
    async def _tunnel(origin: _Origin, proxy: Tuple[_Origin, Optional[str]]) -> socket.socket:
        """A socket with a CONNECT tunnel through the proxy, made without blocking the loop."""
        import asyncio

        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(proxy[0].host, proxy[0].port, type=socket.SOCK_STREAM)
        error: Optional[BaseException] = None
        for family, kind, proto, _, address in infos:
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, address)
                await loop.sock_sendall(sock, _connect_request(origin, proxy[1]))
                parser = _ResponseParser("CONNECT")
                event = parser.next_event()
                while event is None:
                    parser.feed(await loop.sock_recv(sock, 4096))
                    event = parser.next_event()
                if not isinstance(event, _Head) or event.status != 200:
                    raise _connect_refused(event)  # type: ignore[arg-type]
                return sock
            except BaseException as exc:
                sock.close()
                if not isinstance(exc, OSError):
                    raise
                error = exc
        raise error or OSError("the proxy has no address")

    async def _acquire(self, origin: _Origin, deadline: float) -> Tuple[
            "asyncio.StreamReader", "asyncio.StreamWriter", bool]:
        import asyncio

        loop = asyncio.get_running_loop()
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's connections, not ours
                self._idle, self._guards, self._pid = {}, {}, os.getpid()
            self._forget_closed_loops()
            guard = None if self._guards.get(id(loop), (None,))[0] is loop \
                else self._pool_guard(loop)
            if guard is not None:
                self._guards[id(loop)] = (loop, guard)
            idle = self._idle.get((id(loop), origin))
            while idle:
                reader, writer, _ = idle.pop()
                if not (reader.at_eof() or writer.is_closing()
                        or len(getattr(reader, "_buffer", b""))):
                    break
                writer.close()
            else:
                reader = writer = None  # type: ignore[assignment]
        if guard is not None:
            await guard.__anext__()  # started in this loop: its shutdown_asyncgens closes it
        if reader is not None and writer is not None:
            return reader, writer, True
        reader, writer = await self._connect(origin, deadline)
        return reader, writer, False

    async def _pool_guard(self, loop: "asyncio.AbstractEventLoop") -> AsyncIterator[None]:
        """Suspended for the loop's life; when asyncio.run() ends the loop, it closes the
        loop's pooled connections while the loop can still close them cleanly."""
        try:
            yield
        finally:
            with self._lock:
                self._guards.pop(id(loop), None)
                closing = [writer for key in [k for k in self._idle if k[0] == id(loop)]
                           for _, writer, _ in self._idle.pop(key)]
            for writer in closing:
                writer.close()
            for writer in closing:
                try:
                    await writer.wait_closed()
                except (OSError, RuntimeError):  # pragma: no cover - already gone
                    pass

    def _release(self, origin: _Origin, reader: "asyncio.StreamReader",
                 writer: "asyncio.StreamWriter", loop: "asyncio.AbstractEventLoop") -> None:
        with self._lock:
            if self._pid == os.getpid() and self._guards.get(id(loop), (None,))[0] is loop:
                idle = self._idle.setdefault((id(loop), origin), [])
                if len(idle) < self.max_idle:
                    idle.append((reader, writer, loop))
                    return
        writer.close()

    async def open(self, origin: _Origin, data: bytes, method: str,
                   deadline: float) -> "_AsyncStream":
        """Send one request; its response is read from the stream this returns."""
        import asyncio

        seconds = deadline - time.monotonic()
        reader, writer, reused = await self._acquire(origin, deadline)
        stream = _AsyncStream(self, origin, reader, writer,
                              _Exchange(origin, method, reused, seconds))
        try:
            writer.write(data)
            await asyncio.wait_for(writer.drain(), _remaining(deadline))
        except (OSError, asyncio.TimeoutError) as exc:
            stream.close()
            raise stream.exchange.failed(False, exc, deadline) from None
        except BaseException:
            stream.close()
            raise
        return stream

    async def fetch(self, method: str, url: str, headers: List[Tuple[str, str]],
                    body: Optional[bytes], timeout: float) -> Tuple[int, bytes]:
        """A one-off request to another service (token endpoints); the body is cut at
        _MAX_BODY_BYTES."""
        deadline = time.monotonic() + timeout
        origin, data = _one_off_request(method, url, headers, body)
        stream = await self.open(origin, data, method, deadline)
        try:
            head = await stream.read(deadline, None)
            return head.status, (await stream.read(deadline, _MAX_BODY_BYTES))[:_MAX_BODY_BYTES]
        finally:
            stream.close()

    def _forget_closed_loops(self) -> None:
        for key in [k for k, conns in self._idle.items() if not conns or conns[0][2].is_closed()]:
            del self._idle[key]  # their loop is gone, and its sockets with it

    async def close(self) -> None:
        import asyncio

        loop = id(asyncio.get_running_loop())
        with self._lock:
            keys = [k for k in self._idle if k[0] == loop]
            closing = [writer for key in keys for _, writer, _ in self._idle.pop(key)]
        for writer in closing:
            writer.close()
        for writer in closing:
            try:
                await writer.wait_closed()
            except (OSError, RuntimeError):  # pragma: no cover - already gone
                pass


class _AsyncStream:
    """The async twin of _SyncStream. Its deadlines share one timer, re-armed only when it
    fires early or a read needs it sooner: asyncio.wait_for would make a Task per read."""

    __slots__ = ("deadline", "exchange", "expired", "origin", "reader", "task", "timer",
                 "timer_at", "transport", "writer")

    def __init__(self, transport: _AsyncTransport, origin: _Origin,
                 reader: "asyncio.StreamReader", writer: "asyncio.StreamWriter",
                 exchange: _Exchange) -> None:
        self.transport = transport
        self.origin = origin
        self.reader = reader
        self.writer: Optional["asyncio.StreamWriter"] = writer
        self.exchange = exchange
        self.deadline = 0.0  # of the read under way
        self.task: Optional["asyncio.Task[Any]"] = None  # the task in that read, None between
        self.timer: Optional["asyncio.TimerHandle"] = None
        self.timer_at = math.inf  # when the timer fires, on time.monotonic()
        self.expired = False  # the timer cancelled the read

    async def read(self, deadline: float, limit: Optional[int]) -> Any:
        """The head, then the next body piece (b"" at the end); with ``limit``, the rest of the
        body, reading at most ``limit`` + 1 bytes. APITimeoutError at ``deadline``."""
        if limit is not None:
            body = bytearray()
            while len(body) <= limit:
                piece = await self.read(deadline, None)
                if not piece:
                    break
                body += piece
            return bytes(body)
        exchange = self.exchange
        event = exchange.next_event()
        while event is None:
            event = exchange.receive(await self._recv(deadline))
        return b"" if event.__class__ is _End else event

    async def _recv(self, deadline: float) -> bytes:
        import asyncio

        now = time.monotonic()
        if deadline <= now:
            raise self.exchange.timed_out()
        if not self.exchange.received:
            _warm_decoders()
        if deadline < self.timer_at:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = asyncio.get_running_loop().call_later(deadline - now, self._expire)
            self.timer_at = deadline
        self.deadline = deadline
        self.task = task = asyncio.current_task()
        try:
            return await self.reader.read(65536)
        except asyncio.CancelledError:
            if not self.expired:
                raise
            self.expired = False
            uncancel = getattr(task, "uncancel", None)  # 3.11+: was it cancelled from outside too?
            if uncancel is not None and uncancel() > 0:
                raise
            raise self.exchange.timed_out() from None
        except OSError as exc:
            raise self.exchange.failed(True, exc, deadline) from None
        finally:
            self.task = None

    def _expire(self) -> None:
        self.timer, self.timer_at = None, math.inf
        task = self.task
        if task is None:
            return  # no read under way: the next one arms the timer again
        remaining = self.deadline - time.monotonic()
        if remaining > 0:  # the deadline moved on since the timer was armed
            import asyncio

            self.timer = asyncio.get_running_loop().call_later(remaining, self._expire)
            self.timer_at = self.deadline
            return
        self.expired = True
        task.cancel()

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer, self.timer_at = None, math.inf
        writer, self.writer = self.writer, None
        if writer is not None:
            if self.exchange.keep:
                import asyncio

                self.transport._release(self.origin, self.reader, writer,
                                        asyncio.get_running_loop())
            else:
                writer.close()


# ============================================================================
# Clients: the constructor both share, and each one's driver of the plans
# ============================================================================


class _ClientBase:
    """The constructor both clients share (its arguments: see ``__init__``)."""

    def __init__(
        self,
        api_key: Union[str, Callable[[], Any], None] = None,
        iam_token: Union[str, Callable[[], Any], None] = None,
        folder_id: Optional[str] = None,
        base_url: Optional[str] = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        ssl_context: Optional["ssl.SSLContext"] = None,
        credentials: Optional[Credentials] = None,
        allow_insecure: bool = False,
        total_timeout: Optional[float] = None,
        api: Optional[str] = None,
        retry_delay: float = 0.5,
    ) -> None:
        """A client of one wire. Both clients take the same arguments.

    ``api``: the wire, "responses" (the live Responses and Conversations API) or
    "assistants" (the Assistant API); default $YC_RUNS_API, else "responses". ``api_key``, ``iam_token``:
    the credential (a string, or a callable returning the current one); or ``credentials``:
    a Credentials object such as ``MetadataCredentials()``. With none, the environment:
    YC_API_KEY, YC_IAM_TOKEN, YC_TOKEN, YC_OAUTH_TOKEN, YC_METADATA_CREDENTIALS.
    ``folder_id``: the folder the calls are billed to (default $YC_FOLDER_ID).
    ``base_url``: the service (default $YC_RUNS_BASE_URL, else the wire's own:
    https://ai.api.cloud.yandex.net for Responses, https://rest-assistant.api.cloud.yandex.net
    for the Assistant API); a trailing ``/v1`` or ``/assistants/v1`` is the same base.
    ``timeout``: seconds for each attempt of a call, connect to last byte, and for listen the
    longest wait for the next event (60). ``max_retries``: retries of a failed idempotent
    call (4). ``retry_delay``: seconds before the first retry, doubling to 8 s, less up to a
    quarter of jitter; a server's Retry-After wins (0.5; 0 against an emulator in your own
    tests). ``total_timeout``: seconds for a call with all its retries (none).
    ``ssl_context``: TLS settings (default: verified, system CAs). ``allow_insecure``: allow
    plain http:// to a host that is not loopback.

    Raises CredentialsError when no credential is given or found, ValueError or TypeError
    naming a bad argument.
        """
        self._config = _Options(api_key, iam_token, folder_id, base_url, timeout, max_retries,
                               ssl_context, credentials, allow_insecure, total_timeout, api,
                               retry_delay)
        self._setup(ssl_context)

    def _setup(self, ssl_context: Optional["ssl.SSLContext"]) -> None:
        raise NotImplementedError

    def _run(self, plan: "Plan[Any]") -> Any:
        raise NotImplementedError

    def _drive(self, step: _Stepper) -> Any:
        raise NotImplementedError

    def _call(self, request: _Request, timeout: Optional[float]) -> Any:
        """The JSON answer to ``request`` (awaitable on AsyncClient)."""
        return self._run(_call_plan(self._config, request, timeout))

    def _listen(self, run: "_RunState", events_start_idx: int, timeout: Optional[float],
                resume: bool) -> Any:
        """The run's events (an async iterator on AsyncClient)."""
        return self._drive(_Stepper(_new_listen(self._config, run, events_start_idx, timeout,
                                                resume)))

    @property
    def api(self) -> str:
        """The wire: "responses" (the live service) or "assistants" (the Assistant API)."""
        return self._config.api

    @property
    def folder_id(self) -> Optional[str]:
        return self._config.folder_id

    def __repr__(self) -> str:
        return "%s(%r)" % (type(self).__name__, self._config)


class Client(_ClientBase):
    """A synchronous client of the Runs API on either wire; safe to share between threads
    and to create before forking worker processes. Close it (or use ``with``) to close its
    pooled connections; an unclosed client closes them when it is collected. Its arguments
    are the constructor's (``help(Client.__init__)``): ``api``, a credential, ``folder_id``,
    ``base_url``, ``timeout``, ``max_retries``, ``retry_delay``, ``total_timeout``,
    ``ssl_context``, ``allow_insecure``.

    ``client.runs`` holds the calls: ``create``, ``get``, ``get_last_by_thread``, ``list``,
    ``listen``, ``wait``, ``submit_tool_results``, ``create_and_wait``,
    ``create_and_stream``; ``client.threads`` the threads.
    """

    def _setup(self, ssl_context: Optional["ssl.SSLContext"]) -> None:
        self._transport = _SyncTransport(ssl_context)

    @property
    def runs(self) -> "Runs":
        """Create runs, fetch them, list them."""
        return Runs(self)

    @property
    def threads(self) -> "Threads":
        """Create threads, write to them, read them."""
        return Threads(self)

    def close(self) -> None:
        """Close pooled connections; the client reconnects if used again."""
        self._transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _run(self, plan: "Plan[Any]") -> Any:
        """What ``plan`` returns, once the driver has performed all it asked for."""
        step = _Stepper(plan)
        for _ in self._drive(step):
            pass
        return step.value

    def _drive(self, step: _Stepper) -> Iterator[RunStreamEvent]:
        """Performs what the plan yields and hands on the events it emits."""
        streams: List[_SyncStream] = []
        send, clock = step.send, self._config.clock
        try:
            need = send(None)
            while need is not None:
                kind = need.__class__
                if kind is _Emit:
                    yield from need.events
                    need = None  # the events delivered are not kept while the plan goes on
                    need = send(None)
                    continue
                if kind is _Pump:
                    pump, need = need, None
                    read, feed, deadline = streams[0].read, pump.feed, pump.deadline
                    while True:
                        try:
                            events = feed(None if pump.piece else read(deadline, None))
                        except Exception as exc:
                            need = step.throw(exc)
                            break
                        if events is None:
                            need = send(None)
                            break
                        if events:
                            yield from events
                            del events  # delivered: not kept alive while the next piece decodes
                            deadline = clock() + pump.wait
                    continue
                try:  # a stream's reads, the most frequent need, without a dispatch call
                    need = send(streams[0].read(need.deadline, need.limit) if kind is _Read
                                else self._perform(need, streams))
                except Exception as exc:
                    need = step.throw(exc)
        finally:
            for stream in streams:
                stream.close()
            step.plan.close()
        step.outcome()

    def _perform(self, need: Any, streams: List[_SyncStream]) -> Any:
        kind = need.__class__
        if kind is _Read:
            return streams[0].read(need.deadline, need.limit)
        if kind is _Open:
            for stream in streams:
                stream.close()
            streams.clear()
            config = self._config
            data, request_id = _request_bytes(config, need.request,
                                                    self._authorization(need.deadline))
            stream = self._transport.open(config.origin, data, need.request.method, need.deadline)
            streams.append(stream)
            if need.warm is not None:
                need.warm()
            return stream.read(need.deadline, None), request_id
        if kind is _Sleep:
            time.sleep(need.seconds)
            return None
        if kind is _Fetch:
            return self._transport.fetch(need.method, need.url, need.headers, need.body,
                                         need.timeout)
        return _not_awaitable(need.function(**need.arguments), need.name)  # _Invoke

    def _authorization(self, deadline: float) -> str:
        config = self._config
        credentials = config.credentials
        header = credentials._header(config.clock())
        if header is None:
            with credentials._lock:
                header = credentials._header(config.clock())
                if header is None:
                    header = self._run(_token_plan(config, deadline))
        if not isinstance(header, str):
            close = getattr(header, "close", None)
            if callable(close):
                close()
            raise CredentialsError("the token provider returned an awaitable; use AsyncClient "
                                   "for async providers")
        return header


class AsyncClient(_ClientBase):
    """The asyncio client of the Runs API: the same surface and the same constructor
    arguments as Client, with ``await``; an ``api_key``/``iam_token`` callable may be a
    coroutine function. Close it with ``await client.close()`` or ``async with``.

    ``client.runs`` (AsyncRuns) holds the calls: ``create``, ``get``, ``get_last_by_thread``,
    ``list``, ``listen``, ``wait``, ``submit_tool_results``, ``create_and_wait``,
    ``create_and_stream``; ``client.threads`` the threads.
    """

    def _setup(self, ssl_context: Optional["ssl.SSLContext"]) -> None:
        import weakref

        self._transport = _AsyncTransport(ssl_context)
        self._locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]" = \
            weakref.WeakKeyDictionary()
        self._locks_lock = threading.Lock()

    @property
    def runs(self) -> "AsyncRuns":
        """Create runs, fetch them, list them, awaited."""
        return AsyncRuns(self)

    @property
    def threads(self) -> "AsyncThreads":
        """Create threads, write to them, read them, awaited."""
        return AsyncThreads(self)

    def _token_lock(self) -> "asyncio.Lock":
        """One token fetch at a time per event loop (the sync client holds a thread lock)."""
        import asyncio

        loop = asyncio.get_running_loop()
        with self._locks_lock:
            lock = self._locks.get(loop)
            if lock is None:
                lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def close(self) -> None:
        """Close this event loop's pooled connections; the client reconnects if used again."""
        await self._transport.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _run(self, plan: "Plan[Any]") -> Any:
        """What ``plan`` returns, once the driver has performed all it asked for."""
        step = _Stepper(plan)
        async for _ in self._drive(step):
            pass
        return step.value

    async def _drive(self, step: _Stepper) -> AsyncIterator[RunStreamEvent]:
        """Performs what the plan yields and hands on the events it emits."""
        streams: List[_AsyncStream] = []
        clock = self._config.clock
        try:
            need = step.send(None)
            while need is not None:
                if need.__class__ is _Emit:
                    for event in need.events:
                        yield event
                    need = None  # the events delivered are not kept while the plan goes on
                    need = step.send(None)
                    continue
                if need.__class__ is _Pump:
                    pump, need = need, None
                    read, feed, deadline = streams[0].read, pump.feed, pump.deadline
                    while True:
                        try:
                            events = feed(None if pump.piece else await read(deadline, None))
                        except Exception as exc:
                            need = step.throw(exc)
                            break
                        if events is None:
                            need = step.send(None)
                            break
                        if events:
                            for event in events:
                                yield event
                            del events, event  # delivered: not kept while the next piece decodes
                            deadline = clock() + pump.wait
                    continue
                try:
                    need = step.send(await self._perform(need, streams))
                except Exception as exc:
                    need = step.throw(exc)
        finally:
            for stream in streams:
                stream.close()
            step.plan.close()
        step.outcome()

    async def _perform(self, need: Any, streams: List[_AsyncStream]) -> Any:
        kind = need.__class__
        if kind is _Read:
            return await streams[0].read(need.deadline, need.limit)
        if kind is _Open:
            for stream in streams:
                stream.close()
            streams.clear()
            config = self._config
            data, request_id = _request_bytes(config, need.request,
                                                    await self._authorization(need.deadline))
            stream = await self._transport.open(config.origin, data, need.request.method,
                                                need.deadline)
            streams.append(stream)
            if need.warm is not None:
                need.warm()
            return await stream.read(need.deadline, None), request_id
        if kind is _Sleep:
            import asyncio

            await asyncio.sleep(need.seconds)
            return None
        if kind is _Fetch:
            return await self._transport.fetch(need.method, need.url, need.headers, need.body,
                                               need.timeout)
        value = need.function(**need.arguments)  # _Invoke
        return await value if _is_awaitable(value) else value

    async def _authorization(self, deadline: float) -> str:
        config = self._config
        credentials = config.credentials
        header = credentials._header(config.clock())
        if header is None:
            async with self._token_lock():
                header = credentials._header(config.clock())
                if header is None:
                    header = await self._run(_token_plan(config, deadline))
        if not isinstance(header, str):
            header = credentials._finish(await header)
        return header


# ============================================================================
# Runs and Run
# ============================================================================


class Runs:
    """``client.runs``: create runs, fetch them, list them."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self, assistant: Any, thread: Any = None, *, stream: bool = False,
        labels: Optional[Mapping[str, str]] = None,
        additional_messages: Optional[Iterable[Any]] = None,
        instructions: Optional[str] = None,
        custom_temperature: Optional[float] = None, custom_max_tokens: Optional[int] = None,
        custom_max_prompt_tokens: Optional[int] = None,
        custom_prompt_truncation_strategy: Union[str, Mapping[str, int], None] = None,
        custom_response_format: Union[str, Mapping[str, Any], None] = None,
        tools: Optional[Iterable[Any]] = None, extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
    ) -> "Run":
        """Start a run of ``assistant`` on ``thread`` (ids, or objects with an ``id``).

        On Responses ``assistant`` is a model URI (gpt://<folder>/yandexgpt/latest), a model
        name of the client's folder ("yandexgpt/latest") or a saved agent's id, and ``thread``
        may be None (a stateless run). An argument the wire has no field for raises
        UnsupportedOperationError.
        """
        client = self._client
        return client._run(_create_plan(client._config, Run, self, assistant, thread, {  # type: ignore[no-any-return]
            "stream": stream, "labels": labels, "additional_messages": additional_messages,
            "instructions": instructions, "custom_temperature": custom_temperature,
            "custom_max_tokens": custom_max_tokens,
            "custom_max_prompt_tokens": custom_max_prompt_tokens,
            "custom_prompt_truncation_strategy": custom_prompt_truncation_strategy,
            "custom_response_format": custom_response_format, "tools": tools,
            "extra_body": extra_body}, timeout))

    def get(self, run_id: Any, *, timeout: Optional[float] = None) -> "Run":
        """The run as it is now; NotFoundError when there is no such run."""
        client = self._client
        return client._run(_get_plan(client._config, Run, self, run_id, timeout))  # type: ignore[no-any-return]

    def get_last_by_thread(self, thread: Any, *, timeout: Optional[float] = None) -> "Run":
        """The thread's most recent run (Assistant API only)."""
        client = self._client
        return client._run(_last_by_thread_plan(client._config, Run, self, thread, timeout))  # type: ignore[no-any-return]

    def list(self, *, page_size: Optional[int] = None, timeout: Optional[float] = None) -> Iterator["Run"]:
        """Every run in the folder, fetching pages as the iteration needs them (Assistant API
        only)."""
        return self._list(self._client._config.wire.pager(self._client.folder_id, page_size),
                          timeout)

    def _list(self, pager: _Pager, timeout: Optional[float]) -> Iterator["Run"]:
        request = pager.request()
        while request is not None:
            for obj in pager.accept(self._client._call(request, timeout)):
                yield self._client._config.wire.run(obj, Run, self, None, "ListRunsResponse.runs[]")
            request = pager.request()

    def listen(self, run_id: Any, *, events_start_idx: int = 0, timeout: Optional[float] = None,
               resume: bool = True) -> Iterator[RunStreamEvent]:
        """The events of the run with this id, as Run.listen gives them."""
        return Run(_id_of(run_id, "run"), _runs=self).listen(
            events_start_idx=events_start_idx, timeout=timeout, resume=resume)

    def wait(self, run_id: Any, *, timeout: Optional[float] = None,
             poll_timeout: Optional[float] = None,
             poll_interval: Optional[float] = None) -> RunResult:
        """The result of the run with this id once it stops, as Run.wait gives it."""
        return Run(_id_of(run_id, "run"), _runs=self).wait(
            timeout=timeout, poll_timeout=poll_timeout, poll_interval=poll_interval)

    def submit_tool_results(self, run_id: Any, tool_results: Any, *,
                            timeout: Optional[float] = None) -> "Run":
        """Send results for the run with this id, as Run.submit_tool_results does; the run
        as it goes on (on Responses, under the follow-up response's id)."""
        run = Run(_id_of(run_id, "run"), _runs=self)
        run.submit_tool_results(tool_results, timeout=timeout)
        return run

    def create_and_wait(
        self, assistant: Any, thread: Any = None, *, stream: bool = False,
        labels: Optional[Mapping[str, str]] = None,
        additional_messages: Optional[Iterable[Any]] = None,
        instructions: Optional[str] = None,
        custom_temperature: Optional[float] = None, custom_max_tokens: Optional[int] = None,
        custom_max_prompt_tokens: Optional[int] = None,
        custom_prompt_truncation_strategy: Union[str, Mapping[str, int], None] = None,
        custom_response_format: Union[str, Mapping[str, Any], None] = None,
        tools: Optional[Iterable[Any]] = None, extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        poll_timeout: Optional[float] = None, poll_interval: Optional[float] = None,
    ) -> RunResult:
        """``create`` (same arguments) then ``wait``: the finished run's result;
        WaitTimeoutError after ``poll_timeout``."""
        run = self.create(
            assistant, thread, stream=stream, labels=labels, additional_messages=additional_messages,
            instructions=instructions, custom_temperature=custom_temperature,
            custom_max_tokens=custom_max_tokens,
            custom_max_prompt_tokens=custom_max_prompt_tokens,
            custom_prompt_truncation_strategy=custom_prompt_truncation_strategy,
            custom_response_format=custom_response_format, tools=tools, extra_body=extra_body,
            timeout=timeout)
        return run.wait(timeout=timeout, poll_timeout=poll_timeout, poll_interval=poll_interval)

    def create_and_stream(
        self, assistant: Any, thread: Any = None, *,
        labels: Optional[Mapping[str, str]] = None,
        additional_messages: Optional[Iterable[Any]] = None,
        instructions: Optional[str] = None,
        custom_temperature: Optional[float] = None, custom_max_tokens: Optional[int] = None,
        custom_max_prompt_tokens: Optional[int] = None,
        custom_prompt_truncation_strategy: Union[str, Mapping[str, int], None] = None,
        custom_response_format: Union[str, Mapping[str, Any], None] = None,
        tools: Optional[Iterable[Any]] = None, extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        resume: bool = True,
    ) -> Iterator[RunStreamEvent]:
        """``create`` with ``stream=True`` (same arguments), then its events as they come."""
        run = self.create(
            assistant, thread, stream=True, labels=labels, additional_messages=additional_messages,
            instructions=instructions, custom_temperature=custom_temperature,
            custom_max_tokens=custom_max_tokens,
            custom_max_prompt_tokens=custom_max_prompt_tokens,
            custom_prompt_truncation_strategy=custom_prompt_truncation_strategy,
            custom_response_format=custom_response_format, tools=tools, extra_body=extra_body,
            timeout=timeout)
        return run.listen(timeout=timeout, resume=resume)


class Run(_RunFields):
    """A run as of one fetch (``status``, ``result``), with the calls that act on it."""

    def listen(self, *, events_start_idx: int = 0, timeout: Optional[float] = None,
               resume: bool = True) -> Iterator[RunStreamEvent]:
        """Events as each line completes; reconnects after drops unless ``resume=False``.

        ``timeout`` is the longest wait for the next event (a stall is resumed like a drop).
        Raises StreamError when the stream is malformed or could not be resumed, and the
        APIError of an error answer or an error line.
        """
        return self._runs._client._listen(_state_of(self), events_start_idx, timeout, resume)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[RunStreamEvent]:
        return self.listen()

    def text_stream(self, *, events_start_idx: int = 0, timeout: Optional[float] = None,
                    resume: bool = True) -> Iterator[str]:
        """Only the new text of each event; joined, the final message's text."""
        for event in self.listen(events_start_idx=events_start_idx, timeout=timeout,
                                 resume=resume):
            if event.delta:
                yield event.delta

    def listen_with(self, handler: Any, *, events_start_idx: int = 0, timeout: Optional[float] = None,
                    resume: bool = True) -> Optional[RunStreamEvent]:
        """Call the handler's on_event/on_text_delta/on_message_done/on_tool_calls/on_error;
        return the final event."""
        last = None
        for event in self.listen(events_start_idx=events_start_idx, timeout=timeout,
                                 resume=resume):
            for function, args in _handler_calls(handler, event):
                _not_awaitable(function(*args), getattr(function, "__name__", "handler"))
            last = event
        return last

    def refresh(self, *, timeout: Optional[float] = None) -> "Run":
        """This run fetched again (on Responses, its newest response)."""
        client = self._runs._client
        return client._run(_get_plan(client._config, Run, self._runs, _newest(self), timeout,  # type: ignore[no-any-return]
                                     _state_of(self)))

    def get_status(self, *, timeout: Optional[float] = None) -> RunStatus:
        return self.refresh(timeout=timeout).status

    def get_result(self, *, timeout: Optional[float] = None) -> RunResult:
        return self.refresh(timeout=timeout).result

    def wait(self, *, timeout: Optional[float] = None, poll_timeout: Optional[float] = None,
             poll_interval: Optional[float] = None) -> RunResult:
        """Poll until the run is finished (TOOL_CALLS included); WaitTimeoutError once
        ``poll_timeout`` (300 s) has passed, a poll in flight included."""
        client = self._runs._client
        return client._run(_wait_plan(client._config, _newest(self), timeout, poll_timeout,  # type: ignore[no-any-return]
                                      poll_interval, run=_state_of(self)))

    def submit_tool_results(self, tool_results: Any, *, timeout: Optional[float] = None) -> None:
        """Send results for a TOOL_CALLS run: one {"name", "content"} dict (with "call_id" on
        Responses, when two calls share a name) or an iterable of them. On Responses the run
        goes on as a follow-up response: ``run.id`` becomes its id (``run.response_ids`` has
        them all)."""
        client = self._runs._client
        client._run(client._config.wire.submit(client._config, _state_of(self), tool_results,
                                               timeout))
        _newest(self)  # run.id follows the chain

    def submit_tool_results_and_wait(self, tool_results: Any, *, timeout: Optional[float] = None,
                                     poll_timeout: Optional[float] = None,
                                     poll_interval: Optional[float] = None) -> RunResult:
        """``submit_tool_results`` then ``wait``: the result of the run's next stop (finished,
        or TOOL_CALLS again); BadRequestError when the run is not waiting for tool results."""
        self.submit_tool_results(tool_results, timeout=timeout)
        return self.wait(timeout=timeout, poll_timeout=poll_timeout, poll_interval=poll_interval)

    def run_tools(self, functions: Any, *, max_rounds: int = 8, timeout: Optional[float] = None,
                  poll_timeout: Optional[float] = None,
                  poll_interval: Optional[float] = None) -> RunResult:
        """Answer tool calls with ``functions`` (name -> callable) until the run finishes.

        A function's exception, or a call to an unknown name, is sent to the model as
        {"error": ...}; each round's calls run once, however late the service shows the
        submit. ToolLoopError after ``max_rounds`` rounds.
        """
        client = self._runs._client
        try:
            return client._run(_tools_plan(client._config, _state_of(self), functions,  # type: ignore[no-any-return]
                                           max_rounds, timeout, poll_timeout, poll_interval))
        finally:
            _newest(self)  # run.id follows the chain

    def cancel(self, *, timeout: Optional[float] = None) -> None:
        """Cancel the run (Responses: ``POST …/cancel``); UnsupportedOperationError on the
        Assistant API, which has no cancel."""
        client = self._runs._client
        client._call(client._config.wire.cancel_request(_newest(self)), timeout)

    @property
    def response_ids(self) -> Tuple[str, ...]:
        """The ids the run has had: on Responses, each response of its chain (a tool round
        goes on as a follow-up response), newest last; on the Assistant API, its one id."""
        return tuple(_state_of(self).ids)


# ============================================================================
# AsyncRuns and AsyncRun
# ============================================================================


class AsyncRuns:
    """``client.runs`` of an AsyncClient: the same calls as Runs, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self, assistant: Any, thread: Any = None, *, stream: bool = False,
        labels: Optional[Mapping[str, str]] = None,
        additional_messages: Optional[Iterable[Any]] = None,
        instructions: Optional[str] = None,
        custom_temperature: Optional[float] = None, custom_max_tokens: Optional[int] = None,
        custom_max_prompt_tokens: Optional[int] = None,
        custom_prompt_truncation_strategy: Union[str, Mapping[str, int], None] = None,
        custom_response_format: Union[str, Mapping[str, Any], None] = None,
        tools: Optional[Iterable[Any]] = None, extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
    ) -> "AsyncRun":
        """Start a run of ``assistant`` on ``thread`` (ids, or objects with an ``id``).

        On Responses ``assistant`` is a model URI (gpt://<folder>/yandexgpt/latest), a model
        name of the client's folder ("yandexgpt/latest") or a saved agent's id, and ``thread``
        may be None (a stateless run). An argument the wire has no field for raises
        UnsupportedOperationError.
        """
        client = self._client
        return await client._run(_create_plan(client._config, AsyncRun, self, assistant, thread, {  # type: ignore[no-any-return]
            "stream": stream, "labels": labels, "additional_messages": additional_messages,
            "instructions": instructions, "custom_temperature": custom_temperature,
            "custom_max_tokens": custom_max_tokens,
            "custom_max_prompt_tokens": custom_max_prompt_tokens,
            "custom_prompt_truncation_strategy": custom_prompt_truncation_strategy,
            "custom_response_format": custom_response_format, "tools": tools,
            "extra_body": extra_body}, timeout))

    async def get(self, run_id: Any, *, timeout: Optional[float] = None) -> "AsyncRun":
        """The run as it is now; NotFoundError when there is no such run."""
        client = self._client
        return await client._run(_get_plan(client._config, AsyncRun, self, run_id, timeout))  # type: ignore[no-any-return]

    async def get_last_by_thread(self, thread: Any, *, timeout: Optional[float] = None) -> "AsyncRun":
        """The thread's most recent run (Assistant API only)."""
        client = self._client
        return await client._run(_last_by_thread_plan(client._config, AsyncRun, self, thread, timeout))  # type: ignore[no-any-return]

    def list(self, *, page_size: Optional[int] = None,
             timeout: Optional[float] = None) -> AsyncIterator["AsyncRun"]:
        """Every run in the folder, fetching pages as the iteration needs them (Assistant API
        only)."""
        return self._list(self._client._config.wire.pager(self._client.folder_id, page_size),
                          timeout)

    async def _list(self, pager: _Pager, timeout: Optional[float]) -> AsyncIterator["AsyncRun"]:
        request = pager.request()
        while request is not None:
            for obj in pager.accept(await self._client._call(request, timeout)):
                yield self._client._config.wire.run(obj, AsyncRun, self, None,
                                                    "ListRunsResponse.runs[]")
            request = pager.request()

    def listen(self, run_id: Any, *, events_start_idx: int = 0, timeout: Optional[float] = None,
               resume: bool = True) -> AsyncIterator[RunStreamEvent]:
        """The events of the run with this id, as AsyncRun.listen gives them."""
        return AsyncRun(_id_of(run_id, "run"), _runs=self).listen(
            events_start_idx=events_start_idx, timeout=timeout, resume=resume)

    async def wait(self, run_id: Any, *, timeout: Optional[float] = None,
                   poll_timeout: Optional[float] = None,
                   poll_interval: Optional[float] = None) -> RunResult:
        """The result of the run with this id once it stops, as AsyncRun.wait gives it."""
        return await AsyncRun(_id_of(run_id, "run"), _runs=self).wait(
            timeout=timeout, poll_timeout=poll_timeout, poll_interval=poll_interval)

    async def submit_tool_results(self, run_id: Any, tool_results: Any, *,
                                  timeout: Optional[float] = None) -> "AsyncRun":
        """Send results for the run with this id, as AsyncRun.submit_tool_results does; the run
        as it goes on (on Responses, under the follow-up response's id)."""
        run = AsyncRun(_id_of(run_id, "run"), _runs=self)
        await run.submit_tool_results(tool_results, timeout=timeout)
        return run

    async def create_and_wait(
        self, assistant: Any, thread: Any = None, *, stream: bool = False,
        labels: Optional[Mapping[str, str]] = None,
        additional_messages: Optional[Iterable[Any]] = None,
        instructions: Optional[str] = None,
        custom_temperature: Optional[float] = None, custom_max_tokens: Optional[int] = None,
        custom_max_prompt_tokens: Optional[int] = None,
        custom_prompt_truncation_strategy: Union[str, Mapping[str, int], None] = None,
        custom_response_format: Union[str, Mapping[str, Any], None] = None,
        tools: Optional[Iterable[Any]] = None, extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        poll_timeout: Optional[float] = None, poll_interval: Optional[float] = None,
    ) -> RunResult:
        """``create`` (same arguments) then ``wait``: the finished run's result;
        WaitTimeoutError after ``poll_timeout``."""
        run = await self.create(
            assistant, thread, stream=stream, labels=labels, additional_messages=additional_messages,
            instructions=instructions, custom_temperature=custom_temperature,
            custom_max_tokens=custom_max_tokens,
            custom_max_prompt_tokens=custom_max_prompt_tokens,
            custom_prompt_truncation_strategy=custom_prompt_truncation_strategy,
            custom_response_format=custom_response_format, tools=tools, extra_body=extra_body,
            timeout=timeout)
        return await run.wait(timeout=timeout, poll_timeout=poll_timeout,
                              poll_interval=poll_interval)

    async def create_and_stream(
        self, assistant: Any, thread: Any = None, *,
        labels: Optional[Mapping[str, str]] = None,
        additional_messages: Optional[Iterable[Any]] = None,
        instructions: Optional[str] = None,
        custom_temperature: Optional[float] = None, custom_max_tokens: Optional[int] = None,
        custom_max_prompt_tokens: Optional[int] = None,
        custom_prompt_truncation_strategy: Union[str, Mapping[str, int], None] = None,
        custom_response_format: Union[str, Mapping[str, Any], None] = None,
        tools: Optional[Iterable[Any]] = None, extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
        resume: bool = True,
    ) -> AsyncIterator[RunStreamEvent]:
        """``create`` with ``stream=True`` (same arguments), then its events as they come."""
        run = await self.create(
            assistant, thread, stream=True, labels=labels, additional_messages=additional_messages,
            instructions=instructions, custom_temperature=custom_temperature,
            custom_max_tokens=custom_max_tokens,
            custom_max_prompt_tokens=custom_max_prompt_tokens,
            custom_prompt_truncation_strategy=custom_prompt_truncation_strategy,
            custom_response_format=custom_response_format, tools=tools, extra_body=extra_body,
            timeout=timeout)
        return run.listen(timeout=timeout, resume=resume)


class AsyncRun(_RunFields):
    """A run as of one fetch, with the calls that act on it, awaited."""

    def listen(self, *, events_start_idx: int = 0, timeout: Optional[float] = None,
               resume: bool = True) -> AsyncIterator[RunStreamEvent]:
        """Events as each line completes; reconnects after drops unless ``resume=False``.

        ``timeout`` is the longest wait for the next event (a stall is resumed like a drop).
        Raises StreamError when the stream is malformed or could not be resumed, and the
        APIError of an error answer or an error line. Cancelling the task or leaving
        ``async for`` closes the connection at once.
        """
        return self._runs._client._listen(_state_of(self), events_start_idx, timeout, resume)  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[RunStreamEvent]:
        return self.listen()

    async def text_stream(self, *, events_start_idx: int = 0, timeout: Optional[float] = None,
                          resume: bool = True) -> AsyncIterator[str]:
        """Only the new text of each event; joined, the final message's text."""
        async for event in self.listen(events_start_idx=events_start_idx, timeout=timeout,
                                       resume=resume):
            if event.delta:
                yield event.delta

    async def listen_with(self, handler: Any, *, events_start_idx: int = 0, timeout: Optional[float] = None,
                          resume: bool = True) -> Optional[RunStreamEvent]:
        """Call the handler's callbacks (sync or async) for each event; return the final one."""
        last = None
        async for event in self.listen(events_start_idx=events_start_idx, timeout=timeout,
                                       resume=resume):
            for function, args in _handler_calls(handler, event):
                value = function(*args)
                if _is_awaitable(value):
                    await value
            last = event
        return last

    async def refresh(self, *, timeout: Optional[float] = None) -> "AsyncRun":
        """This run fetched again (on Responses, its newest response)."""
        client = self._runs._client
        return await client._run(_get_plan(client._config, AsyncRun, self._runs, _newest(self),  # type: ignore[no-any-return]
                                           timeout, _state_of(self)))

    async def get_status(self, *, timeout: Optional[float] = None) -> RunStatus:
        return (await self.refresh(timeout=timeout)).status

    async def get_result(self, *, timeout: Optional[float] = None) -> RunResult:
        return (await self.refresh(timeout=timeout)).result

    async def wait(self, *, timeout: Optional[float] = None, poll_timeout: Optional[float] = None,
             poll_interval: Optional[float] = None) -> RunResult:
        """Poll until the run is finished (TOOL_CALLS included); WaitTimeoutError once
        ``poll_timeout`` (300 s) has passed, a poll in flight included."""
        client = self._runs._client
        return await client._run(_wait_plan(client._config, _newest(self), timeout,  # type: ignore[no-any-return]
                                            poll_timeout, poll_interval, run=_state_of(self)))

    async def submit_tool_results(self, tool_results: Any, *, timeout: Optional[float] = None) -> None:
        """Send results for a TOOL_CALLS run: one {"name", "content"} dict (with "call_id" on
        Responses, when two calls share a name) or an iterable of them. On Responses the run
        goes on as a follow-up response: ``run.id`` becomes its id (``run.response_ids`` has
        them all)."""
        client = self._runs._client
        await client._run(client._config.wire.submit(client._config, _state_of(self), tool_results,
                                               timeout))
        _newest(self)  # run.id follows the chain

    async def submit_tool_results_and_wait(self, tool_results: Any, *, timeout: Optional[float] = None,
                                           poll_timeout: Optional[float] = None,
                                           poll_interval: Optional[float] = None) -> RunResult:
        """``submit_tool_results`` then ``wait``, awaited: the result of the run's next stop."""
        await self.submit_tool_results(tool_results, timeout=timeout)
        return await self.wait(timeout=timeout, poll_timeout=poll_timeout,
                               poll_interval=poll_interval)

    async def run_tools(self, functions: Any, *, max_rounds: int = 8, timeout: Optional[float] = None,
                        poll_timeout: Optional[float] = None,
                        poll_interval: Optional[float] = None) -> RunResult:
        """Answer tool calls with ``functions`` (sync or async callables) until the run
        finishes; as Run.run_tools."""
        client = self._runs._client
        try:
            return await client._run(_tools_plan(client._config, _state_of(self), functions,  # type: ignore[no-any-return]
                                                 max_rounds, timeout, poll_timeout, poll_interval))
        finally:
            _newest(self)  # run.id follows the chain

    async def cancel(self, *, timeout: Optional[float] = None) -> None:
        """Cancel the run (Responses: ``POST …/cancel``); UnsupportedOperationError on the
        Assistant API, which has no cancel."""
        client = self._runs._client
        await client._call(client._config.wire.cancel_request(_newest(self)), timeout)

    @property
    def response_ids(self) -> Tuple[str, ...]:
        """The ids the run has had, newest last; as Run.response_ids."""
        return tuple(_state_of(self).ids)


# ============================================================================
# Threads: a thread of messages on either wire (a conversation on Responses)
# ============================================================================


class Threads:
    """``client.threads``: create threads, fetch them; on the Assistant API also list and
    delete them."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, messages: Any = None, *, name: Optional[str] = None,
               labels: Optional[Mapping[str, str]] = None,
               timeout: Optional[float] = None) -> "Thread":
        """A new thread holding ``messages`` (strings, or message dicts with a role)."""
        config = self._client._config
        request = config.wire.thread_create_request(config, messages, name, labels)
        return self._client._run(_thread_plan(config, Thread, self, request, timeout))  # type: ignore[no-any-return]

    def get(self, thread: Any, *, timeout: Optional[float] = None) -> "Thread":
        """The thread with this id; NotFoundError when there is none."""
        config = self._client._config
        return self._client._run(_thread_plan(config, Thread, self,  # type: ignore[no-any-return]
                                              config.wire.thread_get_request(thread), timeout))

    def delete(self, thread: Any, *, timeout: Optional[float] = None) -> None:
        """Delete the thread (Assistant API only: Yandex does not support deleting a
        conversation)."""
        self._client._call(self._client._config.wire.thread_delete_request(thread), timeout)

    def list(self, *, page_size: Optional[int] = None,
             timeout: Optional[float] = None) -> Iterator["Thread"]:
        """Every thread in the folder (Assistant API only)."""
        pager = self._client._config.wire.thread_pager(self._client.folder_id, page_size)
        return self._list(pager, timeout)

    def _list(self, pager: _Pager, timeout: Optional[float]) -> Iterator["Thread"]:
        request = pager.request()
        while request is not None:
            for obj in pager.accept(self._client._call(request, timeout)):
                yield self._client._config.wire.thread(obj, Thread, self)
            request = pager.request()


@dataclass(frozen=True, repr=False, eq=False)
class _ThreadFields(_Data):
    """What a thread is, as fetched (Thread and AsyncThread add the calls)."""

    id: str
    name: str = ""
    labels: Dict[str, str] = field(default_factory=dict)
    created_at: Optional[datetime] = None
    _threads: Any = field(default=None, repr=False, compare=False)


class Thread(_ThreadFields):
    """A thread as of one fetch, with the calls that act on it; pass it (or its id) as the
    ``thread`` of runs.create."""

    def write(self, message: Any, *, timeout: Optional[float] = None) -> Message:
        """Add a message (text, or a message dict with a role) to the thread; the Message."""
        client = self._threads._client
        return client._run(_write_plan(client._config, self, message, timeout))  # type: ignore[no-any-return]

    def messages(self, *, timeout: Optional[float] = None) -> Iterator[Message]:
        """The thread's messages, newest first."""
        client = self._threads._client
        return iter(client._run(client._config.wire.messages_plan(client._config, self, timeout)))

    def delete(self, *, timeout: Optional[float] = None) -> None:
        """Delete the thread (Assistant API only)."""
        self._threads.delete(self.id, timeout=timeout)


class AsyncThreads:
    """``client.threads`` of an AsyncClient: the same calls as Threads, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, messages: Any = None, *, name: Optional[str] = None,
                     labels: Optional[Mapping[str, str]] = None,
                     timeout: Optional[float] = None) -> "AsyncThread":
        """A new thread holding ``messages`` (strings, or message dicts with a role)."""
        config = self._client._config
        request = config.wire.thread_create_request(config, messages, name, labels)
        return await self._client._run(_thread_plan(config, AsyncThread, self, request, timeout))  # type: ignore[no-any-return]

    async def get(self, thread: Any, *, timeout: Optional[float] = None) -> "AsyncThread":
        """The thread with this id; NotFoundError when there is none."""
        config = self._client._config
        return await self._client._run(_thread_plan(config, AsyncThread, self,  # type: ignore[no-any-return]
                                                    config.wire.thread_get_request(thread), timeout))

    async def delete(self, thread: Any, *, timeout: Optional[float] = None) -> None:
        """Delete the thread (Assistant API only)."""
        await self._client._call(self._client._config.wire.thread_delete_request(thread), timeout)

    def list(self, *, page_size: Optional[int] = None,
             timeout: Optional[float] = None) -> AsyncIterator["AsyncThread"]:
        """Every thread in the folder (Assistant API only)."""
        pager = self._client._config.wire.thread_pager(self._client.folder_id, page_size)
        return self._list(pager, timeout)

    async def _list(self, pager: _Pager, timeout: Optional[float]) -> AsyncIterator["AsyncThread"]:
        request = pager.request()
        while request is not None:
            for obj in pager.accept(await self._client._call(request, timeout)):
                yield self._client._config.wire.thread(obj, AsyncThread, self)
            request = pager.request()


class AsyncThread(_ThreadFields):
    """A thread as of one fetch, with the calls that act on it, awaited."""

    async def write(self, message: Any, *, timeout: Optional[float] = None) -> Message:
        """Add a message (text, or a message dict with a role) to the thread; the Message."""
        client = self._threads._client
        return await client._run(_write_plan(client._config, self, message, timeout))  # type: ignore[no-any-return]

    async def messages(self, *, timeout: Optional[float] = None) -> AsyncIterator[Message]:
        """The thread's messages, newest first."""
        client = self._threads._client
        for message in await client._run(client._config.wire.messages_plan(client._config, self,
                                                                           timeout)):
            yield message

    async def delete(self, *, timeout: Optional[float] = None) -> None:
        """Delete the thread (Assistant API only)."""
        await self._threads.delete(self.id, timeout=timeout)


# ============================================================================
# Emulator: request checks as a proto3 JSON gateway or an OpenAI-style API makes them (sans-IO)
# ============================================================================


class _Refusal(Exception):
    """An answer with an error body instead of a result: HTTP status, gRPC code, message."""

    def __init__(self, status: int, grpc: int, message: str, param: Optional[str] = None,
                 code: Optional[str] = None) -> None:
        super().__init__(message)
        self.status, self.grpc, self.message = status, grpc, message
        self.param, self.code = param, code  # the field and the OpenAI-style error code


def _invalid(message: str, param: Optional[str] = None, code: Optional[str] = None) -> _Refusal:
    return _Refusal(400, 3, message, param, code)


def _not_found(message: str) -> _Refusal:
    return _Refusal(404, 5, message)


class _Scalar:
    """string | bool | int64 | double | struct (any JSON object)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


class _Enum:
    def __init__(self, name: str, names: Sequence[str], by_number: bool = True) -> None:
        self.name, self.names, self.by_number = name, list(names), by_number


class _Repeated:
    def __init__(self, item: _Type) -> None:
        self.item = item


class _MapOf:
    def __init__(self, value: _Type) -> None:
        self.value = value


class _Union:
    """The first of ``kinds`` whose JSON type the value has (a string or a list, ...)."""

    def __init__(self, what: str, kinds: Sequence[_Type]) -> None:
        self.what, self.kinds = what, list(kinds)


class _Tagged:
    """An object whose ``type`` names the message it is (``default`` when it has none)."""

    def __init__(self, name: str, messages: Mapping[str, "_Message"],
                 default: Optional[str] = None) -> None:
        self.name, self.messages, self.default = name, dict(messages), default


class _Message:
    """A request message: its fields by JSON name, the required ones, the oneof groups."""

    def __init__(self, name: str, fields: Mapping[str, _Type], required: Sequence[str] = (),
                 oneofs: Sequence[Sequence[str]] = ()) -> None:
        self.name = name
        self.fields = dict(fields)
        self.required = tuple(required)
        self.oneofs = [tuple(group) for group in oneofs]
        # the proto field names (snake_case) are accepted as well as the JSON names
        self.aliases = {re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), f): f
                        for f in fields}


if TYPE_CHECKING:  # pragma: no cover
    _Type = Union[_Scalar, _Enum, _Repeated, _MapOf, _Message, _Union, _Tagged]

_STRING, _BOOL, _INT64 = _Scalar("string"), _Scalar("bool"), _Scalar("int64")
_DOUBLE, _STRUCT = _Scalar("double"), _Scalar("struct")
# JSON's own types, as an OpenAI-style API checks them: no numbers in strings
_INTEGER, _NUMBER, _ANY = _Scalar("integer"), _Scalar("number"), _Scalar("any")
# the emulator's patterns are sources, compiled (and cached by re) at their first use, not
# by import yc_runs
_INT64_TEXT = r"-?[0-9]+\Z"
_DOUBLE_TEXT = r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\Z"
_DOUBLE_WORDS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _field_path(path: str, name: str) -> str:
    return name if not path else path + "." + name


def _check(kind: _Type, value: Any, path: str) -> Any:
    """``value`` checked against ``kind`` and normalised as the service echoes it: JSON
    names, int64 as strings, enums by name, nulls and unknown fields dropped. Raises
    _Refusal (400, INVALID_ARGUMENT) naming ``path``."""
    if isinstance(kind, _Message):
        if not isinstance(value, dict):
            raise _invalid("%s: expected a %s object, got %s" % (path or kind.name, kind.name,
                                                                  _shown(value)),
                           path or None, "invalid_type")
        checked: Dict[str, Any] = {}
        for key, item in value.items():
            name = key if key in kind.fields else kind.aliases.get(key)
            if name is None or item is None:  # unknown fields are ignored; null is the default
                continue
            if name in checked:
                raise _invalid("%s: given twice (as %s and %s)" % (_field_path(path, name), name,
                                                                   key),
                               _field_path(path, name), "invalid_value")
            checked[name] = _check(kind.fields[name], item, _field_path(path, name))
        for group in kind.oneofs:
            given = [name for name in group if name in checked]
            if len(given) > 1:
                raise _invalid("%s: only one of %s may be set" % (
                    path or kind.name, " and ".join(_field_path(path, g) for g in given)),
                    _field_path(path, given[-1]), "mutually_exclusive_parameters")
        for name in kind.required:
            if checked.get(name) in (None, "", [], {}):
                raise _invalid("%s is required" % _field_path(path, name), _field_path(path, name),
                               "missing_required_parameter")
        return checked
    if isinstance(kind, _Tagged):
        if not isinstance(value, dict):
            raise _invalid("%s: expected a %s object, got %s" % (path, kind.name, _shown(value)),
                           path, "invalid_type")
        tag = value.get("type", kind.default)
        if tag not in kind.messages:
            raise _invalid("%s: %s is not a %s type (one of %s)" % (
                _field_path(path, "type"), _shown(tag), kind.name, ", ".join(kind.messages)),
                _field_path(path, "type"), "invalid_value")
        return dict(_check(kind.messages[tag], value, path), type=tag)
    if isinstance(kind, _Union):
        for option in kind.kinds:
            if _fits(option, value):
                return _check(option, value, path)
        raise _invalid("%s: expected %s, got %s" % (path, kind.what, _shown(value)), path,
                       "invalid_type")
    if isinstance(kind, _Repeated):
        if not isinstance(value, list):
            raise _invalid("%s: expected a list, got %s" % (path, _shown(value)), path,
                           "invalid_type")
        items = []
        for i, item in enumerate(value):
            if item is None:
                raise _invalid("%s[%d]: null is not a valid list element" % (path, i),
                               "%s[%d]" % (path, i), "invalid_type")
            items.append(_check(kind.item, item, "%s[%d]" % (path, i)))
        return items
    if isinstance(kind, _MapOf):
        if not isinstance(value, dict):
            raise _invalid("%s: expected an object of values, got %s" % (path, _shown(value)),
                           path, "invalid_type")
        return {key: _check(kind.value, item, "%s[%s]" % (path, _shown(key)))
                for key, item in value.items()}
    if isinstance(kind, _Enum):
        if isinstance(value, str) and value in kind.names:
            return value
        if kind.by_number and isinstance(value, int) and not isinstance(value, bool) \
                and -2**31 <= value < 2**31:
            return kind.names[value] if 0 <= value < len(kind.names) else value
        raise _invalid("%s: %s is not a %s (one of %s)" % (path, _shown(value), kind.name,
                                                           ", ".join(kind.names)),
                       path, "invalid_value")
    return _check_scalar(kind.kind, value, path)


def _fits(kind: _Type, value: Any) -> bool:
    """Whether ``value`` has the JSON type ``kind`` is made of (not yet its contents)."""
    if isinstance(kind, (_Message, _Tagged, _MapOf)):
        return isinstance(value, dict)
    if isinstance(kind, _Repeated):
        return isinstance(value, list)
    if isinstance(kind, _Union):
        return any(_fits(option, value) for option in kind.kinds)
    if isinstance(kind, _Enum) or kind.kind == "string":
        return isinstance(value, str)
    if kind.kind == "struct":
        return isinstance(value, dict)
    if kind.kind == "bool":
        return isinstance(value, bool)
    return kind.kind == "any" or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _check_scalar(kind: str, value: Any, path: str) -> Any:
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "struct" and isinstance(value, dict):
        return value
    if kind == "any":
        return value
    if kind in ("integer", "number") and isinstance(value, (int, float)) \
            and not isinstance(value, bool) and (kind == "number" or isinstance(value, int)):
        return value
    if kind == "int64" and not isinstance(value, bool):
        number: Optional[int] = None
        if isinstance(value, int):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
                isinstance(value, str) and re.match(_INT64_TEXT, value)):
            number = int(value)
        if number is not None and -2**63 <= number < 2**63:
            return str(number)
    if kind == "double" and not isinstance(value, bool):
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            if value in _DOUBLE_WORDS:
                return _DOUBLE_WORDS[value]
            if re.match(_DOUBLE_TEXT, value):
                return float(value)
    what = {"string": "a string", "bool": "a bool (true or false)", "struct": "a JSON object",
            "int64": "an int64 (a number or a decimal string)", "double": "a number",
            "integer": "an integer", "number": "a number"}[kind]
    raise _invalid("%s: expected %s, got %s" % (path, what, _shown(value)), path, "invalid_type")


def _non_negative(query: Dict[str, Any], name: str, default: int) -> int:
    value = int(query.get(name, default))
    if value < 0:
        raise _invalid("%s: must not be negative, got %d" % (name, value))
    return value


# ============================================================================
# Emulator: recorded requests, faults, and the threads and runs it keeps
# ============================================================================


@dataclass(frozen=True, repr=False, eq=False)
class RecordedRequest(_Data):
    """A request the emulator received; the credential in ``headers`` is masked.
    ``path`` is decoded, ``raw_path`` as sent (percent-encoded); neither has the query."""

    method: str
    path: str
    query: Dict[str, str]
    headers: Dict[str, str]
    json: Any
    raw_path: str = ""


class _RequestLog(list[RecordedRequest]):
    """``emu.requests``: a list that keeps only the newest ``keep`` requests (None: all)."""

    def __init__(self, keep: Optional[int]) -> None:
        super().__init__()
        self.keep = keep

    def append(self, request: RecordedRequest) -> None:
        super().append(request)
        if self.keep is not None and len(self) > self.keep:
            del self[:len(self) - self.keep]


@dataclass(frozen=True, repr=False, eq=False)
class Fault(_Data):
    """A misbehaviour for ``Emulator.inject``; build one with the class methods."""

    kind: str
    status: int = 503
    message: str = ""
    retry_after: Optional[float] = None
    after_bytes: int = 0
    after_events: int = 1
    seconds: float = 0.0

    @classmethod
    def http_status(cls, status: int = 503, message: str = "",
                    retry_after: Optional[float] = None) -> "Fault":
        """Answer with this HTTP status, its standard gRPC code and an error body
        (and ``Retry-After`` only when ``retry_after`` is given)."""
        return cls("status", status=status, message=message, retry_after=retry_after)

    @classmethod
    def cut(cls, after_bytes: int = 0) -> "Fault":
        """Close the connection after ``after_bytes`` bytes of a streamed body."""
        return cls("cut", after_bytes=after_bytes)

    @classmethod
    def stall(cls, seconds: float, after_events: int = 1) -> "Fault":
        """Go silent for ``seconds``: mid-stream on Listen, before answering elsewhere."""
        return cls("stall", seconds=seconds, after_events=after_events)

    @classmethod
    def malformed_line(cls, after_events: int = 1) -> "Fault":
        """Send a line that is not JSON in the middle of a streamed body."""
        return cls("malformed", after_events=after_events)


# google.rpc's HTTP mapping: the gRPC code a service pairs with each HTTP status
_HTTP_TO_GRPC = {400: 3, 401: 16, 403: 7, 404: 5, 409: 10, 429: 8, 499: 1, 500: 13, 501: 12,
                 502: 14, 503: 14, 504: 4}


class _Armed:
    def __init__(self, fault: Fault, on: Optional[str], times: Optional[int],
                 probability: Optional[float]) -> None:
        self.fault, self.on, self.times, self.probability = fault, on, times, probability


if TYPE_CHECKING:  # pragma: no cover
    class _Script(NamedTuple):
        replies: List[List[str]]
        tool_calls: List[Dict[str, Any]]
        error: Optional[str]
        delay: Optional[float]
        tool_rounds: int = 1
else:
    _Script = namedtuple("_Script", "replies tool_calls error delay tool_rounds", defaults=(1,))


class _EmulatedThread:
    def __init__(self, thread: Dict[str, Any]) -> None:
        self.json = thread  # the Thread as Get answers it
        self.messages: List[Dict[str, Any]] = []  # Message objects, oldest first


class _EmulatedRun:
    def __init__(self, run_id: str, body: Dict[str, Any], folder: str, created: str,
                 thread: _EmulatedThread) -> None:
        self.id = run_id
        self.body = body  # the checked CreateRunRequest
        self.folder = folder
        self.created = created
        self.thread = thread
        self.events: List[Tuple[float, Dict[str, Any]]] = []  # (due, StreamEvent)
        # (since, state, usage so far or None): what Get answers from `since` on
        self.timeline: List[Tuple[float, Dict[str, Any], Optional[Dict[str, str]]]] = []
        self.usage = (0, 0)  # prompt and completion tokens of the rounds planned so far
        self.rounds = 0
        self.submits = 0

    def state(self, now: float) -> Tuple[Dict[str, Any], Optional[Dict[str, str]]]:
        current: Tuple[Dict[str, Any], Optional[Dict[str, str]]] = ({"status": "PENDING"}, None)
        for since, state, usage in self.timeline:
            if since <= now:
                current = state, usage
        return current


_ID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"


def _emulator_id(prefix: str = "fvt") -> str:
    """An id shaped like the service's: 20 characters from 0-9a-v."""
    bits = int.from_bytes(os.urandom(11), "big")
    return prefix + "".join(_ID_ALPHABET[(bits >> (5 * i)) & 31] for i in range(20 - len(prefix)))


def _rfc3339(ns: Optional[int] = None) -> str:
    """RFC 3339 with nine fractional digits, as the service writes it; now when None."""
    ns = time.time_ns() if ns is None else ns
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + ".%09dZ" % (ns % 10**9)


class _Threads(Mapping[str, "Dict[str, Any]"]):
    """``emu.threads``: the threads the emulator knows, by id (each a Thread as Get answers
    it); ``create`` adds one, as a test's setup would through the API."""

    def __init__(self, emu: "Emulator") -> None:
        self._emu = emu
        self._by_id: Dict[str, _EmulatedThread] = {}

    def create(self, thread_id: Optional[str] = None, *, folder_id: str = "",
               messages: Sequence[Union[str, Mapping[str, Any]]] = (),
               labels: Optional[Mapping[str, str]] = None) -> str:
        """Create a thread (``thread_id`` or a new id) with ``messages`` (strings or
        MessageData objects) in it; returns its id. Raises ValueError on a bad message or
        an id already taken."""
        body: Dict[str, Any] = {"folderId": folder_id or "emulator-folder", "messages": [
            {"content": {"content": [{"text": {"content": m}}]}} if isinstance(m, str) else dict(m)
            for m in messages], "labels": dict(labels or {})}
        try:
            checked = _check(_CREATE_THREAD, body, "")
        except _Refusal as refusal:
            raise ValueError(refusal.message) from None
        with self._emu._lock:
            if thread_id is not None and thread_id in self._by_id:
                raise ValueError("thread %s already exists" % thread_id)
            return str(self._emu._new_thread(checked, thread_id).json["id"])

    def messages(self, thread_id: str) -> List[Dict[str, Any]]:
        """The thread's messages, oldest first, as Message.Get answers them."""
        with self._emu._lock:
            return list(self._by_id[thread_id].messages)

    def __getitem__(self, thread_id: str) -> Dict[str, Any]:
        with self._emu._lock:
            return dict(self._by_id[thread_id].json)

    def __iter__(self) -> Iterator[str]:
        with self._emu._lock:
            return iter(list(self._by_id))

    def __len__(self) -> int:
        return len(self._by_id)


# ============================================================================
# Emulator: the stand-in service (control, scripts, run plans, tool results)
# ============================================================================


class Emulator:
    """Both wires on one local port, for tests and demos: the Responses and Conversations
    APIs (``/v1/...``) and the Assistant API's runs, threads and messages
    (``/assistants/v1/...``); no credentials, no network.

    ``with Emulator() as emu: Client(base_url=emu.url, api_key="test")``. Strict like the
    service: a run needs a thread that exists (``emu.threads.create()`` or the Threads API;
    a conversation on Responses) and an assistant it knows (``script``; on Responses any
    model URI ``gpt://<folder>/<model>[/<branch>]``, and a saved agent's ``prompt.id`` when
    scripted); ``implicit=True`` makes any id work. The same scripts drive both wires. Its
    assistant echoes the last user message in a few partial messages; with function tools
    it first asks for the first tool and then answers with the submitted result. ``script``
    changes that per assistant; ``inject`` makes it misbehave; ``requests`` records what
    it got (the newest ``keep_requests``). ``latency`` is a delay before each answer and
    between events (seconds, or "realistic": about as slow as the service); ``chunking``
    "random" splits streamed lines at seeded random bytes ("lines": a chunk per line).
    ``clock`` is the monotonic time the runs' timelines follow (default time.monotonic): a
    test's own clock lets it step a run through its states without sleeping; streams then
    wait for it to reach each event. Latency and stall faults are real sleeps either way,
    as they are there to make a client's socket time out.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, event_delay: float = 0.005,
                 seed: Optional[int] = None, log: Any = None,
                 api_key: Optional[str] = None, implicit: bool = False,
                 latency: Union[None, float, str] = None, chunking: str = "lines",
                 keep_requests: Optional[int] = 10_000,
                 clock: Optional[Callable[[], float]] = None) -> None:
        import random

        if latency is not None and latency != "realistic" and (
                isinstance(latency, (str, bool)) or not latency >= 0):
            raise ValueError("latency must be seconds >= 0 or 'realistic', got %r" % (latency,))
        if chunking not in ("lines", "random"):
            raise ValueError("chunking must be 'lines' or 'random', got %r" % (chunking,))
        if keep_requests is not None and keep_requests < 1:
            raise ValueError("keep_requests must be at least 1 or None")
        if clock is not None and not callable(clock):
            raise TypeError("clock must be a callable returning seconds, not %s"
                            % type(clock).__name__)
        self.host = host
        self.port = port
        self.event_delay = event_delay
        self.seed = seed
        self.log = log
        self.api_key = api_key
        self.implicit = implicit
        self.latency = latency
        self.chunking = chunking
        self.clock: Callable[[], float] = time.monotonic if clock is None else clock
        self.requests: List[RecordedRequest] = _RequestLog(keep_requests)
        self.runs: Dict[str, _EmulatedRun] = {}
        self.threads = _Threads(self)
        self.account_id = _emulator_id("aje")  # createdBy of everything it makes
        self._scripts: Dict[str, _Script] = {}
        self._answered: Dict[str, int] = {}  # replies given per scripted assistant
        self._faults: List[_Armed] = []
        self._random = random.Random(seed)
        self._chunk_seeds = random.Random(seed)
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: Optional[threading.Thread] = None
        self.dialects: List[_Dialect] = [_ASSISTANT_API, _RESPONSES_API]  # the wires it speaks
        self.responses: Dict[str, _EmulatedResponse] = {}  # the stored ones, by id
        self.conversations: Dict[str, _EmulatedConversation] = {}

    # --- control ------------------------------------------------------------

    def __repr__(self) -> str:
        running = self._server is not None and (self._thread is None or self._thread.is_alive())
        where = self.url if running else "not running"
        return "<yc_runs.Emulator %s, %d runs, %d responses, %d requests>" % (
            where, len(self.runs), len(self.responses), len(self.requests))

    @property
    def url(self) -> str:
        """``http://host:port`` to pass as a client's base_url; RuntimeError before start()."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; use start() or a with block")
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self._server.server_address[1])

    def start(self) -> "Emulator":
        """Bind and serve in a background thread; returns self."""
        self._server = _emulator_server(self)
        self._thread = threading.Thread(target=self._server.serve_until_stopped,
                                        name="yc_runs.Emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind and serve in this thread until KeyboardInterrupt or stop()."""
        self._server = _emulator_server(self)
        try:
            self._server.serve_until_stopped()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        """Stop serving (at once: the serving loop is woken, not polled) and close the socket."""
        if self._server is not None:
            self._server.stop_serving()
            if self._thread is not None:
                self._thread.join(5)
            self._server.server_close()

    def _wait_until(self, due: float) -> None:
        """Sleep until ``due`` on the emulator's clock: at once on time.monotonic; in steps of
        5 ms on another clock (a test's, moved by the test), giving up when stopped."""
        while True:
            remaining = due - self.clock()
            if remaining <= 0:
                return
            if self.clock is time.monotonic:
                time.sleep(remaining)
                return
            server = self._server
            if server is None or getattr(server, "stopping", False):
                return
            time.sleep(min(remaining, 0.005))

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def script(self, assistant_id: str, *, replies: Optional[Sequence[Union[str, Sequence[str]]]] = None,
               tool_calls: Optional[Sequence[Mapping[str, Any]]] = None,
               error: Optional[str] = None, delay: Optional[float] = None,
               tool_rounds: int = 1) -> None:
        """Make an assistant known and script it: ``replies`` for successive answers (a
        string, or the pieces its partial messages grow by), ``tool_calls`` ({"name",
        "arguments"}) to ask for in each of the first ``tool_rounds`` rounds before
        answering, ``error`` to fail with, ``delay`` between events. With neither replies
        nor tool_calls it behaves as the default assistant."""
        pieces = [[r] if isinstance(r, str) else [str(p) for p in r] for r in (replies or [])]
        calls = [{"name": str(c["name"]), "arguments": _as_struct(dict(c.get("arguments") or {}))}
                 for c in (tool_calls or [])]
        with self._lock:
            self._scripts[assistant_id] = _Script(pieces, calls, error, delay, tool_rounds)
            self._answered.pop(assistant_id, None)

    def inject(self, fault: Fault, *, on: Optional[str] = None, times: Optional[int] = 1,
               probability: Optional[float] = None) -> None:
        """Arm ``fault`` for requests to ``on`` (an endpoint: create, get, getByThread, list,
        listen, submit, createThread, …; on Responses createResponse, getResponse,
        listenResponse (a Get with stream=true), cancelResponse, createConversation,
        addItems, listItems, …; None for any): the next ``times`` of them, or each with
        ``probability`` (seeded by ``seed``) up to ``times`` (None: no limit)."""
        endpoints = [route.endpoint for dialect in self.dialects for route in dialect.routes]
        if on is not None and on not in endpoints:
            raise ValueError("on must be one of %s, got %r" % (", ".join(endpoints), on))
        with self._lock:
            self._faults.append(_Armed(fault, on, times, probability))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    # --- behaviour (the caller holds the lock unless it says otherwise) -----

    def _dialect_for(self, raw_path: str) -> _Dialect:
        """The dialect whose prefix the path has (the first one for a path of none)."""
        for dialect in self.dialects:
            if raw_path.startswith(dialect.prefix):
                return dialect
        return self.dialects[0]

    def _fault(self, endpoint: str, streams: bool) -> Optional[Fault]:
        with self._lock:
            for armed in self._faults:
                if armed.on not in (None, endpoint) or armed.times == 0:
                    continue
                if armed.fault.kind in ("cut", "malformed") and not streams:
                    continue
                if armed.probability is not None and self._random.random() >= armed.probability:
                    continue
                if armed.times is not None:
                    armed.times -= 1
                return armed.fault
        return None

    def _pace(self, script: Optional[_Script]) -> Tuple[float, float]:
        """Seconds to the first event of a round, and between events."""
        if script is not None and script.delay is not None:
            return script.delay, script.delay
        if self.latency == "realistic":
            return 1.2, 0.25  # recorded runs: about a second to the first token
        if isinstance(self.latency, (int, float)):
            delay = max(self.event_delay, float(self.latency))
            return delay, delay
        return self.event_delay, self.event_delay

    def _answer_delay(self) -> float:
        """Seconds to wait before any answer (taken without the lock)."""
        if self.latency == "realistic":
            return 0.04
        return float(self.latency) if isinstance(self.latency, (int, float)) else 0.0

    def _chunker(self) -> Any:
        """A seeded random.Random for one stream when chunking is "random", else None."""
        if self.chunking != "random":
            return None
        import random

        with self._lock:
            return random.Random(self._chunk_seeds.getrandbits(64))

    def _message(self, thread: _EmulatedThread, data: Dict[str, Any], role: str) -> Dict[str, Any]:
        """A Message made from checked MessageData and appended to ``thread``."""
        author = data.get("author") or {}
        message: Dict[str, Any] = {
            "id": _emulator_id(), "threadId": thread.json["id"], "createdBy": self.account_id,
            "createdAt": _rfc3339(),
            "author": {"id": author.get("id") or thread.json.get("defaultMessageAuthorId")
                       or self.account_id, "role": author.get("role") or role}}
        if data.get("labels"):
            message["labels"] = data["labels"]
        message["content"] = data.get("content") or {}
        message["status"] = "COMPLETED"
        thread.messages.append(message)
        return message

    def _new_thread(self, request: Dict[str, Any], thread_id: Optional[str] = None
                    ) -> _EmulatedThread:
        ns = time.time_ns()
        expiration = _expiration(request)
        thread: Dict[str, Any] = {"id": thread_id or _emulator_id(),
                                  "folderId": request["folderId"]}
        for key in ("name", "description", "defaultMessageAuthorId"):
            if request.get(key):
                thread[key] = request[key]
        thread.update({"createdBy": self.account_id, "createdAt": _rfc3339(ns),
                       "updatedBy": self.account_id, "updatedAt": _rfc3339(ns),
                       "expirationConfig": expiration,
                       "expiresAt": _rfc3339(ns + int(expiration["ttlDays"]) * 86400 * 10**9)})
        for key in ("labels", "tools"):
            if request.get(key):
                thread[key] = request[key]
        emulated = _EmulatedThread(thread)
        for data in request.get("messages") or []:
            self._message(emulated, data, "USER")
        self.threads._by_id[thread["id"]] = emulated
        return emulated

    def _thread_named(self, thread_id: str, folder: str, path: str = "threadId") -> _EmulatedThread:
        thread = self.threads._by_id.get(thread_id)
        if thread is None and self.implicit:
            thread = self._new_thread({"folderId": folder or "emulator-folder"}, thread_id)
        if thread is None:
            raise _not_found("%s: thread %s not found" % (path, thread_id[:64]))
        return thread

    def _run(self, run_id: str) -> _EmulatedRun:
        run = self.runs.get(run_id)
        if run is None:
            raise _not_found("run %s not found" % run_id[:64])
        return run

    def _create(self, request: Dict[str, Any], folder: str) -> _EmulatedRun:
        """A new run from a checked CreateRunRequest: NOT_FOUND for an unknown assistant or
        thread (unless implicit), and nothing changed then."""
        if not self.implicit and request["assistantId"] not in self._scripts:
            raise _not_found("assistantId: assistant %s not found" % request["assistantId"][:64])
        thread = self._thread_named(request["threadId"], folder)
        truncation = request.get("customPromptTruncationOptions")
        if truncation is not None and "lastMessagesStrategy" not in truncation:
            truncation.setdefault("autoStrategy", {})  # the service echoes its default
        run = _EmulatedRun(_emulator_id(), request, folder, _rfc3339(), thread)
        kept = len(thread.messages)
        try:
            for data in request.get("additionalMessages") or []:
                self._message(thread, data, "USER")
            self._plan(run, None)
        except Exception:  # a bug of ours must not leave half a run behind either
            del thread.messages[kept:]
            raise
        self.runs[run.id] = run
        return run

    def _plan(self, run: _EmulatedRun, submitted: Optional[List[Dict[str, Any]]]) -> None:
        """Schedule the run's next round of events and states."""
        assistant = run.body["assistantId"]
        script = self._scripts.get(assistant)
        first, between = self._pace(script)
        now = self.clock()
        stream = bool(run.body.get("stream"))
        asks_tools = run.rounds < (script.tool_rounds if script is not None else 1)
        run.rounds += 1
        tools: List[Dict[str, Any]] = [t["function"] for t in run.body.get("tools") or []
                                       if "function" in t]
        default_tools = script is None or not (script.replies or script.tool_calls)
        user_text = _last_user_text(run.thread.messages)
        pieces: List[str] = []
        if script is not None and script.error is not None:
            final: Dict[str, Any] = {"status": "FAILED", "error": {"message": script.error}}
            event: Dict[str, Any] = {"eventType": "ERROR", "error": {"message": script.error}}
        elif asks_tools and ((script is not None and script.tool_calls) or
                             (default_tools and tools)):
            calls = script.tool_calls if script is not None and script.tool_calls else [
                {"name": tools[0]["name"], "arguments": _arguments_for(tools[0], user_text)}]
            tool_list = {"toolCalls": [{"functionCall": c} for c in calls]}
            final = {"status": "TOOL_CALLS", "toolCallList": tool_list}
            event = {"eventType": "TOOL_CALLS", "toolCallList": tool_list}
        else:
            if script is not None and script.replies:  # successive answers of this assistant
                answered = self._answered.get(assistant, 0)
                self._answered[assistant] = answered + 1
                pieces = script.replies[min(answered, len(script.replies) - 1)]
            elif submitted:
                pieces = _chunks("; ".join("%s returned %s" % (r["name"], r.get("content", ""))
                                           for r in submitted))
            else:
                pieces = _chunks(user_text or "Hello! How can I help you?")
            message = self._message(run.thread, {
                "author": {"id": assistant, "role": "ASSISTANT"},
                "content": {"content": [{"text": {"content": "".join(pieces)}}]}}, "ASSISTANT")
            final = {"status": "COMPLETED", "completedMessage": message}
            event = {"eventType": "DONE", "completedMessage": message}
        due = now + first - between
        if stream:
            text = ""
            for piece in pieces[:-1] if len(pieces) > 1 else []:
                text += piece
                due += between
                self._event(run, due, {"eventType": "PARTIAL_MESSAGE", "partialMessage":
                                       {"content": [{"text": {"content": text}}]}})
        due += between
        self._event(run, due, event)
        before = _usage_json(*run.usage) if run.usage != (0, 0) else None
        prompt = len((user_text or "").split()) + 90 + 10 * run.rounds + run.usage[0]
        completion = len("".join(pieces).split()) + 4 * len(event.get("toolCallList", {}).get(
            "toolCalls", [])) + 1
        run.usage = (prompt, run.usage[1] + completion)
        run.timeline.append((now, {"status": "PENDING" if run.rounds == 1 else "IN_PROGRESS"},
                             before))
        run.timeline.append((now + first / 2, {"status": "IN_PROGRESS"}, before))
        run.timeline.append((due, final, None if final["status"] == "FAILED"
                             else _usage_json(*run.usage)))

    def _event(self, run: _EmulatedRun, due: float, event: Dict[str, Any]) -> None:
        cursor: Dict[str, str] = {}  # proto3 JSON leaves out zeros: the first cursor is {}
        if run.events:
            cursor["currentEventIdx"] = str(len(run.events))
        if run.submits:
            cursor["numUserEventsReceived"] = str(run.submits)
        event = dict(event)  # the cursor second, where the service puts it
        run.events.append((due, dict({"eventType": event.pop("eventType"), "streamCursor": cursor},
                                     **event)))

    def _run_json(self, run: _EmulatedRun) -> Dict[str, Any]:
        state, usage = run.state(self.clock())
        obj: Dict[str, Any] = {
            "id": run.id, "assistantId": run.body["assistantId"],
            "threadId": run.body["threadId"], "createdBy": self.account_id,
            "createdAt": run.created, "state": state,
        }
        if usage is not None:
            obj["usage"] = usage
        for key in ("labels", "customPromptTruncationOptions", "customCompletionOptions",
                    "tools", "customResponseFormat"):
            if run.body.get(key):
                obj[key] = run.body[key]
        return obj

    def _submit(self, run: _EmulatedRun, results: List[Dict[str, Any]]) -> None:
        """Tool results for a run: refused unless they answer its pending calls by name."""
        state, _ = run.state(self.clock())
        if state["status"] != "TOOL_CALLS":
            raise _Refusal(400, 9, "run %s is not waiting for tool results" % run.id)
        pending = [c["functionCall"]["name"] for c in state["toolCallList"]["toolCalls"]]
        for name in pending:
            if pending.count(name) > 1:  # results are matched by name: the service refuses
                raise _Refusal(400, 9, "run %s should have one function call with name %s"
                               % (run.id, name))
        seen: List[str] = []
        for i, result in enumerate(results):
            path = "toolResultList.toolResults[%d].functionResult.name" % i
            if result["name"] not in pending:
                raise _invalid("%s: the run has no pending function call named %s"
                               % (path, _shown(result["name"])))
            if result["name"] in seen:
                raise _invalid("%s: a second result for %s" % (path, _shown(result["name"])))
            seen.append(result["name"])
        missing = [name for name in pending if name not in seen]
        if missing:
            raise _invalid("toolResultList.toolResults: no result for the function call %s"
                           % ", ".join(missing))
        run.submits += 1
        self._plan(run, results)


# ============================================================================
# Emulator: routes and dialects, what a wire is made of (sans-IO)
# ============================================================================


class _Call:
    """One request as a route sees it: the path's ids (decoded), the checked query and
    body, the caller's folder."""

    def __init__(self, ids: Tuple[str, ...], query: Dict[str, Any], body: Dict[str, Any],
                 folder: str) -> None:
        self.ids, self.query, self.body, self.folder = ids, query, body, folder


class _Answer:
    """A JSON object to send, or (``stream``) (due, object) pairs to send as NDJSON lines."""

    def __init__(self, obj: Any = None,
                 stream: Optional[Iterator[Tuple[float, Dict[str, Any]]]] = None) -> None:
        self.obj, self.stream = obj, stream


class _Route:
    """METHOD, a path pattern over the raw (percent-encoded) path, the endpoint's name for
    ``inject(on=)``, the query and body messages it checks, and what it does."""

    def __init__(self, method: str, pattern: str, endpoint: str, query: _Message,
                 body: Optional[_Message], handler: Callable[[Emulator, _Call], _Answer],
                 streams: bool = False,
                 when: Optional[Callable[[Dict[str, str]], bool]] = None) -> None:
        self.method, self.endpoint, self.query, self.body = method, endpoint, query, body
        self.source = pattern + r"\Z"
        self._pattern: Optional["re.Pattern[str]"] = None
        self.handler, self.streams = handler, streams
        self.when = when  # a test of the query: two endpoints on one path (a streaming Get)

    @property
    def pattern(self) -> "re.Pattern[str]":
        """The path pattern, compiled by the first request (not by ``import yc_runs``)."""
        if self._pattern is None:
            self._pattern = re.compile(self.source)
        return self._pattern


class _Dialect:
    """A wire the emulator speaks: the path prefix it owns, its routes, how it words a
    refusal, and how a streamed body frames each object (and a broken one, for the
    malformed_line fault). A second wire is a second _Dialect in ``Emulator.dialects``."""

    def __init__(self, name: str, prefix: str, routes: Sequence[_Route],
                 error_body: Callable[[_Refusal], Dict[str, Any]],
                 frame: Callable[[Dict[str, Any]], bytes], malformed: bytes,
                 stream_type: str) -> None:
        self.name, self.prefix, self.routes, self.error_body = name, prefix, routes, error_body
        self.frame, self.malformed, self.stream_type = frame, malformed, stream_type


def _resolve(routes: Sequence[_Route], method: str, raw_path: str,
             query: Optional[Dict[str, str]] = None) -> Tuple[_Route, Tuple[str, ...]]:
    """The route for a request and its path ids (decoded); a JSON 404 when no route has
    the path, 405 when none has the method."""
    from urllib.parse import unquote

    allowed = []
    for route in routes:
        match = route.pattern.match(raw_path)
        if match is None or (route.when is not None and not route.when(query or {})):
            continue
        if route.method == method:
            return route, tuple(unquote(i) for i in match.groups())
        allowed.append(route.method)
    if allowed:
        raise _Refusal(405, 12, "Method Not Allowed: %s %s (allowed: %s)" % (
            method[:16], unquote(raw_path)[:128], ", ".join(sorted(set(allowed)))))
    raise _Refusal(404, 5, "Not Found: no route for %s %s" % (method[:16], unquote(raw_path)[:128]))


# ============================================================================
# Emulator: the Assistant API dialect: runs, threads, messages (sans-IO)
# ============================================================================

def _expiration(request: Dict[str, Any]) -> Dict[str, Any]:
    """A checked request's expirationConfig with the service's defaults filled in; a TTL
    past a century is refused (it would not fit a timestamp)."""
    expiration = dict(request.get("expirationConfig") or {})
    expiration.setdefault("expirationPolicy", "SINCE_LAST_ACTIVE")
    if int(expiration.get("ttlDays", 0)) == 0:  # 0 is proto3's "not set"
        expiration["ttlDays"] = "7"
    if not 0 < int(expiration["ttlDays"]) <= 36500:
        raise _invalid("expirationConfig.ttlDays: must be 1 to 36500 days, got %s"
                       % expiration["ttlDays"])
    return expiration


def _usage_json(prompt: int, completion: int) -> Dict[str, str]:
    return {"promptTokens": str(prompt), "completionTokens": str(completion),
            "totalTokens": str(prompt + completion)}


def _as_struct(value: Any) -> Any:
    """``value`` as a google.protobuf.Struct carries it: every number a float (through the
    json module, which nests deeper than a recursive copy would)."""
    return json.loads(json.dumps(value), parse_int=float)


def _chunks(text: str, count: int = 3) -> List[str]:
    """``text`` in up to ``count`` pieces, split at spaces."""
    words = text.split(" ")
    size = max(1, -(-len(words) // count))
    groups = [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
    return [g + " " for g in groups[:-1]] + groups[-1:]


def _last_user_text(messages: List[Dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message["author"]["role"] != "ASSISTANT":
            return "\n".join(part["text"]["content"] for part in message["content"].get(
                "content", []) if "content" in part.get("text", {}))
    return ""


def _arguments_for(function: Dict[str, Any], user_text: str) -> Dict[str, Any]:
    """Arguments for a default call: the user's text for each required string parameter."""
    parameters: Any = function.get("parameters") or {}
    properties: Any = parameters.get("properties") if isinstance(parameters, dict) else {}
    if not isinstance(properties, dict):
        return {}
    required = parameters.get("required")
    arguments: Dict[str, Any] = {}
    names = required if isinstance(required, list) else list(properties)[:1]
    for name in [n for n in names if isinstance(n, str)]:  # a schema is any JSON the caller sent
        kind = properties.get(name, {}).get("type") if isinstance(properties.get(name),
                                                                   dict) else None
        arguments[name] = {"integer": 1.0, "number": 1.0, "boolean": True, "array": [],
                                "object": {}}.get(str(kind), user_text)
    return arguments


def _api_error_body(status: int, grpc: int, message: str) -> Dict[str, Any]:
    import http

    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    return {"error": {"grpcCode": grpc, "httpCode": status, "message": message,
                      "httpStatus": reason, "details": []}}


# The Assistant API's request messages, as much of them as the emulator reads or echoes.
_MESSAGE_CONTENT = _Message("MessageContent", {"content": _Repeated(_Message("ContentPart", {
    "text": _Message("Text", {"content": _STRING})}))})
_AUTHOR = _Message("Author", {"id": _STRING, "role": _STRING})
_LABELS = _MapOf(_STRING)
_MESSAGE_DATA = _Message("MessageData", {"author": _AUTHOR, "labels": _LABELS,
                                         "content": _MESSAGE_CONTENT})
_TOOL = _Message("Tool", {
    "function": _Message("FunctionTool", {"name": _STRING, "description": _STRING,
                                          "parameters": _STRUCT}, required=("name",)),
    "searchIndex": _Message("SearchIndexTool", {
        "searchIndexIds": _Repeated(_STRING), "maxNumResults": _INT64,
        "rephraserOptions": _Message("RephraserOptions", {"rephraserUri": _STRING}),
        "callStrategy": _Message("CallStrategy", {
            "alwaysCall": _Message("AlwaysCall", {}),
            "autoCall": _Message("AutoCall", {"name": _STRING, "instruction": _STRING})},
            oneofs=[("alwaysCall", "autoCall")])}),
    "genSearch": _Message("GenSearchTool", {"options": _STRUCT, "description": _STRING}),
}, oneofs=[("function", "searchIndex", "genSearch")])
_EXPIRATION = _Message("ExpirationConfig", {
    "expirationPolicy": _Enum("ExpirationPolicy", ["EXPIRATION_POLICY_UNSPECIFIED", "STATIC",
                                                   "SINCE_LAST_ACTIVE"]),
    "ttlDays": _INT64})
_CREATE_RUN = _Message("CreateRunRequest", {
    "assistantId": _STRING, "threadId": _STRING, "labels": _LABELS,
    "additionalMessages": _Repeated(_MESSAGE_DATA),
    "customPromptTruncationOptions": _Message("PromptTruncationOptions", {
        "maxPromptTokens": _INT64, "autoStrategy": _Message("AutoStrategy", {}),
        "lastMessagesStrategy": _Message("LastMessagesStrategy", {"numMessages": _INT64})},
        oneofs=[("autoStrategy", "lastMessagesStrategy")]),
    "customCompletionOptions": _Message("CompletionOptions", {"maxTokens": _INT64,
                                                              "temperature": _DOUBLE}),
    "stream": _BOOL, "tools": _Repeated(_TOOL),
    "customResponseFormat": _Message("ResponseFormat", {
        "jsonObject": _BOOL, "jsonSchema": _Message("JsonSchema", {"schema": _STRUCT})},
        oneofs=[("jsonObject", "jsonSchema")]),
}, required=("assistantId", "threadId"))
_SUBMIT_TO_RUN = _Message("SubmitToRunRequest", {
    "runId": _STRING,
    "toolResultList": _Message("ToolResultList", {"toolResults": _Repeated(_Message(
        "ToolResult", {"functionResult": _Message("FunctionResult", {
            "name": _STRING, "content": _STRING}, required=("name",))},
        required=("functionResult",)))}, required=("toolResults",)),
}, required=("runId", "toolResultList"))
_NO_FIELDS = _Message("Empty", {})
_LISTEN_QUERY = _Message("ListenRunRequest", {"runId": _STRING, "eventsStartIdx": _INT64},
                         required=("runId",))
_BY_THREAD_QUERY = _Message("GetLastRunByThreadRequest", {"threadId": _STRING},
                            required=("threadId",))
_PAGE_QUERY = _Message("ListRequest", {"folderId": _STRING, "pageSize": _INT64,
                                       "pageToken": _STRING}, required=("folderId",))
_CREATE_THREAD = _Message("CreateThreadRequest", {
    "folderId": _STRING, "messages": _Repeated(_MESSAGE_DATA), "name": _STRING,
    "description": _STRING, "defaultMessageAuthorId": _STRING, "expirationConfig": _EXPIRATION,
    "labels": _LABELS, "tools": _Repeated(_TOOL)}, required=("folderId",))
_UPDATE_THREAD = _Message("UpdateThreadRequest", {
    "updateMask": _STRING, "name": _STRING, "description": _STRING,
    "expirationConfig": _EXPIRATION, "labels": _LABELS, "tools": _Repeated(_TOOL)},
    required=("updateMask",))
_CREATE_MESSAGE = _Message("CreateMessageRequest", {
    "threadId": _STRING, "author": _AUTHOR, "labels": _LABELS, "content": _MESSAGE_CONTENT},
    required=("threadId", "content"))
_THREAD_QUERY = _Message("ThreadIdRequest", {"threadId": _STRING}, required=("threadId",))


_PAGE_SIZE_MAX = 100


def _page(emu: Emulator, kind: str, items: List[Any], query: Dict[str, Any]
          ) -> Tuple[List[Any], Optional[str]]:
    """One page of ``items`` and the token of the next (None on the last page); the token
    is opaque and checked: it names the list and folder it came from."""
    import base64

    size = _non_negative(query, "pageSize", 0) or 10
    start = 0
    token = query.get("pageToken")
    if token:
        try:
            decoded = base64.urlsafe_b64decode(token.encode("ascii") + b"==").decode("utf-8")
            named, folder, offset = decoded.split("\n")
            if (named, folder) != (kind, query["folderId"]) or not offset.isdigit():
                raise ValueError(decoded)
            start = int(offset)
        except (ValueError, UnicodeError):
            raise _invalid("pageToken: %s is not a page token of this list" % _shown(token)
                           ) from None
    page = items[start:start + min(size, _PAGE_SIZE_MAX)]
    if start + len(page) >= len(items):
        return page, None
    next_token = "%s\n%s\n%d" % (kind, query["folderId"], start + len(page))
    return page, base64.urlsafe_b64encode(next_token.encode("utf-8")).decode("ascii").rstrip("=")


def _create_run(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        return _Answer(emu._run_json(emu._create(call.body, call.folder)))


def _get_run(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        return _Answer(emu._run_json(emu._run(call.ids[0])))


def _get_last_run_by_thread(emu: Emulator, call: _Call) -> _Answer:
    thread_id = call.query["threadId"]
    with emu._lock:
        if thread_id not in emu.threads._by_id and not emu.implicit:
            raise _not_found("threadId: thread %s not found" % thread_id[:64])
        runs = [r for r in emu.runs.values() if r.body["threadId"] == thread_id]
        if not runs:
            raise _not_found("thread %s has no runs" % thread_id[:64])
        return _Answer(emu._run_json(runs[-1]))


def _list_runs(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        runs = [r for r in emu.runs.values() if r.folder == call.query["folderId"]]
        page, token = _page(emu, "runs", runs, call.query)
        answer: Dict[str, Any] = {"runs": [emu._run_json(r) for r in page]}
    if token is not None:
        answer["nextPageToken"] = token
    return _Answer(answer)


def _listen(emu: Emulator, call: _Call) -> _Answer:
    start = _non_negative(call.query, "eventsStartIdx", 0)
    with emu._lock:
        run = emu._run(call.query["runId"])
        if start > len(run.events):
            raise _Refusal(400, 11, "eventsStartIdx: %d is past the run's %d events"
                           % (start, len(run.events)))
    return _Answer(stream=_run_events(emu, run, start))


def _run_events(emu: Emulator, run: _EmulatedRun, index: int
                ) -> Iterator[Tuple[float, Dict[str, Any]]]:
    while True:
        with emu._lock:
            if index >= len(run.events):
                return
            due, event = run.events[index]
            last = index == len(run.events) - 1
        yield due, event
        index += 1
        if last and event["eventType"] in ("DONE", "ERROR", "TOOL_CALLS"):
            return


def _submit(emu: Emulator, call: _Call) -> _Answer:
    results = [item["functionResult"] for item in call.body["toolResultList"]["toolResults"]]
    with emu._lock:
        emu._submit(emu._run(call.body["runId"]), results)
    return _Answer({})


def _create_thread(emu: Emulator, call: _Call) -> _Answer:
    _expiration(call.body)
    with emu._lock:
        return _Answer(dict(emu._new_thread(call.body).json))


def _get_thread(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        thread = emu.threads._by_id.get(call.ids[0])
        if thread is None:
            raise _not_found("thread %s not found" % call.ids[0][:64])
        return _Answer(dict(thread.json))


_THREAD_MASK_PATHS = ("name", "description", "expirationConfig", "labels", "tools")


def _update_thread(emu: Emulator, call: _Call) -> _Answer:
    paths = [p.strip() for p in call.body["updateMask"].split(",")]
    for path in paths:
        if path not in _THREAD_MASK_PATHS:
            raise _invalid("updateMask: %s is not a field of Thread that can be updated (%s)"
                           % (_shown(path), ", ".join(_THREAD_MASK_PATHS)))
    if "expirationConfig" in paths:
        call.body["expirationConfig"] = _expiration(call.body)
    with emu._lock:
        thread = emu.threads._by_id.get(call.ids[0])
        if thread is None:
            raise _not_found("thread %s not found" % call.ids[0][:64])
        for path in paths:
            if call.body.get(path):
                thread.json[path] = call.body[path]
            else:
                thread.json.pop(path, None)
        thread.json["updatedAt"] = _rfc3339()
        return _Answer(dict(thread.json))


def _delete_thread(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        if emu.threads._by_id.pop(call.ids[0], None) is None:
            raise _not_found("thread %s not found" % call.ids[0][:64])
    return _Answer({})


def _list_threads(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        threads = [t.json for t in emu.threads._by_id.values()
                   if t.json["folderId"] == call.query["folderId"]]
        page, token = _page(emu, "threads", threads, call.query)
        answer: Dict[str, Any] = {"threads": [dict(t) for t in page]}
    if token is not None:
        answer["nextPageToken"] = token
    return _Answer(answer)


def _create_message(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        thread = emu._thread_named(call.body["threadId"], call.folder)
        return _Answer(emu._message(thread, call.body, "USER"))


def _get_message(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        thread = emu._thread_named(call.query["threadId"], call.folder)
        for message in thread.messages:
            if message["id"] == call.ids[0]:
                return _Answer(message)
    raise _not_found("message %s not found" % call.ids[0][:64])


def _list_messages(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        messages = list(emu._thread_named(call.query["threadId"], call.folder).messages)
    return _Answer(stream=iter([(0.0, m) for m in reversed(messages)]))  # newest first


_RUNS = "/assistants/v1/runs"
_ID = "([^/]+)"
# Listen before Get: /runs/listen is not a run id.
_ASSISTANT_API_ROUTES = [
    _Route("POST", _RUNS, "create", _NO_FIELDS, _CREATE_RUN, _create_run),
    _Route("GET", _RUNS + "/listen", "listen", _LISTEN_QUERY, None, _listen, streams=True),
    _Route("GET", _RUNS + ":getByThread", "getByThread", _BY_THREAD_QUERY, None,
           _get_last_run_by_thread),
    _Route("GET", _RUNS, "list", _PAGE_QUERY, None, _list_runs),
    _Route("PATCH", _RUNS + "/submit", "submit", _NO_FIELDS, _SUBMIT_TO_RUN, _submit),
    _Route("GET", _RUNS + "/" + _ID, "get", _NO_FIELDS, None, _get_run),
    _Route("POST", "/assistants/v1/threads", "createThread", _NO_FIELDS, _CREATE_THREAD,
           _create_thread),
    _Route("GET", "/assistants/v1/threads", "listThreads", _PAGE_QUERY, None, _list_threads),
    _Route("GET", "/assistants/v1/threads/" + _ID, "getThread", _NO_FIELDS, None, _get_thread),
    _Route("PATCH", "/assistants/v1/threads/" + _ID, "updateThread", _NO_FIELDS,
           _UPDATE_THREAD, _update_thread),
    _Route("DELETE", "/assistants/v1/threads/" + _ID, "deleteThread", _NO_FIELDS, None,
           _delete_thread),
    _Route("POST", "/assistants/v1/messages", "createMessage", _NO_FIELDS, _CREATE_MESSAGE,
           _create_message),
    _Route("GET", "/assistants/v1/messages", "listMessages", _THREAD_QUERY, None,
           _list_messages, streams=True),
    _Route("GET", "/assistants/v1/messages/" + _ID, "getMessage", _THREAD_QUERY, None,
           _get_message),
]


def _assistant_error_body(refusal: _Refusal) -> Dict[str, Any]:
    # NOT_FOUND and UNIMPLEMENTED come from the service behind the gateway: the bare shape
    if refusal.grpc in (5, 12):
        return {"code": refusal.grpc, "message": refusal.message, "details": []}
    return _api_error_body(refusal.status, refusal.grpc, refusal.message)


def _ndjson_line(obj: Dict[str, Any]) -> bytes:
    return json.dumps({"result": obj}, ensure_ascii=False).encode("utf-8") + b"\n"


_ASSISTANT_API = _Dialect("assistant", "/assistants/", _ASSISTANT_API_ROUTES,
                          _assistant_error_body, _ndjson_line,
                          b'{"result": {"eventType": "PARTIAL_MESS\n', "application/json")


# ============================================================================
# Emulator: the Responses dialect: what it keeps and how its model answers (sans-IO)
# ============================================================================


class _EmulatedConversation:
    def __init__(self, conversation_id: str, metadata: Dict[str, str]) -> None:
        self.json = {"id": conversation_id, "object": "conversation", "metadata": metadata,
                     "created_at": int(time.time())}  # as Get answers it
        self.items: List[Tuple[float, Dict[str, Any]]] = []  # (visible from, item), oldest first
        self.last: Optional["_EmulatedResponse"] = None  # the newest response in it


class _EmulatedResponse:
    """A response and its plan: the events a stream sends and the states a Get answers."""

    def __init__(self, body: Dict[str, Any], conversation: Optional[_EmulatedConversation],
                 previous: Optional["_EmulatedResponse"], items: List[Dict[str, Any]]) -> None:
        self.id = _uuid4()
        self.body = body  # the checked create request
        self.created_at = round(time.time(), 3)
        self.conversation, self.previous = conversation, previous
        self.input_items = items  # this request's input, each with an id
        self.context: List[Dict[str, Any]] = []  # every item before the output, oldest first
        self.output: List[Dict[str, Any]] = []
        self.events: List[Tuple[float, Dict[str, Any]]] = []  # (due, event)
        self.timeline: List[Tuple[float, str]] = []  # (since, status)
        self.error: Optional[Dict[str, str]] = None
        self.incomplete: Optional[Dict[str, str]] = None  # incomplete_details
        self.usage = (0, 0)
        self.turn_rounds = 0  # tool rounds since the user last wrote
        self.answered = False  # its function calls have their outputs

    def status(self, now: float) -> str:
        current = "queued"
        for since, status in self.timeline:
            if since <= now:
                current = status
        return current


_FINISHED = ("completed", "failed", "incomplete", "cancelled")
_MODEL_URI = r"gpt://[^/\s]+/[^/\s]+(/[^/\s]+)?\Z"


def _item_with_id(item: Dict[str, Any]) -> Dict[str, Any]:
    """An input item as a conversation keeps it: an id, a status, content as parts."""
    kept = dict(item, id=item.get("id") or _uuid4())
    if kept["type"] == "message":
        content = kept["content"]
        kind = "output_text" if kept["role"] == "assistant" else "input_text"
        kept["content"] = [{"type": kind, "text": content}] if isinstance(content, str) else content
        kept.setdefault("status", "completed")
    return kept


def _items_text(items: List[Dict[str, Any]], role: str) -> str:
    for item in reversed(items):
        if item.get("type") == "message" and item.get("role") == role:
            return "\n".join(str(p.get("text", "")) for p in item["content"]
                             if p.get("type") in ("input_text", "output_text"))
    return ""


def _usage_object(prompt: int, completion: int) -> Dict[str, Any]:
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0, "valid": True,
                                                             "tool_tokens": 0},
            "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0,
                                                                   "valid": True},
            "total_tokens": prompt + completion, "valid": True}


def _response_object(emu: Emulator, response: _EmulatedResponse, now: float,
                     status: Optional[str] = None) -> Dict[str, Any]:
    """The Response as the service writes it (the keys of the captures, in their order)."""
    body = response.body
    status = status or response.status(now)
    finished = status in _FINISHED
    tools = [{"name": t.get("name"), "parameters": t.get("parameters"),
              "strict": t.get("strict"), "type": t["type"], "defer_loading": None,
              "description": t.get("description"), "valid": True}
             if t["type"] == "function" else dict(t, valid=True) for t in body.get("tools") or []]
    text = body.get("text")
    prompt = body.get("prompt")
    return {
        "id": response.id, "created_at": response.created_at,
        "error": response.error if status == "failed" else None,
        "incomplete_details": response.incomplete if status == "incomplete" else None,
        "instructions": body.get("instructions"), "metadata": {},
        "model": body.get("model") or "", "object": "response",
        "output": list(response.output) if finished else [],
        "parallel_tool_calls": body.get("parallel_tool_calls", False),
        "temperature": float(body.get("temperature", 0.3)),
        "tool_choice": body.get("tool_choice", "auto"), "tools": tools,
        "top_p": float(body.get("top_p", 1.0)), "background": bool(body.get("background")),
        "completed_at": None,
        "conversation": None if response.conversation is None else {
            "id": response.conversation.json["id"]},
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "previous_response_id": body.get("previous_response_id"),
        "prompt": None if prompt is None else dict({"variables": None, "version": None}, **prompt),
        "prompt_cache_key": None, "prompt_cache_retention": None, "reasoning": None,
        "safety_identifier": None, "service_tier": "default", "status": status,
        "text": None if text is None else {"format": text.get("format")}, "top_logprobs": None,
        "truncation": None,
        "usage": _usage_object(*response.usage) if finished and status != "cancelled"
        else _usage_object(0, 0),
        "user": body.get("user"), "valid": True,
    }


def _pending_calls(last: Optional[_EmulatedResponse]) -> List[Dict[str, Any]]:
    if last is None or last.answered:
        return []
    return [item for item in last.output if item["type"] == "function_call"]


def _match_outputs(last: Optional[_EmulatedResponse], items: List[Dict[str, Any]]
                   ) -> List[Tuple[str, str]]:
    """(function name, output) for each function_call_output, checked against the calls the
    context is waiting for; none pending and no outputs is a new turn."""
    pending = [c["call_id"] for c in _pending_calls(last)]
    names = {c["call_id"]: c["name"] for c in _pending_calls(last)}
    answered: List[Tuple[str, str]] = []
    for i, item in enumerate(items):
        if item["type"] != "function_call_output":
            continue
        if item["call_id"] not in pending:
            raise _invalid("No tool call found for function call output with call_id %s."
                           % _shown(item["call_id"]), "input[%d].call_id" % i, "invalid_value")
        pending.remove(item["call_id"])
        answered.append((names[item["call_id"]], item["output"]))
    if pending:  # a new turn while calls wait for outputs is refused, as OpenAI's API does
        raise _invalid("No tool output found for function call %s." % pending[0], "input",
                       "invalid_value")
    return answered


def _plan_response(emu: Emulator, response: _EmulatedResponse, last: Optional[_EmulatedResponse],
                   answered: List[Tuple[str, str]]) -> None:
    """Schedule the response's events and states: the assistant's answer to its context.
    The caller holds the lock."""
    body = response.body
    prompt = body.get("prompt")
    assistant = prompt["id"] if prompt is not None else body["model"]
    script = emu._scripts.get(assistant)
    first, between = emu._pace(script)
    now = emu.clock()
    tools = [t for t in body.get("tools") or [] if t["type"] == "function"]
    default_tools = script is None or not (script.replies or script.tool_calls)
    before = last.turn_rounds if answered and last is not None else 0
    limit = script.tool_rounds if script is not None else 1
    asks = before < limit and body.get("tool_choice") != "none" and (
        (script is not None and bool(script.tool_calls)) or (default_tools and bool(tools)))
    user_text = _items_text(response.context, "user")
    events: List[Dict[str, Any]] = []
    pieces: List[str] = []
    status = "completed"
    if script is not None and script.error is not None:
        status = "failed"
        response.error = {"code": "server_error", "message": script.error}
    elif asks:
        calls = script.tool_calls if script is not None and script.tool_calls else [
            {"name": tools[0]["name"], "arguments": _arguments_for(tools[0], user_text)}]
        response.turn_rounds = before + 1
        for index, call in enumerate(calls):
            item_id = _uuid4()
            arguments = json.dumps(call["arguments"], ensure_ascii=False)
            # Yandex's call_id is the function's name
            item = {"arguments": "", "call_id": call["name"], "name": call["name"],
                    "type": "function_call", "id": item_id, "status": "in_progress",
                    "valid": True}
            events.append({"output_index": index, "item": dict(item),
                           "type": "response.output_item.added"})
            events.append({"item_id": item_id, "output_index": index, "delta": arguments,
                           "type": "response.function_call_arguments.delta"})
            events.append({"item_id": item_id, "output_index": index, "arguments": arguments,
                           "name": call["name"], "type": "response.function_call_arguments.done"})
            item.update(arguments=arguments, status="completed")
            events.append({"output_index": index, "item": item,
                           "type": "response.output_item.done"})
            response.output.append(item)
    else:
        if script is not None and script.replies:  # successive answers of this assistant
            count = emu._answered.get(assistant, 0)
            emu._answered[assistant] = count + 1
            pieces = script.replies[min(count, len(script.replies) - 1)]
        elif answered:
            pieces = _chunks("; ".join("%s returned %s" % pair for pair in answered))
        else:
            pieces = _chunks(user_text or "Hello! How can I help you?")
        most = body.get("max_output_tokens")
        if most is not None and len("".join(pieces).split()) > most:  # a word is a token here
            status = "incomplete"
            response.incomplete = {"reason": "max_output_tokens"}
            pieces = _chunks(" ".join("".join(pieces).split(" ")[:most]))
        item_id, text = _uuid4(), "".join(pieces)
        where = {"item_id": item_id, "output_index": 0, "content_index": 0}
        events.append({"output_index": 0, "item": {
            "id": item_id, "content": [], "role": "assistant", "status": "in_progress",
            "type": "message", "valid": True}, "type": "response.output_item.added"})
        events.append(dict(where, part={"annotations": [], "text": "", "type": "output_text",
                                        "valid": True}, type="response.content_part.added"))
        events.extend(dict(where, delta=piece, type="response.output_text.delta")
                      for piece in pieces if piece)
        events.append(dict(where, text=text, type="response.output_text.done"))
        events.append(dict(where, part={"annotations": [], "text": text, "type": "output_text",
                                        "logprobs": [], "valid": True},
                           type="response.content_part.done"))
        item = {"id": item_id, "content": [{"annotations": [], "text": text,
                                            "type": "output_text", "valid": True}],
                "role": "assistant", "status": "completed" if status == "completed"
                else "incomplete", "type": "message", "valid": True}
        events.append({"output_index": 0, "item": item, "type": "response.output_item.done"})
        response.output.append(item)
    prompt_tokens = sum(len(_items_text([i], i.get("role", "")).split())
                        for i in response.context) + 10 * len(tools) + 12
    response.usage = (prompt_tokens, len("".join(pieces).split()) + 4 * len(response.output) + 1)
    due = now + first
    response.timeline = [(now, "queued"), (now + first / 2, "in_progress")]
    for kind in ("response.created", "response.in_progress"):
        state = "queued" if kind == "response.created" else "in_progress"
        response.events.append((now if state == "queued" else now + first / 2, {
            "sequence_number": len(response.events) + 1,
            "response": _response_object(emu, response, now, state), "type": kind}))
    for event in events:
        if event["type"] in ("response.output_text.delta",
                             "response.function_call_arguments.delta"):
            due += between
        response.events.append((due, dict({"sequence_number": len(response.events) + 1},
                                          **event)))
    due += between
    response.timeline.append((due, status))
    response.events.append((due, {"sequence_number": len(response.events) + 1,
                                  "response": _response_object(emu, response, due, status),
                                  "type": "response." + status}))
    if response.conversation is not None:
        response.conversation.items.extend((due, item) for item in response.output)


def _new_response(emu: Emulator, body: Dict[str, Any]) -> _EmulatedResponse:
    """A checked create request made a response, planned and kept: 400 or 404 and nothing
    changed when the request names what does not exist or answers the wrong calls. The
    caller holds the lock."""
    prompt = body.get("prompt")
    if prompt is None and not body.get("model"):
        raise _invalid("model: a model URI (or prompt.id, a saved agent) is required", "model",
                       "missing_required_parameter")
    if body.get("model") and not re.match(_MODEL_URI, body["model"]):
        raise _invalid("Failed to parse model URI %s: expected gpt://<folder>/<model>[/<branch>]"
                       % _shown(body["model"]), "model", "invalid_value")
    if prompt is not None and prompt["id"] not in emu._scripts and not emu.implicit:
        raise _Refusal(404, 5, "prompt.id: agent %s not found" % _shown(prompt["id"]),
                       "prompt.id", "not_found")
    for name, low, high in (("temperature", 0.0, 1.0), ("top_p", 0.0, 1.0),
                            ("max_output_tokens", 1, 2**31 - 1), ("max_tool_calls", 1, 2**31 - 1)):
        if name in body and not low <= body[name] <= high:
            raise _invalid("%s: %s is out of range (%s to %s)" % (name, body[name], low, high),
                           name, "invalid_value")
    if body.get("background") and body.get("store") is False:
        raise _invalid("store: a background response must be stored (store: false given)",
                       "store", "invalid_value")
    tools = [t["name"] for t in body.get("tools") or [] if t["type"] == "function"]
    for name in tools:
        if tools.count(name) > 1:
            raise _invalid("tools: two function tools are named %s" % _shown(name), "tools",
                           "invalid_value")
    conversation = None
    reference = body.get("conversation")
    if reference is not None:
        conversation_id = reference if isinstance(reference, str) else reference["id"]
        conversation = _conversation_named(emu, conversation_id, "conversation")
    previous = None
    if body.get("previous_response_id") is not None:
        previous = emu.responses.get(body["previous_response_id"])
        if previous is None:
            raise _Refusal(404, 5, "previous_response_id: response %s not found"
                           % _shown(body["previous_response_id"]), "previous_response_id",
                           "not_found")
    given = body.get("input")
    items = [_item_with_id(i) for i in ([{"type": "message", "role": "user", "content": given}]
                                        if isinstance(given, str) else given or [])]
    last = previous if previous is not None else (
        conversation.last if conversation is not None else None)
    answered = _match_outputs(last, items)
    response = _EmulatedResponse(body, conversation, previous, items)
    if previous is not None:
        response.context = previous.context + previous.output
    elif conversation is not None:
        response.context = [item for _, item in conversation.items]
    response.context = response.context + items
    if conversation is not None:
        now = emu.clock()
        conversation.items.extend((now, item) for item in items)
        conversation.last = response
    _plan_response(emu, response, last, answered)
    if last is not None and answered:
        last.answered = True
    if body.get("store") is not False:
        emu.responses[response.id] = response
    return response


def _conversation_named(emu: Emulator, conversation_id: str, param: str
                        ) -> _EmulatedConversation:
    conversation = emu.conversations.get(conversation_id)
    thread = emu.threads._by_id.get(conversation_id)
    if conversation is None and thread is not None:  # emu.threads.create() serves both wires
        conversation = emu.conversations[conversation_id] = _EmulatedConversation(
            conversation_id, dict(thread.json.get("labels") or {}))
        conversation.items = [(0.0, _item_with_id({
            "type": "message", "role": "assistant" if m["author"]["role"] == "ASSISTANT"
            else "user", "content": "".join(p.get("text", {}).get("content", "")
                                            for p in m["content"].get("content", []))}))
            for m in thread.messages]
    if conversation is None and emu.implicit:
        conversation = emu.conversations[conversation_id] = _EmulatedConversation(
            conversation_id, {})
    if conversation is None:
        raise _Refusal(404, 5, "Conversation with id %s not found." % _shown(conversation_id),
                       param, "not_found")
    return conversation


def _response_named(emu: Emulator, response_id: str) -> _EmulatedResponse:
    response = emu.responses.get(response_id)
    if response is None:
        raise _Refusal(404, 5, "Response with id %s not found." % _shown(response_id), "id",
                       "not_found")
    return response


def _item_list(items: List[Dict[str, Any]], query: Dict[str, Any]) -> Dict[str, Any]:
    """One page of ``items`` (oldest first) as a list object: ``limit`` 1 to 100 (20),
    ``order`` asc or desc (desc), ``after`` an item id of the list."""
    text = query.get("limit", "20")
    if not re.match(r"[0-9]{1,4}\Z", text) or not 1 <= int(text) <= 100:
        raise _invalid("limit: must be an integer from 1 to 100, got %s" % _shown(text),
                       "limit", "invalid_value")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _invalid("order: must be asc or desc, got %s" % _shown(order), "order",
                       "invalid_value")
    ordered = list(items) if order == "asc" else list(reversed(items))
    start = 0
    if "after" in query:
        ids = [item["id"] for item in ordered]
        if query["after"] not in ids:
            raise _invalid("after: no item %s in this list" % _shown(query["after"]), "after",
                           "invalid_value")
        start = ids.index(query["after"]) + 1
    page = ordered[start:start + int(text)]
    return {"object": "list", "data": page, "has_more": start + len(page) < len(ordered),
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None}


# ============================================================================
# Emulator: the Responses dialect: schemas and routes (sans-IO)
# ============================================================================

_R_PART = _Tagged("content part", {
    "input_text": _Message("InputText", {"type": _STRING, "text": _STRING}, required=("text",)),
    "output_text": _Message("OutputText", {"type": _STRING, "text": _STRING,
                                           "annotations": _Repeated(_ANY)}, required=("text",)),
    "refusal": _Message("Refusal", {"type": _STRING, "refusal": _STRING}),
    "input_image": _Message("InputImage", {"type": _STRING, "image_url": _STRING,
                                           "file_id": _STRING, "detail": _STRING}),
    "input_file": _Message("InputFile", {"type": _STRING, "file_id": _STRING,
                                         "file_data": _STRING, "filename": _STRING}),
})
_R_ITEM = _Tagged("input item", {
    "message": _Message("Message", {
        "type": _STRING, "id": _STRING, "status": _STRING,
        "role": _Enum("role", ["user", "assistant", "system", "developer"], by_number=False),
        "content": _Union("a string or a list of content parts", [_STRING, _Repeated(_R_PART)])},
        required=("role", "content")),
    "function_call_output": _Message("FunctionCallOutput", {
        "type": _STRING, "id": _STRING, "call_id": _STRING, "output": _STRING,
        "status": _STRING}, required=("call_id",)),
    "function_call": _Message("FunctionCall", {
        "type": _STRING, "id": _STRING, "call_id": _STRING, "name": _STRING,
        "arguments": _STRING, "status": _STRING}, required=("call_id", "name")),
}, default="message")
_R_TOOL = _Tagged("tool", {
    "function": _Message("FunctionTool", {"type": _STRING, "name": _STRING,
                                          "description": _STRING, "parameters": _STRUCT,
                                          "strict": _BOOL}, required=("name",)),
    "web_search": _Message("WebSearchTool", {"type": _STRING, "filters": _ANY,
                                             "search_context_size": _STRING,
                                             "user_location": _ANY}),
    "file_search": _Message("FileSearchTool", {"type": _STRING,
                                               "vector_store_ids": _Repeated(_STRING),
                                               "max_num_results": _INTEGER, "filters": _ANY,
                                               "ranking_options": _ANY},
                            required=("vector_store_ids",)),
})
_R_FORMAT = _Tagged("text format", {
    "text": _Message("TextFormat", {"type": _STRING}),
    "json_object": _Message("JsonObjectFormat", {"type": _STRING}),
    "json_schema": _Message("JsonSchemaFormat", {"type": _STRING, "name": _STRING,
                                                 "schema": _STRUCT, "strict": _BOOL,
                                                 "description": _STRING},
                            required=("name", "schema")),
})
_R_INPUT = _Union("a string or a list of input items", [_STRING, _Repeated(_R_ITEM)])
# Fields Yandex marks as not supported (metadata, truncation, reasoning, safety_identifier,
# prompt_cache_key, service_tier, include, stream_options) are not here: ignored, as
# unknown fields are, and the response shows the service's defaults for them.
_R_CREATE = _Message("CreateResponse", {
    "model": _STRING,
    "prompt": _Message("Prompt", {"id": _STRING, "version": _STRING,
                                  "variables": _MapOf(_ANY)}, required=("id",)),
    "input": _R_INPUT, "instructions": _STRING, "tools": _Repeated(_R_TOOL),
    "tool_choice": _Union('"none", "auto", "required" or a tool object', [_STRING, _STRUCT]),
    "parallel_tool_calls": _BOOL, "max_output_tokens": _INTEGER, "max_tool_calls": _INTEGER,
    "temperature": _NUMBER, "top_p": _NUMBER, "text": _Message("TextConfig", {"format": _R_FORMAT}),
    "previous_response_id": _STRING,
    "conversation": _Union("a conversation id or {\"id\": ...}", [_STRING, _Message(
        "ConversationParam", {"id": _STRING}, required=("id",))]),
    "store": _BOOL, "stream": _BOOL, "background": _BOOL, "user": _STRING,
}, oneofs=[("previous_response_id", "conversation")])
_R_CONVERSATION = _Message("CreateConversation", {"items": _Repeated(_R_ITEM),
                                                  "metadata": _MapOf(_STRING)})
_R_ADD_ITEMS = _Message("CreateItems", {"items": _Repeated(_R_ITEM)}, required=("items",))
_R_GET_QUERY = _Message("GetResponse", {"stream": _STRING, "starting_after": _STRING,
                                        "include": _STRING})
_R_LIST_QUERY = _Message("ListItems", {"limit": _STRING, "order": _STRING, "after": _STRING})
_R_ITEMS_MAX = 20  # items one request may add, as OpenAI's Conversations API allows


def _check_items(items: List[Dict[str, Any]], param: str) -> None:
    if len(items) > _R_ITEMS_MAX:
        raise _invalid("%s: at most %d items at a time, got %d" % (param, _R_ITEMS_MAX,
                                                                   len(items)),
                       param, "invalid_value")


def _create_response(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        response = _new_response(emu, call.body)
        obj = _response_object(emu, response, emu.clock())
    if call.body.get("stream"):
        return _Answer(stream=_response_events(emu, response, 0))
    if not call.body.get("background"):  # foreground: the answer once it is finished
        emu._wait_until(response.timeline[-1][0])
        with emu._lock:
            obj = _response_object(emu, response, emu.clock())
    return _Answer(obj)


def _stream_query(query: Dict[str, Any]) -> Tuple[bool, int]:
    stream = query.get("stream", "false")
    if stream not in ("true", "false"):
        raise _invalid("stream: must be true or false, got %s" % _shown(stream), "stream",
                       "invalid_value")
    after = query.get("starting_after", "0")
    if not re.match(r"[0-9]{1,9}\Z", after):
        raise _invalid("starting_after: must be a sequence number >= 0, got %s" % _shown(after),
                       "starting_after", "invalid_value")
    return stream == "true", int(after)


def _get_response(emu: Emulator, call: _Call) -> _Answer:
    _stream_query(call.query)
    with emu._lock:
        return _Answer(_response_object(emu, _response_named(emu, call.ids[0]),
                                        emu.clock()))


def _listen_response(emu: Emulator, call: _Call) -> _Answer:
    _, after = _stream_query(call.query)
    with emu._lock:
        response = _response_named(emu, call.ids[0])
        if not response.body.get("background"):
            raise _invalid("stream: only a response created with background: true can be "
                           "streamed again", "stream", "invalid_value")
        if after > len(response.events):
            raise _invalid("starting_after: %d is past the response's %d events"
                           % (after, len(response.events)), "starting_after", "invalid_value")
    return _Answer(stream=_response_events(emu, response, after))


def _response_events(emu: Emulator, response: _EmulatedResponse, index: int
                     ) -> Iterator[Tuple[float, Dict[str, Any]]]:
    while True:
        with emu._lock:
            if index >= len(response.events):
                return
            due, event = response.events[index]
        yield due, event
        index += 1


def _cancel_response(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        response = _response_named(emu, call.ids[0])
        if not response.body.get("background"):
            raise _invalid("Only responses created with background: true can be cancelled.",
                           "background", "invalid_value")
        now = emu.clock()
        if response.status(now) in ("queued", "in_progress"):
            response.timeline = [(since, status) for since, status in response.timeline
                                 if since <= now] + [(now, "cancelled")]
            response.events = [(due, event) for due, event in response.events if due <= now]
            if response.conversation is not None:  # what it had not said yet, it never says
                response.conversation.items = [(due, item) for due, item in
                                               response.conversation.items
                                               if item not in response.output]
            response.output = []
        return _Answer(_response_object(emu, response, now))


def _delete_response(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        response = _response_named(emu, call.ids[0])
        del emu.responses[response.id]
    return _Answer({"id": response.id, "object": "response.deleted", "deleted": True})


def _list_input_items(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        return _Answer(_item_list(_response_named(emu, call.ids[0]).input_items, call.query))


def _create_conversation(emu: Emulator, call: _Call) -> _Answer:
    items = call.body.get("items") or []
    _check_items(items, "items")
    metadata = call.body.get("metadata") or {}
    if len(metadata) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in metadata.items()):
        raise _invalid("metadata: at most 16 keys of up to 64 characters, values of up to 512",
                       "metadata", "invalid_value")
    with emu._lock:
        conversation_id = _uuid4()
        conversation = _EmulatedConversation(conversation_id, dict(metadata))
        now = emu.clock()
        conversation.items = [(now, _item_with_id(item)) for item in items]
        emu.conversations[conversation_id] = conversation
        return _Answer(dict(conversation.json))


def _get_conversation(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        conversation = emu.conversations.get(call.ids[0])
        if conversation is None:
            raise _Refusal(404, 5, "Conversation with id %s not found." % _shown(call.ids[0]),
                           "conversation_id", "not_found")
        return _Answer(dict(conversation.json))


def _add_items(emu: Emulator, call: _Call) -> _Answer:
    _check_items(call.body["items"], "items")
    with emu._lock:
        conversation = _conversation_named(emu, call.ids[0], "conversation_id")
        outputs = [i for i in call.body["items"] if i["type"] == "function_call_output"]
        if outputs:
            _match_outputs(conversation.last, outputs)
            if conversation.last is not None:
                conversation.last.answered = True
        now = emu.clock()
        added = [_item_with_id(item) for item in call.body["items"]]
        conversation.items.extend((now, item) for item in added)
        return _Answer({"object": "list", "data": added, "has_more": False,
                        "first_id": added[0]["id"], "last_id": added[-1]["id"]})


def _list_items(emu: Emulator, call: _Call) -> _Answer:
    with emu._lock:
        conversation = emu.conversations.get(call.ids[0])
        if conversation is None:
            raise _Refusal(404, 5, "Conversation with id %s not found." % _shown(call.ids[0]),
                           "conversation_id", "not_found")
        now = emu.clock()
        return _Answer(_item_list([item for due, item in conversation.items if due <= now],
                                  call.query))


def _not_supported(emu: Emulator, call: _Call) -> _Answer:
    raise _Refusal(501, 12, "This operation is currently not supported: update or delete a "
                   "conversation, get or delete an item (to change a conversation, create a "
                   "new one)", None, "not_implemented")


_RESP = "/v1/responses"
_CONV = "/v1/conversations"
_RESPONSES_API_ROUTES = [
    _Route("POST", _RESP, "createResponse", _NO_FIELDS, _R_CREATE, _create_response),
    _Route("GET", _RESP + "/" + _ID, "listenResponse", _R_GET_QUERY, None, _listen_response,
           streams=True, when=lambda query: query.get("stream") == "true"),
    _Route("GET", _RESP + "/" + _ID, "getResponse", _R_GET_QUERY, None, _get_response),
    _Route("POST", _RESP + "/" + _ID + "/cancel", "cancelResponse", _NO_FIELDS, None,
           _cancel_response),
    _Route("DELETE", _RESP + "/" + _ID, "deleteResponse", _NO_FIELDS, None, _delete_response),
    _Route("GET", _RESP + "/" + _ID + "/input_items", "listInputItems", _R_LIST_QUERY, None,
           _list_input_items),
    _Route("POST", _CONV, "createConversation", _NO_FIELDS, _R_CONVERSATION,
           _create_conversation),
    _Route("GET", _CONV + "/" + _ID, "getConversation", _NO_FIELDS, None, _get_conversation),
    _Route("POST", _CONV + "/" + _ID, "updateConversation", _NO_FIELDS, None, _not_supported),
    _Route("DELETE", _CONV + "/" + _ID, "deleteConversation", _NO_FIELDS, None,
           _not_supported),
    _Route("POST", _CONV + "/" + _ID + "/items", "addItems", _NO_FIELDS, _R_ADD_ITEMS,
           _add_items),
    _Route("GET", _CONV + "/" + _ID + "/items", "listItems", _R_LIST_QUERY, None, _list_items),
    _Route("GET", _CONV + "/" + _ID + "/items/" + _ID, "getItem", _NO_FIELDS, None,
           _not_supported),
    _Route("DELETE", _CONV + "/" + _ID + "/items/" + _ID, "deleteItem", _NO_FIELDS, None,
           _not_supported),
]

_OPENAI_CODES = {400: "invalid_value", 401: "invalid_api_key", 403: "permission_denied",
                 404: "not_found", 405: "method_not_allowed", 411: "invalid_value",
                 429: "rate_limit_exceeded", 501: "not_implemented"}


def _responses_error_body(refusal: _Refusal) -> Dict[str, Any]:
    """OpenAI's error shape; a 404 in the bare shape of Yandex's Responses reference."""
    code = refusal.code or _OPENAI_CODES.get(refusal.status, "server_error")
    kind = "invalid_request_error" if refusal.status < 500 else "server_error"
    if refusal.status == 401:
        kind = "authentication_error"
    if refusal.status == 404:
        return {"code": code, "message": refusal.message, "param": refusal.param, "type": kind}
    return {"error": {"message": refusal.message, "type": kind, "code": code,
                      "param": refusal.param}}


def _sse_event(event: Dict[str, Any]) -> bytes:
    """An event as the service frames it: the data line first, no space, then event:;
    created_at as its Java encoder writes a double (1.790262606E9), and ``valid`` twice in
    a response and its function tools, as the captures have it."""
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    data = re.sub(_CREATED_AT, _java_double, data, count=1)
    data = re.sub(_VALID_TWICE, r'\1,"valid":true}', data)
    return ("data:%s\nevent:%s\n\n" % (data, event["type"])).encode("utf-8")


_CREATED_AT = r'"created_at":([0-9]+)\.([0-9]+)'
_JSON_TEXT = r'(?:null|"(?:[^"\\]|\\.)*")'
_VALID_TWICE = (r'((?:"defer_loading":null,"description"|"user"):%s,"valid":true)}'
                % _JSON_TEXT)


def _java_double(match: Any) -> str:
    whole, fraction = match.group(1), match.group(2)
    digits = (whole + fraction).rstrip("0") or "0"
    return '"created_at":%s.%sE%d' % (digits[0], digits[1:] or "0", len(whole) - 1)


_RESPONSES_API = _Dialect("responses", "/v1/", _RESPONSES_API_ROUTES, _responses_error_body,
                          _sse_event, b'data:{"sequence_number":3,"item":{"id"\n\n',
                          "text/event-stream")


# ============================================================================
# Emulator: the HTTP face (http.server, imported only here)
# ============================================================================

_EMULATOR_MAX_BODY_BYTES = 32 * 1024 * 1024  # a request body it takes (the client's cap is 64 MiB)
_CONTENT_LENGTH = r"[0-9]{1,12}\Z"


_EMULATOR_LOG_LOCK = threading.Lock()


def _emulator_server(emu: Emulator) -> Any:
    """A ThreadingHTTPServer bound to the emulator's address (http.server imported here only)."""
    import http.server
    from urllib.parse import parse_qsl, unquote, urlsplit

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "yc-runs-emulator/" + __version__
        disable_nagle_algorithm = True  # head and body are two writes: no 40 ms delayed-ACK stall
        timeout = 120  # a client that stops sending mid-body does not hold a thread forever
        default_request_version = "HTTP/1.1"  # a refused request line still gets a status line

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request is written by _finish, without credentials

        def __getattr__(self, name: str) -> Any:
            # every method reaches the routes, so one the API lacks gets its JSON 404/405
            if name.startswith("do_"):
                return self._handle
            raise AttributeError(name)

        def send_error(self, code: int, message: Optional[str] = None,
                       explain: Optional[str] = None) -> None:
            # http.server's own refusals (a bad request line, huge headers) in the API's shape
            self.close_connection = True
            path = getattr(self, "path", "") or ""  # not set when the request line was bad
            dialect = emu._dialect_for(urlsplit(path).path)
            self._send(code, dialect.error_body(_Refusal(code, _HTTP_TO_GRPC.get(code, 3),
                                                         message or "bad request")))

        def _handle(self) -> None:
            self._started = time.perf_counter()
            self._status = 0
            try:
                self._answer()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            self._finish()

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() not in ("", "identity"):
                # the service's clients send Content-Length; a framing we do not read
                # would leave the connection out of step: refuse and close
                self.close_connection = True
                raise _Refusal(411, 3, "Transfer-Encoding: a request body needs Content-Length")
            text = (self.headers.get("Content-Length") or "0").strip()
            if not re.match(_CONTENT_LENGTH, text) or int(text) > _EMULATOR_MAX_BODY_BYTES:
                self.close_connection = True
                raise _invalid("Content-Length: %s is not a length up to %d bytes"
                               % (_shown(text), _EMULATOR_MAX_BODY_BYTES))
            length = int(text)
            return self.rfile.read(length) if length else b""

        def _answer(self) -> None:
            parts = urlsplit(self.path)
            raw_path = parts.path
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            headers = {k: v for k, v in self.headers.items()}
            for name in list(headers):
                if name.lower() == "authorization":
                    scheme = headers[name].split(" ")[0]
                    headers[name] = (scheme + " ***" if scheme in ("Api-Key", "Bearer", "Basic")
                                     else "***")
            raw = b""
            body: Any = None
            framing: Optional[_Refusal] = None
            try:
                raw = self._read_body()
                body = json.loads(raw) if raw else None
            except _Refusal as refused:
                framing = refused
            except (ValueError, RecursionError):
                body = raw.decode("utf-8", "replace")
            with emu._lock:
                emu.requests.append(RecordedRequest(self.command, unquote(raw_path), query,
                                                    headers, body, raw_path))
            fault: Optional[Fault] = None
            dialect = emu._dialect_for(raw_path)
            try:
                if framing is not None:
                    raise framing
                route, ids = _resolve(dialect.routes, self.command, raw_path, query)
                self._authorize()
                fault = emu._fault(route.endpoint, route.streams)
                if fault is not None and fault.kind == "status":
                    extra = {} if fault.retry_after is None else {
                        "Retry-After": "%g" % fault.retry_after}
                    injected = _Refusal(fault.status, _HTTP_TO_GRPC.get(fault.status, 2),
                                        fault.message or "injected fault")
                    self._send(fault.status, dialect.error_body(injected), extra)
                    return
                if fault is not None and fault.kind == "stall" and not route.streams:
                    time.sleep(fault.seconds)
                checked_body: Dict[str, Any] = {}
                if route.body is not None:
                    if body is None:
                        raise _invalid("the request body must be a %s object" % route.body.name)
                    if isinstance(body, str):
                        raise _invalid("the request body is not JSON")
                    checked_body = _check(route.body, body, "")
                call = _Call(ids, _check(route.query, query, ""), checked_body,
                             self.headers.get("x-folder-id") or
                             self.headers.get("OpenAI-Project") or "")
                answer = route.handler(emu, call)
            except _Refusal as refused:
                self._pause()
                self._send(refused.status, dialect.error_body(refused))
                return
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away (it gave up on a stall)
                return
            except Exception as error:  # a bug of ours: still an answer, never a dropped line
                sys.stderr.write("yc_runs.Emulator: %s %s: %r\n" % (self.command, raw_path, error))
                self._send(500, dialect.error_body(_Refusal(500, 13, "internal error: %s" % error)))
                return
            self._pause()
            if answer.stream is None:
                self._send(200, answer.obj)
            else:
                self._stream(answer.stream, fault, dialect)

        def _authorize(self) -> None:
            auth = self.headers.get("Authorization")
            if not auth:
                raise _Refusal(401, 16, "the Authorization header is missing")
            if emu.api_key is not None and auth != "Api-Key " + emu.api_key:
                raise _Refusal(401, 16, "Unknown api key '%s'" % auth.split(" ", 1)[-1])

        def _pause(self) -> None:
            delay = emu._answer_delay()
            if delay:
                time.sleep(delay)

        def _finish(self) -> None:
            if emu.log is not None:
                elapsed = (time.perf_counter() - self._started) * 1000
                line = "%s %s %d %.1fms\n" % (self.command, self.path.split("?")[0],
                                               self._status, elapsed)
                with _EMULATOR_LOG_LOCK:  # one write a line: handler threads never interleave
                    emu.log.write(line)
                    emu.log.flush()

        def _head(self, status: int, extra: Dict[str, str],
                  content_type: str = "application/json") -> None:
            self._status = status
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("x-request-id", _emulator_id())
            for name, value in extra.items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")

        def _send(self, status: int, obj: Any, extra: Optional[Dict[str, str]] = None) -> None:
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            self._head(status, dict(extra or {}, **{"Content-Length": str(len(data))}))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _stream(self, events: Iterator[Tuple[float, Dict[str, Any]]],
                    fault: Optional[Fault], dialect: _Dialect) -> None:
            self._head(200, {"Transfer-Encoding": "chunked"}, dialect.stream_type)
            self.end_headers()
            chunker = emu._chunker()
            sent = 0
            for count, (due, event) in enumerate(events):
                if fault is not None and count == fault.after_events:
                    if fault.kind == "stall":
                        time.sleep(fault.seconds)
                    elif fault.kind == "malformed":
                        self._chunk(dialect.malformed, None)
                        fault = None
                emu._wait_until(due)
                line = dialect.frame(event)
                if fault is not None and fault.kind == "cut" and sent + len(line) > fault.after_bytes:
                    self._chunk(line[:max(0, fault.after_bytes - sent)], None)
                    self.close_connection = True
                    return
                self._chunk(line, chunker)
                sent += len(line)
            self.wfile.write(b"0\r\n\r\n")

        def _chunk(self, data: bytes, chunker: Any) -> None:
            cuts = [0, len(data)]
            if chunker is not None and len(data) > 1:  # boundaries inside lines and characters
                cuts[1:1] = sorted(chunker.sample(range(1, len(data)),
                                                  min(len(data) - 1, chunker.randint(0, 3))))
            for start, end in zip(cuts, cuts[1:]):
                if end > start:
                    self.wfile.write(b"%x\r\n%s\r\n" % (end - start, data[start:end]))
                    self.wfile.flush()

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 1024  # hundreds of clients connect at once in load tests
        address_family = socket.AF_INET6 if ":" in emu.host else socket.AF_INET

        def handle_error(self, request: Any, client_address: Any) -> None:
            # a client that hangs up (a reset between requests) is normal, not a traceback
            if not isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout)):
                super().handle_error(request, client_address)

        def __init__(self, address: Tuple[str, int], handler: Any) -> None:
            super().__init__(address, handler)
            self.wake = socket.socketpair()
            self.stopping = False

        def serve_until_stopped(self) -> None:
            """serve_forever without its poll: stop_serving wakes the select through a socket
            pair, so a stop takes microseconds, not up to a poll interval."""
            import selectors

            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self.wake[0], selectors.EVENT_READ)
                while not self.stopping:
                    ready = selector.select()
                    if not self.stopping and any(key.fileobj is self for key, _ in ready):
                        self.handle_request()  # the listener is readable: no wait

        def stop_serving(self) -> None:
            self.stopping = True
            try:
                self.wake[1].send(b"x")
            except OSError:  # pragma: no cover - already closed
                pass

        def server_close(self) -> None:
            super().server_close()
            for end in self.wake:
                end.close()

    return Server((emu.host, emu.port), Handler)


# ============================================================================
# Command line (python -m yc_runs): exit codes, and a run or an event as text or JSON
# ============================================================================

_EXIT_OK, _EXIT_FAILED, _EXIT_USAGE, _EXIT_API, _EXIT_TIMEOUT = 0, 1, 2, 3, 4
_EXIT_OUTPUT = 5  # stdout could not be written (a full disk, /dev/full)
_EXIT_CLOSED = 141  # stdout was closed by its reader (`| head`): 128 + SIGPIPE, as a shell shows
_EXIT_INTERRUPTED = 130

_TOOLS_HELP = """\
--tools FILE.json holds a JSON list of tools (one object is taken as a list of one). A
function tool is {"name": ..., "description": ..., "parameters": JSON Schema}; the API's
own Tool objects ({"function": {...}}, {"searchIndex": {...}}, {"genSearch": {...}}) pass
as they are. --tools-from MODULE:FUNCTION builds a function tool from a Python function's
signature, type hints and docstring (MODULE is imported from the current directory, or is
a path to a .py file); it may be repeated, and may name a list of functions."""


class _OutputClosed(Exception):
    """The reader of stdout went away (a closed pipe)."""


class _OutputFailed(Exception):
    """stdout could not be written."""


def _plain(value: Any) -> Any:
    """Data classes, enums and datetimes as JSON-ready values; the JSON the API sent (dicts,
    lists: labels, tool arguments) as it is, so any depth json can print is printed."""
    from datetime import datetime

    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, tuple):  # the data classes' sequences of data classes
        return [_plain(v) for v in value]
    return value


def _run_json(run: _RunFields) -> Dict[str, Any]:
    obj = _plain(run)
    obj["result"]["text"] = None if run.result.is_failed else run.result.text
    return obj  # type: ignore[no-any-return]


def _event_json(event: RunStreamEvent) -> Dict[str, Any]:
    return {"event": event.status.name, "index": event.stream_cursor.current_event_idx,
            "delta": event.delta, "delta_reset": event.delta_reset,
            "text": None if event.is_failed else event.text,
            "tool_calls": _plain(event.tool_calls), "error": _plain(event.error)}


def _describe(run: _RunFields) -> str:
    result = run.result
    lines = ["run %s  %s" % (run.id, run.status.name),
             "  assistant  %s" % run.assistant_id, "  thread     %s" % run.thread_id]
    if run.created_at is not None:
        lines.append("  created    %s" % _plain(run.created_at))
    if run.labels:
        lines.append("  labels     %s" % ", ".join("%s=%s" % kv for kv in run.labels.items()))
    if result.usage is not None:
        lines.append("  usage      prompt %d, completion %d, total %d" % (
            result.usage.prompt_tokens, result.usage.completion_tokens, result.usage.total_tokens))
    for call in result.tool_calls:
        lines.append("  tool call  %s(%s)" % (call.name, json.dumps(call.arguments,
                                                                    ensure_ascii=False)))
    if result.error is not None:
        lines.append("  error      %s" % result.error)
    elif result.text:
        lines.append("  text       " + result.text.replace("\n", "\n             "))
    return "\n".join(lines)


class _Printer:
    """Prints events as a person reads them, or one JSON object per line (JSON Lines)."""

    def __init__(self, out: Any, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.mid_line = False

    def write(self, text: str) -> None:
        """Write and flush; a closed pipe and a failed write become the CLI's own errors."""
        try:
            self.out.write(text)
            self.out.flush()
        except BrokenPipeError:
            raise _OutputClosed() from None
        except OSError as exc:
            import errno

            if exc.errno == errno.EPIPE:
                raise _OutputClosed() from None
            raise _OutputFailed("cannot write the output: %s" % (exc.strerror or exc)) from None

    def line(self, text: str) -> None:
        if self.mid_line:
            self.mid_line = False
            self.write("\n")
        self.write(text + "\n")

    def text(self, text: str) -> None:
        """A line for a person; nothing in --json mode, where stdout holds only JSON."""
        if not self.as_json:
            self.line(text)

    def json(self, obj: Any) -> None:
        self.line(json.dumps(obj, ensure_ascii=False))

    def event(self, event: RunStreamEvent) -> None:
        if self.as_json:
            self.json(_event_json(event))
            return
        if event.delta:
            if event.delta_reset:
                self.line("")
            self.mid_line = not event.delta.endswith("\n")  # before the write: a Ctrl-C may follow it
            self.write(event.delta)
        for call in event.tool_calls:
            self.line("-> tool call: %s(%s)" % (call.name, json.dumps(call.arguments,
                                                                       ensure_ascii=False)))
        if event.status.is_finished:
            detail = (": %s" % event.error) if event.error is not None else ""
            self.line("[%s%s]" % (event.status.name, detail))

    def run(self, run: _RunFields) -> None:
        if self.as_json:
            self.json(_run_json(run))
        else:
            self.line(_describe(run))

    def end_line(self) -> None:
        """Finish a reply cut short, so the shell prompt starts on a line of its own."""
        if self.mid_line:
            self.mid_line = False
            try:
                self.write("\n")
            except (_OutputClosed, _OutputFailed):
                pass


# ============================================================================
# Command line: the commands
# ============================================================================

def _client_from(args: Any) -> Client:
    return Client(api_key=getattr(args, "api_key", None), iam_token=getattr(args, "iam_token", None),
                  folder_id=getattr(args, "folder_id", None),
                  base_url=getattr(args, "base_url", None), api=getattr(args, "api", None),
                  timeout=60.0 if getattr(args, "timeout", None) is None else args.timeout,
                  max_retries=getattr(args, "max_retries", 4),
                  allow_insecure=getattr(args, "allow_insecure", False))


def _exit_for(result: Union[RunResult, RunStreamEvent, None]) -> int:
    return _EXIT_FAILED if result is not None and result.is_failed else _EXIT_OK


def _json_file(path: str, flag: str) -> Any:
    """The JSON in a file named on the command line; ValueError naming the flag and file."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise ValueError("%s %s: %s" % (flag, path, exc.strerror or exc)) from None
    except ValueError as exc:
        raise ValueError("%s %s is not valid JSON: %s" % (flag, path, exc)) from None


def _tools_from(spec: str) -> List[Any]:
    """The function tools ``--tools-from MODULE:FUNCTION`` names; ValueError saying what is
    wrong with it."""
    import importlib
    import importlib.util

    where, sep, name = spec.rpartition(":")
    if not sep or not where or not name.isidentifier():
        raise ValueError("--tools-from takes MODULE:FUNCTION or FILE.py:FUNCTION, got %r" % spec)
    is_file = where.endswith(".py") or os.sep in where or "/" in where
    loaded = importlib.util.spec_from_file_location("_yc_runs_tools", where) if is_file else None
    if is_file and (loaded is None or loaded.loader is None or not os.path.isfile(where)):
        raise ValueError("--tools-from %s: no such file" % where)
    try:
        if loaded is not None and loaded.loader is not None:
            module = importlib.util.module_from_spec(loaded)
            loaded.loader.exec_module(module)
        else:
            sys.path.insert(0, os.getcwd())
            try:
                module = importlib.import_module(where)
            finally:
                sys.path.remove(os.getcwd())
    except Exception as exc:  # the user's module failed to import: say which and why
        raise ValueError("--tools-from %s: cannot import %s: %s: %s"
                         % (spec, where, type(exc).__name__, exc)) from None
    found = getattr(module, name, None)
    functions: List[Any] = list(found) if isinstance(found, (list, tuple)) else [found]
    if not functions or not all(callable(f) for f in functions):
        raise ValueError("--tools-from %s: %s has no function %s" % (spec, where, name))
    try:
        return [function_tool(f) for f in functions]
    except (TypeError, ValueError) as exc:
        raise ValueError("--tools-from %s: %s" % (spec, exc)) from None


def _listen_and_print(listen: Callable[[int], Iterator[RunStreamEvent]],
                      status: Callable[[], RunStatus], start: int, printer: _Printer,
                      follow: bool) -> int:
    """Print the events ``listen(start)`` gives; after a TOOL_CALLS event, carry on when
    ``status()`` says the run has moved past it (its tool results were submitted), else
    stop there."""
    last = None
    while True:
        for event in listen(start):
            printer.event(event)
            last = event
        if not follow or last is None or last.status != StreamEvent.TOOL_CALLS:
            return _exit_for(last)
        if status() == RunStatus.TOOL_CALLS:
            return _EXIT_OK  # waiting for tool results: nothing more to print yet
        start = last.stream_cursor.current_event_idx + 1


def _cmd_create(args: Any, printer: _Printer) -> int:
    for name in ("poll_timeout", "poll_interval"):  # refused before a run is created
        if getattr(args, name) is not None:
            _check_timeout(getattr(args, name), name)
    tools: Optional[List[Any]] = None
    if args.tools:
        loaded = _json_file(args.tools, "--tools")
        tools = list(loaded) if isinstance(loaded, list) else [loaded]
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise ValueError("--tools %s: item %d is not a JSON object" % (args.tools, i))
    for spec in args.tools_from or []:
        tools = (tools or []) + _tools_from(spec)
    labels = {}
    for pair in args.label or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError("--label takes KEY=VALUE, got %r" % pair)
        labels[key] = value
    with _client_from(args) as client:
        run = client.runs.create(args.assistant, args.thread, stream=args.stream,
                                 additional_messages=args.message or None,
                                 instructions=args.instructions,
                                 custom_temperature=args.temperature,
                                 custom_max_tokens=args.max_tokens, labels=labels or None,
                                 tools=tools)
        if args.stream:
            if printer.as_json:
                printer.run(run)  # first, so a script has the id to submit tool results to
            else:
                printer.line("run %s" % run.id)
            return _listen_and_print(lambda start: run.listen(events_start_idx=start),
                                     run.get_status, 0, printer, follow=False)
        if args.wait:
            result = run.wait(poll_timeout=args.poll_timeout, poll_interval=args.poll_interval)
            run = client.runs.get(run.id)
            printer.run(run)
            return _exit_for(result)
        printer.run(run)
    return _EXIT_OK


def _cmd_get(args: Any, printer: _Printer) -> int:
    with _client_from(args) as client:
        run = client.runs.get(args.run_id) if args.command == "get" \
            else client.runs.get_last_by_thread(args.thread_id)
        printer.run(run)
        return _exit_for(run.result)


def _cmd_list(args: Any, printer: _Printer) -> int:
    if args.limit is not None and args.limit < 0:
        raise ValueError("--limit must not be negative, got %d" % args.limit)
    with _client_from(args) as client:
        for count, run in enumerate(client.runs.list(page_size=args.page_size)):
            if args.limit is not None and count >= args.limit:
                break
            if printer.as_json:
                printer.json(_run_json(run))
            else:
                printer.line("%s  %-11s  %s  assistant %s  thread %s" % (
                    run.id, run.status.name, _plain(run.created_at) or "-", run.assistant_id,
                    run.thread_id))
    return _EXIT_OK


def _cmd_listen(args: Any, printer: _Printer) -> int:
    with _client_from(args) as client:
        runs = client.runs
        return _listen_and_print(
            lambda start: runs.listen(args.run_id, events_start_idx=start),
            lambda: runs.get(args.run_id).status, args.start, printer, follow=args.follow)


def _cmd_wait(args: Any, printer: _Printer) -> int:
    with _client_from(args) as client:
        if sys.stderr.isatty() and not printer.as_json:
            sys.stderr.write("waiting for run %s ...\n" % args.run_id)
        result = client.runs.wait(args.run_id, poll_timeout=args.poll_timeout,
                                  poll_interval=args.poll_interval)
        printer.run(client.runs.get(args.run_id))
        return _exit_for(result)


def _cmd_submit(args: Any, printer: _Printer) -> int:
    results: List[Dict[str, Any]] = []
    if args.results:
        loaded = _json_file(args.results, "--results")
        results.extend(loaded if isinstance(loaded, list) else [loaded])
    for pair in args.pairs:
        name, sep, content = pair.partition("=")
        if not sep or not name:
            raise ValueError("tool results are NAME=CONTENT, got %r" % pair)
        results.append({"name": name, "content": content})
    if not results:
        raise ValueError("give tool results as NAME=CONTENT or --results FILE.json")
    with _client_from(args) as client:
        run = client.runs.submit_tool_results(args.run_id, results)
    if printer.as_json:  # on Responses the run goes on under a new id: print it
        printer.json({"submitted": len(results), "run_id": run.id})
    else:
        printer.line("submitted %d tool result(s); the run goes on as %s" % (len(results), run.id)
                     if run.id != args.run_id else
                     "submitted %d tool result(s) to run %s" % (len(results), args.run_id))
    return _EXIT_OK


def _print_thread(printer: "_Printer", thread: Thread) -> None:
    if printer.as_json:
        printer.json(_plain(thread))
    else:
        printer.line("thread %s%s" % (thread.id, "  " + thread.name if thread.name else ""))


def _print_message(printer: "_Printer", message: Message) -> None:
    if printer.as_json:
        printer.json(_plain(message))
    else:
        printer.line("%s  %-9s  %s" % (message.id or "-", message.author.role or "-",
                                       message.text.replace("\n", "\n" + " " * 13)))


def _cmd_thread(args: Any, printer: _Printer) -> int:
    with _client_from(args) as client:
        if args.action == "create":
            labels = {}
            for pair in args.label or []:
                key, sep, value = pair.partition("=")
                if not sep:
                    raise ValueError("--label takes KEY=VALUE, got %r" % pair)
                labels[key] = value
            _print_thread(printer, client.threads.create(args.message or None, name=args.name,
                                                         labels=labels or None))
        elif args.action == "get":
            _print_thread(printer, client.threads.get(args.thread_id))
        elif args.action == "write":
            _print_message(printer, Thread(args.thread_id, _threads=client.threads).write(
                " ".join(args.text)))
        else:
            for message in Thread(args.thread_id, _threads=client.threads).messages():
                _print_message(printer, message)
    return _EXIT_OK


def _cmd_serve(args: Any, printer: _Printer) -> int:
    if args.keep_requests < 1:
        raise ValueError("--keep-requests must be at least 1, got %d" % args.keep_requests)
    emulator = Emulator(args.host, args.port, log=sys.stderr, event_delay=args.event_delay,
                        implicit=not args.strict, keep_requests=args.keep_requests)
    server = _emulator_server(emulator)
    emulator._server = server
    if printer.as_json:
        printer.json({"url": emulator.url})
    else:
        printer.line("yc_runs emulator on %s (Ctrl-C stops it): Responses and Conversations "
                     "at /v1, the Assistant API at /assistants/v1" % emulator.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        if printer.as_json:
            printer.json({"stopped": True})
        else:
            printer.line("stopped")
    finally:
        server.server_close()
    return _EXIT_OK


def _demo_get_weather(city: str) -> Dict[str, Any]:
    """The weather in a city now (the demo's tool)."""
    return {"city": city, "temperature_c": 21, "sky": "sunny"}


_DEMO_EVENT_DELAY = 0.05  # seconds between the demo's events: a person sees the reply arrive


def _cmd_demo(args: Any, printer: _Printer) -> int:
    api = getattr(args, "api", None) or "responses"  # the live wire unless asked otherwise
    # Responses: the assistant is a model URI; the Assistant API: an assistant's id
    assistant = "gpt://demo-folder/yandexgpt/latest" if api == "responses" else "demo-assistant"
    get_weather = function_tool(_demo_get_weather, name="get_weather")
    if not 0 <= args.event_delay <= 10:
        raise ValueError("--event-delay must be between 0 and 10 seconds, got %r"
                         % args.event_delay)
    with Emulator(event_delay=args.event_delay) as emu:
        emu.script(assistant, tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Moscow"}}],
            replies=[["It is sunny ", "and +21 °C ", "in Moscow right now."]])
        printer.text("emulator at %s, %s wire (no credentials, no network)" % (emu.url, api))
        with Client(base_url=emu.url, api_key="demo", folder_id="demo-folder", api=api) as client:
            thread = client.threads.create(["What is the weather in Moscow?"], name="demo")
            printer.text("created thread %s" % thread.id)
            run = client.runs.create(assistant, thread, stream=True, tools=[get_weather])
            printer.text("created run %s (%s); listening" % (run.id, run.status.name))
            last = None
            for event in run.listen():
                printer.event(event)
                last = event
            if last is not None and last.status == StreamEvent.TOOL_CALLS:
                outputs = [{"name": c.name, "content": _demo_get_weather(**c.arguments)}
                           for c in last.tool_calls]
                asked = run.id
                run.submit_tool_results(outputs)  # on Responses the run goes on under a new id
                if printer.as_json:
                    printer.json({"submitted": outputs, "run_id": run.id})
                else:
                    printer.line("submitted %s" % json.dumps(outputs, ensure_ascii=False))
                    if run.id != asked:
                        printer.line("the run goes on as response %s (a tool round is a new "
                                     "response on this wire)" % run.id)
                for event in run.listen(events_start_idx=last.stream_cursor.current_event_idx + 1):
                    printer.event(event)
            result = run.wait()
            printer.run(client.runs.get(run.id))
            return _exit_for(result)


# ============================================================================
# Command line: its parser, its words, and main()
# ============================================================================


def _prog() -> str:
    """The name the user typed: ``yc-runs`` for the console script, else ``python -m yc_runs``."""
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if not name or name.endswith((".py", ".pyc")) or name in ("-c", "-m"):
        return "python -m yc_runs"
    return name


def _cli_parser() -> Any:
    import argparse

    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print JSON Lines: one JSON object per line on stdout")
    output.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="log each request, retry and resume to stderr; tracebacks on errors")
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--api-key", default=argparse.SUPPRESS,
                        help="API key (default: $YC_API_KEY, then the other YC_* variables)")
    client.add_argument("--iam-token", default=argparse.SUPPRESS, help="IAM token")
    client.add_argument("--folder-id", default=argparse.SUPPRESS,
                        help="folder (default: $YC_FOLDER_ID)")
    client.add_argument("--base-url", default=argparse.SUPPRESS,
                        help="service URL (default: $YC_RUNS_BASE_URL or %s)" % DEFAULT_BASE_URL)
    client.add_argument("--allow-insecure", action="store_true", default=argparse.SUPPRESS,
                        help="allow plain http:// to a host that is not loopback")
    client.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help="seconds per request (default 60)")
    client.add_argument("--max-retries", type=int, default=argparse.SUPPRESS,
                        help="retries of a failed request (default 4)")
    client.add_argument("--api", choices=sorted(_WIRES), default=argparse.SUPPRESS,
                        help="the wire: responses (the live service) or assistants (the "
                             "Assistant API, discontinued by Yandex); default $YC_RUNS_API or "
                             "responses")
    parser = argparse.ArgumentParser(
        prog=_prog(), parents=[output, client],
        description="Runs of Yandex Cloud AI assistants from the shell. Start with: %s demo"
                    % _prog(),
        epilog="Exit codes: 0 ok, 1 the run failed, 2 usage error, 3 API or network error, "
               "4 timed out, 5 stdout could not be written, 130 interrupted, 141 stdout closed "
               "by its reader (| head).")
    parser.add_argument("--version", action="version", version="yc_runs " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name: str, handler: Callable[[Any, _Printer], int], text: str,
                uses_client: bool = True, **extra: Any) -> Any:
        sub = commands.add_parser(name, parents=[output, client] if uses_client else [output],
                                  help=text, description=text, **extra)
        sub.set_defaults(handler=handler)
        return sub

    sub = command("create", _cmd_create, "start a run", epilog=_TOOLS_HELP,
                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub.add_argument("assistant", help="Responses: a model URI (gpt://FOLDER/yandexgpt/latest), "
                     "a model of --folder-id (yandexgpt/latest) or a saved agent's 20-character id; "
                     "Assistant API: the assistant's id")
    sub.add_argument("thread", nargs="?", help="thread id (optional on Responses: a stateless run)")
    sub.add_argument("--instructions", help="instructions for this run (Responses)")
    sub.add_argument("--message", "-m", action="append", help="a user message (repeatable)")
    sub.add_argument("--stream", action="store_true",
                     help="print the reply as it is generated (with --json: the run, then "
                          "one object per event)")
    sub.add_argument("--temperature", type=float, help="sampling temperature, 0 to 1")
    sub.add_argument("--max-tokens", type=int, help="the most tokens the reply may have")
    sub.add_argument("--label", action="append", metavar="K=V",
                     help="a label on the run (repeatable)")
    sub.add_argument("--tools", metavar="FILE.json", help="a JSON list of tools (format below)")
    sub.add_argument("--tools-from", action="append", metavar="MODULE:FUNCTION",
                     help="a function tool from a Python function (repeatable)")
    sub.add_argument("--wait", action="store_true", help="wait for the run to finish")
    _poll_flags(sub, "with --wait: ")
    sub = command("get", _cmd_get, "show a run")
    sub.add_argument("run_id", help="the run's id")
    sub = command("last", _cmd_get, "show the thread's last run")
    sub.add_argument("thread_id", help="the thread's id")
    sub = command("list", _cmd_list, "runs in the folder, one per line")
    sub.add_argument("--page-size", type=int, help="runs per request to the service")
    sub.add_argument("--limit", type=int, help="stop after N runs")
    sub = command("listen", _cmd_listen,
                  "print a run's events as they arrive; on the Assistant API a run that stopped "
                  "for tool calls is followed once its tool results are submitted (on Responses "
                  "a tool round goes on as a new response: listen to the id submit printed)")
    sub.add_argument("run_id", help="the run's id")
    sub.add_argument("--from", dest="start", type=int, default=0, metavar="IDX",
                     help="first event index (default 0: the run's first event)")
    sub.add_argument("--no-follow", dest="follow", action="store_false",
                     help="stop at a TOOL_CALLS event even when the run has moved on")
    sub = command("wait", _cmd_wait, "block until the run is finished")
    sub.add_argument("run_id", help="the run's id")
    _poll_flags(sub, "")
    sub = command("submit", _cmd_submit, "submit tool results")
    sub.add_argument("run_id", help="the run's id (a run in TOOL_CALLS)")
    sub.add_argument("pairs", nargs="*", metavar="NAME=CONTENT",
                     help="a tool's result: the function's name and its output (repeatable)")
    sub.add_argument("--results", metavar="FILE.json",
                     help='a JSON list of {"name", "content"} objects')
    sub = command("thread", _cmd_thread, "threads: create, get, write, messages")
    actions = sub.add_subparsers(dest="action", metavar="ACTION",
                                 help="create, get, write or messages")
    actions.required = True
    action = actions.add_parser("create", parents=[output, client], help="a new thread")
    action.add_argument("--message", "-m", action="append", help="a first message (repeatable)")
    action.add_argument("--name", help="the thread's name")
    action.add_argument("--label", action="append", metavar="K=V", help="a label (repeatable)")
    action = actions.add_parser("get", parents=[output, client], help="show a thread")
    action.add_argument("thread_id", help="the thread's id")
    action = actions.add_parser("write", parents=[output, client], help="add a user message")
    action.add_argument("thread_id", help="the thread's id")
    action.add_argument("text", nargs="+", help="the message")
    action = actions.add_parser("messages", parents=[output, client],
                                help="the thread's messages, newest first")
    action.add_argument("thread_id", help="the thread's id")
    sub = command("serve", _cmd_serve, "run the emulator in the foreground", uses_client=False)
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on")
    sub.add_argument("--port", type=int, default=8080, help="port (0: any free one)")
    sub.add_argument("--event-delay", type=float, default=0.05,
                     help="seconds between stream events")
    sub.add_argument("--strict", action="store_true",
                     help="as the service: a run needs a thread that was created and an "
                          "assistant it knows (default: any id works)")
    sub.add_argument("--keep-requests", type=int, default=10_000, metavar="N",
                     help="how many recent requests the emulator keeps (default 10000)")
    sub = command("demo", _cmd_demo, "the whole lifecycle against an in-process emulator",
                  uses_client=False)
    sub.add_argument("--event-delay", type=float, default=_DEMO_EVENT_DELAY,
                     help="seconds between the reply's events (default %g)" % _DEMO_EVENT_DELAY)
    sub.add_argument("--api", choices=sorted(_WIRES), default=argparse.SUPPRESS,
                     help="the wire to show: responses (default) or assistants")
    return parser


def _poll_flags(sub: Any, when: str) -> None:
    sub.add_argument("--poll-timeout", type=float,
                     help=when + "give up after this many seconds (default 300; exit code 4)")
    sub.add_argument("--poll-interval", type=float,
                     help=when + "seconds between polls (default 0.5)")


# Library argument names in usage errors, as the command line spells them.
_CLI_FLAGS = (("allow_insecure=True", "--allow-insecure"), ("api_key=", "--api-key"),
              ("iam_token=", "--iam-token"), ("folder_id=", "--folder-id"),
              ("api_key", "--api-key"), ("iam_token", "--iam-token"),
              ("base_url", "--base-url"), ("folder_id", "--folder-id"), ("page_size", "--page-size"),
              ("max_retries", "--max-retries"), ("poll_timeout", "--poll-timeout"),
              ("poll_interval", "--poll-interval"), ("events_start_idx", "--from"),
              ("custom_temperature", "--temperature"), ("custom_max_tokens", "--max-tokens"),
              ("labels", "--label"), ("timeout", "--timeout"))


def _in_cli_words(message: str) -> str:
    """A usage error as the command line says it: its flags, not the library's arguments."""
    if message == _NO_CREDENTIALS:
        return ("no credential: pass --api-key or --iam-token, or set YC_API_KEY, YC_IAM_TOKEN, "
                "YC_TOKEN, YC_OAUTH_TOKEN, or YC_METADATA_CREDENTIALS=1")
    for python, flag in _CLI_FLAGS:
        message = re.sub(r"(?<![\w-])%s(?!\w)" % re.escape(python), flag, message)
    return message


def _quiet_stdout() -> None:
    """Point stdout at os.devnull, so the interpreter's flush at exit finds nothing to fail on
    (the way the Python docs handle SIGPIPE)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file behind sys.stdout
        pass


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; returns the exit code (0 ok, 1 run failed, 2 usage, 3 API or
    network error, 4 timed out, 5 stdout not writable, 130 interrupted, 141 stdout closed)."""
    parser = _cli_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error, already printed
        try:  # flush --help's text now: into a closed pipe, the flush at exit would print
            if sys.stdout is not None:  # "Exception ignored ... BrokenPipeError", exit 120
                sys.stdout.flush()
        except BrokenPipeError:
            _quiet_stdout()
        return exc.code if isinstance(exc.code, int) else _EXIT_USAGE
    except BrokenPipeError:  # --help into a closed pipe (Python 3.9 and 3.10 let it escape)
        _quiet_stdout()
        return _EXIT_OK
    printer = _Printer(sys.stdout, getattr(args, "json", False))
    debug = getattr(args, "debug", False)
    if debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.handler(args, printer)  # type: ignore[no-any-return]
    except _OutputClosed:
        _quiet_stdout()
        return _EXIT_CLOSED
    except KeyboardInterrupt:
        printer.end_line()
        sys.stderr.write("interrupted\n")
        return _EXIT_INTERRUPTED
    except BaseException as exc:
        if debug:
            import traceback

            traceback.print_exc()
        code = _EXIT_API
        message = str(exc)
        if isinstance(exc, _OutputFailed):
            _quiet_stdout()  # what is still buffered cannot be written either
            code = _EXIT_OUTPUT
        elif isinstance(exc, (WaitTimeoutError, APITimeoutError)) or (
                isinstance(exc, StreamError) and isinstance(exc.__cause__, APITimeoutError)):
            code = _EXIT_TIMEOUT
        elif isinstance(exc, CredentialsError) or (
                isinstance(exc, (TypeError, ValueError, OSError)) and
                not isinstance(exc, YCRunsError)):
            code = _EXIT_USAGE
            message = _in_cli_words(message)
        elif not isinstance(exc, Exception):
            raise
        printer.end_line()
        sys.stderr.write("error: %s\n" % _redact(message, _cli_secrets(args)))
        return code


def _cli_secrets(args: Any) -> List[str]:
    names = ("YC_API_KEY", "YC_IAM_TOKEN", "YC_TOKEN", "YC_OAUTH_TOKEN")
    secrets = [s for s in [getattr(args, "api_key", None), getattr(args, "iam_token", None)]
               + [os.environ.get(n) for n in names] if s]
    for url in (getattr(args, "base_url", None), os.environ.get("YC_RUNS_BASE_URL")):
        userinfo = _userinfo(url or "")
        if userinfo:
            secrets.append(userinfo)
            secrets.extend(part for part in userinfo.split(":", 1) if len(part) >= 3)
    return secrets


if __name__ == "__main__":
    sys.exit(main())
