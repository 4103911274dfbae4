"""yc_runs: a one-file client for the Runs API of Yandex Cloud AI assistants.

Standard library only, Python 3.9+. Copy this file next to your code, or
``pip install .``. Sync and async clients, streaming, tool calls, a local
emulator of the service, and a command line (``python -m yc_runs --help``).

    import yc_runs

    with yc_runs.Client(api_key="...", folder_id="b1g...") as client:
        run = client.runs.create("fvt-assistant-id", "fvt-thread-id",
                                 additional_messages=["Hello!"], stream=True)
        for text in run.text_stream():          # the reply as it is generated
            print(text, end="", flush=True)
        result = run.wait()                     # RunResult: text, usage, tool_calls
        print(result.status.name, result.usage)

Offline, without credentials: ``with yc_runs.Emulator() as emu:`` and
``yc_runs.Client(base_url=emu.url, api_key="test")``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import re
import socket
import sys
import threading
import time
from collections import namedtuple
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

# typing, datetime, ssl and asyncio are imported where they are used: `import yc_runs` stays cheap
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover - typing only
    import asyncio
    import ssl
    from datetime import datetime
    from typing import Any, Dict, List, NamedTuple, Optional, Set, Tuple, Type, TypeVar, Union

    T = TypeVar("T")
    E = TypeVar("E", bound="_Status")
    RunT = TypeVar("RunT", bound="_RunFields")

__all__ = [
    "Client", "AsyncClient", "Runs", "Run", "AsyncRuns", "AsyncRun",
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

__version__ = "0.1.0"

DEFAULT_BASE_URL = "https://rest-assistant.api.cloud.yandex.net"
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

    @property
    def status_name(self) -> str:
        """ "running", "success", "failed", or "unknown"."""
        return _STATUS_NAMES.get((type(self).__name__, self.name), "unknown")

    @property
    def is_running(self) -> bool:
        return self.status_name == "running"

    @property
    def is_succeeded(self) -> bool:
        return self.status_name == "success"

    @property
    def is_failed(self) -> bool:
        return self.status_name == "failed"

    @property
    def is_finished(self) -> bool:
        return self.is_succeeded or self.is_failed


class RunStatus(_Status):
    UNKNOWN = -1
    RUN_STATUS_UNSPECIFIED = 0
    PENDING = 1
    IN_PROGRESS = 2
    FAILED = 3
    COMPLETED = 4
    TOOL_CALLS = 5


class StreamEvent(_Status):
    UNKNOWN = -1
    EVENT_TYPE_UNSPECIFIED = 0
    PARTIAL_MESSAGE = 1
    ERROR = 2
    DONE = 3
    TOOL_CALLS = 4


class MessageStatus(_Status):
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


@dataclass(frozen=True)
class Author:
    id: str = ""
    role: str = ""


_NO_AUTHOR = Author()


@dataclass(frozen=True)
class Source:
    """One source of a citation: a chunk of a file found through a search index."""

    text: str = ""
    file_id: str = ""
    file_name: str = ""
    mime_type: str = ""
    search_index_id: str = ""
    search_index_name: str = ""


@dataclass(frozen=True)
class Citation:
    sources: Tuple[Source, ...] = ()


@dataclass(frozen=True)
class Message:
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


@dataclass(frozen=True)
class FunctionCall:
    name: str
    arguments: Dict[str, Any]


@dataclass(frozen=True)
class ToolCall:
    function: FunctionCall

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def arguments(self) -> Dict[str, Any]:
        return self.function.arguments


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    @property
    def input_text_tokens(self) -> int:
        """The official SDK's name for ``prompt_tokens``."""
        return self.prompt_tokens


@dataclass(frozen=True)
class RunError:
    """Why a run failed; ``code`` is absent for many failures."""

    message: str
    code: Optional[int] = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class StreamCursor:
    current_event_idx: int = 0
    num_user_events_received: int = 0


@dataclass(frozen=True)
class PromptTruncationOptions:
    """``strategy`` is None, "auto" or {"last_messages": N}."""

    max_prompt_tokens: Optional[int] = None
    strategy: Union[str, Dict[str, int], None] = None


class _ResultView:
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


@dataclass(frozen=True)
class RunResult(_ResultView):
    """What a run produced, as of one fetch."""

    status: RunStatus
    error: Optional[RunError] = None
    tool_calls: Tuple[ToolCall, ...] = ()
    usage: Optional[Usage] = None
    completed_message: Optional[Message] = None

    def _final_message(self) -> Optional[Message]:
        return self.completed_message


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class _RunFields:
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
# JSON decoding (sans-IO): the API's JSON, every variation, into data classes
# ============================================================================

_SNAKE: Dict[str, str] = {}
_TIMESTAMP = (
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d\d):?(\d\d))\Z"
)
_TERMINAL_EVENTS = frozenset((StreamEvent.DONE, StreamEvent.ERROR, StreamEvent.TOOL_CALLS))


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


def _int(value: Any, path: str) -> Optional[int]:
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


def _timestamp(value: Any, path: str) -> Optional[datetime]:
    """RFC 3339 with 0-9 fractional digits and Z or an offset, as aware UTC.

    Also the proto3 object form {seconds, nanos}; digits past microseconds are dropped.
    """
    from datetime import datetime, timedelta, timezone

    if value is None or value == "":
        return None
    if isinstance(value, dict):
        seconds = _int(_get(value, "seconds"), path + ".seconds") or 0
        nanos = _int(_get(value, "nanos"), path + ".nanos") or 0
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


def _decode_message(value: Any, path: str) -> Message:
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
    return RunError(_str(_get(obj, "message"), path + ".message"),
                    _int(_get(obj, "code"), path + ".code"))


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
    return Usage(_int(_get(obj, "promptTokens"), path + ".promptTokens") or 0,
                 _int(_get(obj, "completionTokens"), path + ".completionTokens") or 0,
                 _int(_get(obj, "totalTokens"), path + ".totalTokens") or 0)


def _decode_result(obj: Dict[str, Any], path: str) -> RunResult:
    state = _object(_get(obj, "state"), path + ".state")
    completed = _get(state, "completedMessage")
    return RunResult(
        status=_enum(RunStatus, _get(state, "status"), path + ".state.status"),
        error=_decode_error(_get(state, "error"), path + ".state.error"),
        tool_calls=_decode_tool_calls(_get(state, "toolCallList"), path + ".state.toolCallList"),
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
        count = _int(_get(_object(last, path + ".lastMessagesStrategy"), "numMessages"),
                     path + ".lastMessagesStrategy.numMessages")
        strategy = {"last_messages": count or 0}
    return PromptTruncationOptions(_int(_get(obj, "maxPromptTokens"), path + ".maxPromptTokens"),
                                   strategy)


def _decode_run(value: Any, cls: Type[RunT], runs: Any, path: str = "Run") -> RunT:
    """A Run (or AsyncRun) from its JSON, bound to ``runs`` for further calls."""
    obj = _object(value, path)
    run_id = _str(_get(obj, "id"), path + ".id")
    if not run_id:
        raise MalformedResponseError("%s: the response has no run id" % path)
    completion = _object(_get(obj, "customCompletionOptions"), path + ".customCompletionOptions")
    result = _decode_result(obj, path)
    return cls(
        id=run_id,
        assistant_id=_str(_get(obj, "assistantId"), path + ".assistantId"),
        thread_id=_str(_get(obj, "threadId"), path + ".threadId"),
        created_by=_str(_get(obj, "createdBy"), path + ".createdBy"),
        created_at=_timestamp(_get(obj, "createdAt"), path + ".createdAt"),
        labels=_labels(_get(obj, "labels"), path + ".labels"),
        custom_temperature=_float(_get(completion, "temperature"),
                                  path + ".customCompletionOptions.temperature"),
        custom_max_tokens=_int(_get(completion, "maxTokens"),
                               path + ".customCompletionOptions.maxTokens"),
        custom_prompt_truncation_options=_decode_truncation(
            _get(obj, "customPromptTruncationOptions"), path + ".customPromptTruncationOptions"),
        custom_response_format=_get(obj, "customResponseFormat")
        if isinstance(_get(obj, "customResponseFormat"), dict) else None,
        tools=tuple(_object(t, "%s.tools[%d]" % (path, i))
                    for i, t in enumerate(_list(_get(obj, "tools"), path + ".tools"))),
        status=result.status,
        result=result,
        _runs=runs,
    )


_STREAM_EVENTS: Dict[str, StreamEvent] = dict(StreamEvent.__members__)
_CAMEL_EVENT_KEYS = frozenset(("eventType", "streamCursor", "partialMessage", "completedMessage",
                               "error", "toolCallList", "usage"))


def _cursor_int(cursor: Dict[str, Any], name: str) -> int:
    """A stream cursor's int64: the plain decimal string the service sends, taken directly;
    anything else through _int, which names the field when it is wrong."""
    value = cursor.get(name)
    if value.__class__ is str and len(value) < 19 and value.isascii() and value.isdigit():
        return int(value)
    if value.__class__ is int:
        return value
    return _int(_get(cursor, name), "StreamEvent.streamCursor." + name) or 0


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
            "status": MessageStatus.MESSAGE_STATUS_UNSPECIFIED, "citations": ()})
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


# ============================================================================
# Error answers (sans-IO): three body shapes, Retry-After, credentials redacted
# ============================================================================


def _error_from_body(
    status: Optional[int], body: bytes, headers: Mapping[str, str], secrets: Sequence[str],
    client_request_id: Optional[str] = None,
) -> APIError:
    """An APIError from any of the three error shapes, with credentials redacted."""
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
        return json.loads(body) if body.strip() else {}
    except (ValueError, RecursionError):  # deep nesting makes json raise RecursionError
        text = body[:200].decode("utf-8", "replace")
        snippet = _redact(" ".join(re.sub(r"<[^>]*>", " ", text).split())[:80], secrets)
        raise MalformedResponseError(
            "the response is not JSON (%s): %r" % (headers.get("content-type", "no content type"),
                                                   snippet),
            status=status, request_id=headers.get("x-request-id"),
            client_request_id=client_request_id) from None


# ============================================================================
# JSON encoding (sans-IO): the caller's arguments into request bodies
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


def _int64(value: Any, what: str) -> str:
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


def _message_data(message: Any, index: int) -> Dict[str, Any]:
    """A MessageData from a string (a user message) or a dict."""
    if isinstance(message, str):
        return {"content": {"content": [{"text": {"content": message}}]}}
    if not isinstance(message, Mapping):
        raise TypeError("additional_messages[%d] must be a str or a MessageData dict, not %s"
                        % (index, type(message).__name__))
    data = dict(message)
    content = data.get("content")
    if isinstance(content, str):  # {"content": "text"} is accepted as a shorthand
        data["content"] = {"content": [{"text": {"content": content}}]}
    elif not isinstance(content, Mapping):
        raise ValueError("additional_messages[%d] needs a 'content' string or MessageContent"
                         % index)
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
    raise ValueError('custom_response_format must be "json" or {"json_schema": {...}}, got %r'
                     % (value,))


def _truncation_strategy(value: Any) -> Dict[str, Any]:
    if value == "auto":
        return {"autoStrategy": {}}
    if isinstance(value, Mapping):
        if "autoStrategy" in value or "lastMessagesStrategy" in value:
            return dict(value)
        if "last_messages" in value:
            count = _int64(value["last_messages"], "last_messages")
            return {"lastMessagesStrategy": {"numMessages": count}}
    raise ValueError('custom_prompt_truncation_strategy must be "auto" or '
                     '{"last_messages": N}, got %r' % (value,))


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
        completion["maxTokens"] = _int64(custom_max_tokens, "custom_max_tokens")
    if completion:
        body["customCompletionOptions"] = completion
    truncation: Dict[str, Any] = {}
    if custom_max_prompt_tokens is not None:
        truncation["maxPromptTokens"] = _int64(custom_max_prompt_tokens,
                                               "custom_max_prompt_tokens")
    if custom_prompt_truncation_strategy is not None:
        truncation.update(_truncation_strategy(custom_prompt_truncation_strategy))
    if truncation:
        body["customPromptTruncationOptions"] = truncation
    if custom_response_format is not None:
        body["customResponseFormat"] = _response_format(custom_response_format)
    if stream:
        body["stream"] = True
    if tools is not None:
        if isinstance(tools, Mapping) or callable(tools):
            tools = [tools]
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
# API calls (sans-IO): what each call sends, and when to try it again
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


def _quote(value: str) -> str:
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


def _check_timeout(timeout: Any, what: str = "timeout") -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError("%s must be a number of seconds, not %s" % (what, type(timeout).__name__))
    if not timeout > 0:
        raise ValueError("%s must be positive, got %r" % (what, timeout))
    return float(timeout)


def _jitter() -> float:
    return int.from_bytes(os.urandom(2), "big") / 65536.0


_MAX_RETRY_AFTER = 60.0  # a server asking for longer gets its error raised at once


def _backoff(attempt: int, retry_after: Optional[float] = None) -> float:
    """Retry-After when the server gives one, else 0.5 s doubling to 8 s, less jitter."""
    if retry_after is not None:
        return float(min(retry_after, _MAX_RETRY_AFTER))
    return float(min(0.5 * 2.0 ** attempt, 8.0) * (1 - 0.25 * _jitter()))


class _Retry:
    """Which failures of one call to retry, and after how long."""

    def __init__(self, max_retries: int, idempotent: bool) -> None:
        self.max_retries = max_retries
        self.idempotent = idempotent
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
        return _backoff(self.retries - 1, retry_after)


class _Pager:
    """List pages: follow nextPageToken, stop at the first empty one."""

    def __init__(self, folder_id: Optional[str], page_size: Optional[int]) -> None:
        if not folder_id:
            raise CredentialsError("listing runs needs a folder: pass folder_id= or set "
                                   "YC_FOLDER_ID")
        if page_size is not None:
            _int64(page_size, "page_size")
        self.folder_id = folder_id
        self.page_size = page_size
        self.token: Optional[str] = ""
        self.seen: Set[str] = set()

    def request(self) -> Optional[_Request]:
        if self.token is None:
            return None
        target = "%s?folderId=%s" % (_RUNS, _quote(self.folder_id))
        if self.page_size is not None:
            target += "&pageSize=%d" % self.page_size
        if self.token:
            target += "&pageToken=" + _quote(self.token)
        return _Request("GET", target, None, True)

    def accept(self, page: Any) -> List[Any]:
        obj = _object(page, "ListRunsResponse")
        token = _str(_get(obj, "nextPageToken"), "ListRunsResponse.nextPageToken")
        if token in self.seen:
            raise MalformedResponseError("the service returned page token %r twice" % token[:40])
        self.seen.add(token)
        self.token = token or None
        return _list(_get(obj, "runs"), "ListRunsResponse.runs")


# ============================================================================
# Workflows (sans-IO): a resumable stream, waiting, tool rounds, callbacks
# ============================================================================


class _ListenState:
    """One logical Listen stream across reconnections.

    Feeds body bytes in, gives events out exactly once and in order, keeps the
    cursor to resume from, and decides whether a fault is resumable.
    """

    def __init__(self, run_id: str, events_start_idx: int, max_retries: int, resume: bool) -> None:
        if isinstance(events_start_idx, bool) or not isinstance(events_start_idx, int) \
                or events_start_idx < 0:
            raise ValueError("events_start_idx must be an int >= 0, got %r" % (events_start_idx,))
        self.run_id = run_id
        self.next_idx = events_start_idx
        self.last_idx: Optional[int] = None
        self.max_retries = max_retries if resume else 0
        self.failures = 0
        self.reconnected = False
        self.text = ""
        self.done = False
        self.fatal = False
        self.failed: Optional[YCRunsError] = None  # raised once the events before it are out
        self.lines = _LineSplitter()
        self.secrets: Callable[[], List[str]] = list  # credentials to keep out of error lines
        self.refresh: Optional[Callable[[], None]] = None  # forgets a token that got a 401
        self.request_ids: Tuple[Optional[str], Optional[str]] = (None, None)

    def answered(self, client_request_id: str, request_id: Optional[str]) -> None:
        """The ids of the connection now streaming, for errors it sends in-band."""
        self.request_ids = (client_request_id, request_id)

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
        self.lines.feed(data)
        try:
            lines = self.lines.take()
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

    def end(self) -> Iterator[RunStreamEvent]:
        """The body ended cleanly: a last line without a newline still counts."""
        if self.failed is not None:
            failed, self.failed = self.failed, None
            raise failed
        tail = self.lines.tail()
        event = self._event(tail) if tail else None
        if event is not None:
            yield event
        if not self.done:
            raise APIConnectionError("the stream ended before its final event")

    def _event(self, line: bytes) -> Optional[RunStreamEvent]:
        if not line or line.isspace():
            return None
        if line.startswith(b"\xef\xbb\xbf"):  # a BOM, as json.loads of bytes would allow
            line = line[3:]
        try:
            obj = _json_line(line.decode("utf-8"))
        except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
            raise StreamError("malformed stream line: %s"
                              % _redact(repr(line[:80]), self.secrets()),
                              last_event_idx=self.last_idx) from None
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
            raise StreamError(str(exc), last_event_idx=self.last_idx) from None
        idx = event.stream_cursor.current_event_idx
        if self.reconnected and self.last_idx is not None and idx <= self.last_idx:
            return None  # replayed after a reconnection: delivered already
        message = event.completed_message or event.partial_message
        if message is not None:
            self.text = message.text
        self.last_idx = idx if self.last_idx is None else max(idx, self.last_idx)
        self.next_idx = self.last_idx + 1
        self.failures = 0
        self.done = event.status in _TERMINAL_EVENTS
        return event

    def delay(self, exc: BaseException) -> float:
        """Seconds before reconnecting after ``exc``; raises when the stream cannot go on."""
        if isinstance(exc, AuthenticationError) and self.refresh is not None and not self.fatal:
            self.refresh()  # one new token, as for the other calls
            self.refresh = None
            return 0.0
        resumable = (isinstance(exc, APIConnectionError) and exc.retryable) or (
            isinstance(exc, APIError) and exc.status in _RETRY_STATUSES
            and (exc.retry_after or 0) <= _MAX_RETRY_AFTER)
        if not resumable or self.fatal:
            raise exc
        if self.failures >= self.max_retries:
            where = ("after event %d" % self.last_idx) if self.last_idx is not None \
                else "before its first event"
            raise StreamError("the stream of run %s broke %s: %s"
                              % (self.run_id, where, exc), last_event_idx=self.last_idx) from exc
        self.failures += 1
        self.reconnected = True
        retry_after = exc.retry_after if isinstance(exc, APIError) else None
        if self.failures == 1 and retry_after is None and self.last_idx is not None:
            return 0.0  # the first reconnection after progress is immediate
        return _backoff(self.failures - 1, retry_after)


class _Waiter:
    """Polling for ``wait``: when to stop, how long to sleep, when to give up."""

    def __init__(self, run_id: str, poll_timeout: Optional[float],
                 poll_interval: Optional[float]) -> None:
        self.run_id = run_id
        self.poll_timeout = 300.0 if poll_timeout is None else _check_timeout(
            poll_timeout, "poll_timeout")
        self.poll_interval = 0.5 if poll_interval is None else _check_timeout(
            poll_interval, "poll_interval")
        self.deadline = time.monotonic() + self.poll_timeout
        self.status = RunStatus.RUN_STATUS_UNSPECIFIED

    def result(self, run: _RunFields) -> Optional[RunResult]:
        self.status = run.status
        return run.result if run.status.is_finished else None

    def sleep_time(self) -> float:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise WaitTimeoutError(
                "run %s is still %s after %.1f s of waiting"
                % (self.run_id, self.status.name, self.poll_timeout),
                run_id=self.run_id, status=self.status)
        return min(self.poll_interval, remaining)


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

    def start(self, call: ToolCall) -> Any:
        """Call the function for ``call``; its value, or an awaitable for an async function."""
        function = self.functions.get(call.name)
        if function is None:
            raise LookupError("no function named %r; known: %s"
                              % (call.name, ", ".join(sorted(self.functions)) or "none"))
        return function(**_coerce_arguments(function, call.arguments))

    @staticmethod
    def output(call: ToolCall, value: Any) -> Dict[str, Any]:
        if not isinstance(value, str):
            value = json.dumps(value, ensure_ascii=False, default=str)
        return {"name": call.name, "content": value}

    @staticmethod
    def failure(call: ToolCall, exc: BaseException) -> Dict[str, Any]:
        message = "%s: %s" % (type(exc).__name__, exc)
        return {"name": call.name, "content": json.dumps({"error": message},
                                                         ensure_ascii=False)}


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
            return self._chunked_body()
        if state == "length":
            return self._length_body()
        if state == "head":
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
        end = self.buffer.find(b"\r\n\r\n", self.pos)
        if end < 0:
            if len(self.buffer) - self.pos > _MAX_HEAD_BYTES:
                raise _ProtocolError("response head is over %d bytes" % _MAX_HEAD_BYTES)
            self._incomplete("before a response" if self.pos >= len(self.buffer)
                             else "inside the response head")
            return None
        raw = self.buffer[self.pos:end].decode("latin-1")
        self.pos = end + 4
        lines = raw.split("\r\n")
        match = re.match(r"HTTP/1\.([01]) (\d{3})(?: (.*))?\Z", lines[0])
        if match is None:
            raise _ProtocolError("not an HTTP/1.x status line: %r" % lines[0][:60])
        status = int(match.group(2))
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
            match.group(1) == "1" or "keep-alive" in connection)
        self.head = _Head(status, match.group(3) or "", headers)
        encoding = headers.get("transfer-encoding", "").lower()
        if (self.method == "CONNECT" and status < 300) or status in (204, 304) \
                or self.method == "HEAD":
            self.state, self.remaining = "length", 0
        elif encoding:
            if encoding.split(",")[-1].strip() != "chunked":
                raise _ProtocolError("unsupported Transfer-Encoding: %s" % encoding[:40])
            self.state = "chunked"
        elif "content-length" in headers:
            lengths = {v.strip() for v in headers["content-length"].split(",")}
            if len(lengths) != 1 or not lengths.pop().isdigit():
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
                    remaining = -2  # the CRLF after the chunk data
                if remaining == -2:
                    if size_limit - pos < 2:
                        if not pieces:
                            self._incomplete("after a chunk")
                        break
                    if buffer[pos] != 13 or buffer[pos + 1] != 10:
                        raise _ProtocolError("chunk data not followed by CRLF")
                    pos += 2
                    remaining = 0
                elif remaining == -1 and pieces:
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
                if remaining == -1:  # trailers: header lines until an empty one
                    if not line:
                        self.state = "done"
                        return _End(self.keep_alive)
                    continue
                if len(line) > _MAX_CHUNK_LINE:
                    raise _ProtocolError("chunk size line is too long")
                semicolon = line.find(b";")
                size_text = (line if semicolon < 0 else line[:semicolon]).strip(b" \t")
                if not size_text or size_text.translate(None, b"0123456789abcdefABCDEF"):
                    raise _ProtocolError("bad chunk size: %r" % size_text[:20])
                remaining = int(size_text, 16) or -1
        finally:
            self.pos, self.remaining = pos, remaining
        if not pieces:
            return None
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)


class _Exchange:
    """One request and its response on one connection: what every read, failure and end
    means, for both transports (which only move the bytes)."""

    def __init__(self, origin: "_Origin", method: str, reused: bool) -> None:
        self.origin = origin
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

    def failed(self, reading: bool, exc: BaseException, seconds: float) -> APIConnectionError:
        """The error for a send (``reading`` False) or a read that raised ``exc``."""
        host = self.origin.host
        if isinstance(exc, (socket.timeout, TimeoutError)) or type(exc).__name__ == "TimeoutError":
            return APITimeoutError("no answer from %s within %.3g s" % (host, seconds) if reading
                                   else "sending the request to %s timed out" % host)
        doing = "reading the response from" if reading else "sending the request to"
        return APIConnectionError("%s %s failed: %s" % (doing, host, exc),
                                  reused=self.reused and not self.received)


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

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self.index >= len(self.lines):
            if self.pending_size > self.max_line:  # raised once the lines before it are taken
                raise StreamError("a stream line is longer than %d bytes" % self.max_line)
            raise StopIteration
        line = self.lines[self.index]
        self.index += 1
        if len(line) > self.max_line:
            raise StreamError("a stream line is longer than %d bytes" % self.max_line)
        return line

    def tail(self) -> bytes:
        return b"".join(self.pending)


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


def _split_url(url: str, allow_insecure: bool, what: str = "base_url") -> Tuple[_Origin, str]:
    """(origin, path prefix); refuses plain http:// beyond loopback unless allowed."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        raise TypeError("%s must be a str, not %s" % (what, type(url).__name__))
    if re.search(r"[^\x21-\x7e]", url.strip()):  # urlsplit would drop CR/LF; spaces split the request line
        raise ValueError("%s contains whitespace, control or non-ASCII characters; "
                         "percent-encode them" % what)
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError("%s %r is not a valid URL: %s" % (what, url, exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("%s must be an http:// or https:// URL, got %r" % (what, url))
    if parts.username or parts.password:
        raise ValueError("%s must not carry credentials in the URL" % what)
    host = parts.hostname
    if scheme == "http" and not allow_insecure and not _is_loopback(host):
        raise ValueError("%s %r is plain http:// to a host that is not loopback; use https:// "
                         "or pass allow_insecure=True" % (what, url))
    origin = _Origin(scheme, host, port or (443 if scheme == "https" else 80))
    return origin, parts.path.rstrip("/")


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


def _connect_error(origin: _Origin, exc: BaseException) -> APIConnectionError:
    """The error for a failed connect, proxy tunnel or TLS handshake: nothing was sent."""
    if type(exc).__name__ == "SSLCertVerificationError":
        return APIConnectionError("TLS certificate verification failed for %s: %s"
                                  % (origin.host, getattr(exc, "verify_message", exc)),
                                  connected=False, retryable=False)
    kind = APITimeoutError if isinstance(exc, (socket.timeout, TimeoutError)) else APIConnectionError
    return kind("cannot connect to %s:%d: %s" % (origin.host, origin.port, exc), connected=False)


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
        raise CredentialsError("%s contains CR, LF or NUL; refusing to send it" % what)
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


class _Config:
    """What both clients share: where to send, what to send with it, how to read the answer."""

    def __init__(self, api_key: Any, iam_token: Any, folder_id: Optional[str], base_url: str,
                 timeout: float, max_retries: int, ssl_context: Optional["ssl.SSLContext"],
                 credentials: Any, allow_insecure: bool) -> None:
        self.origin, self.prefix = _split_url(base_url, bool(allow_insecure))
        self.base_url = base_url
        self.credentials = _pick_credentials(api_key, iam_token, credentials)
        folder = folder_id if folder_id is not None else os.environ.get("YC_FOLDER_ID") or None
        if folder is not None and (not isinstance(folder, str) or _unsafe(folder)
                                   or not folder.strip() or not folder.isascii()):
            raise ValueError("folder_id must be a non-empty ASCII string without CR, LF or NUL")
        self.folder_id = folder
        self.timeout = _check_timeout(timeout)
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("max_retries must be an int >= 0, got %r" % (max_retries,))
        self.max_retries = max_retries
        if ssl_context is not None and not hasattr(ssl_context, "wrap_socket"):
            raise TypeError("ssl_context must be an ssl.SSLContext, not %s"
                            % type(ssl_context).__name__)
        self.ssl_context = ssl_context
        self.allow_insecure = bool(allow_insecure)

    def request_bytes(self, request: _Request, authorization: str) -> Tuple[bytes, str]:
        """The request's bytes and its fresh x-client-request-id."""
        request_id = _uuid4()
        headers = [("Authorization", authorization), ("User-Agent", _USER_AGENT),
                   ("Accept", "application/json"), ("x-client-request-id", request_id)]
        if self.folder_id:
            headers.append(("x-folder-id", self.folder_id))
        if request.body is not None:
            headers.append(("Content-Type", "application/json"))
        data = _encode_request(request.method, self.prefix + request.target,
                               self.origin.host_header, headers, request.body)
        return data, request_id

    def error(self, head: _Head, body: bytes, request_id: str) -> APIError:
        if 300 <= head.status < 400:
            from urllib.parse import urlsplit

            where = urlsplit(head.headers.get("location", "")).netloc or "an unknown place"
            return APIError("the server redirected to %s; redirects are not followed, so the "
                            "credential stays with %s" % (where, self.origin.host),
                            status=head.status, request_id=head.headers.get("x-request-id"),
                            client_request_id=request_id)
        return _error_from_body(head.status, body, head.headers, self.credentials._secrets(),
                                request_id)

    def decode(self, head: _Head, body: bytes, request_id: str) -> Any:
        """The JSON of a successful response; raises the APIError of any other."""
        if head.status != 200:
            raise self.error(head, body, request_id)
        return _decode_json_body(head.status, body, head.headers, request_id,
                                 self.credentials._secrets())

    def __repr__(self) -> str:
        return "base_url=%r, folder_id=%r, credentials=%r" % (
            self.base_url, self.folder_id, self.credentials)


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


def _token_timeout(credentials: Credentials) -> float:
    return float(getattr(credentials, "timeout", 10.0))


class _Timeout:
    """Seconds allowed for each socket operation; a stream shortens it once its end is due."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


_MAX_BODY_BYTES = 64 * 1024 * 1024


# ============================================================================
# Sync transport: blocking sockets feeding the codec, a keep-alive pool
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


class _SyncTransport:
    """Moves bytes: connects (TLS, CONNECT proxies), pools keep-alive sockets, feeds the parser."""

    max_idle = 16  # per origin

    def __init__(self, ssl_context: Optional["ssl.SSLContext"]) -> None:
        self._ssl = ssl_context
        self._idle: Dict[_Origin, List[socket.socket]] = {}
        self._lock = threading.Lock()
        self.connections_opened = 0

    def _connect(self, origin: _Origin, timeout: float) -> socket.socket:
        proxy = _proxy_for(origin)
        address = (proxy[0].host, proxy[0].port) if proxy else (origin.host, origin.port)
        try:
            sock = socket.create_connection(address, timeout)
        except socket.timeout:
            raise APITimeoutError("connecting to %s:%d timed out" % address,
                                  connected=False) from None
        except OSError as exc:
            raise APIConnectionError("cannot connect to %s:%d: %s" % (address[0], address[1], exc),
                                     connected=False) from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proxy is not None:
                sock.sendall(_connect_request(origin, proxy[1]))
                parser = _ResponseParser("CONNECT")
                event = parser.next_event()
                while event is None:
                    parser.feed(sock.recv(4096))
                    event = parser.next_event()
                if not isinstance(event, _Head) or event.status != 200:
                    raise _connect_refused(event)  # type: ignore[arg-type]
            if origin.scheme == "https":
                sock = _ssl_context(self._ssl).wrap_socket(sock, server_hostname=origin.host)
        except YCRunsError:
            sock.close()
            raise
        except (OSError, _ProtocolError) as exc:
            sock.close()
            raise _connect_error(origin, exc) from None
        self.connections_opened += 1
        return sock

    def _acquire(self, origin: _Origin, timeout: float) -> Tuple[socket.socket, bool]:
        with self._lock:
            idle = self._idle.get(origin)
            while idle:
                sock = idle.pop()
                if not _readable(sock):  # readable while idle: closed by the server, or garbage
                    return sock, True
                sock.close()
        return self._connect(origin, timeout), False

    def _release(self, origin: _Origin, sock: socket.socket) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.max_idle:
                idle.append(sock)
                return
        sock.close()

    def exchange(self, origin: _Origin, data: bytes, method: str,
                 timeout: _Timeout) -> Iterator[Union[_Head, bytes]]:
        """Send one request; yield its head, then body pieces. Closing early drops the socket."""
        sock, reused = self._acquire(origin, timeout.seconds)
        exchange = _Exchange(origin, method, reused)
        try:
            try:
                sock.settimeout(timeout.seconds)
                sock.sendall(data)
            except OSError as exc:
                raise exchange.failed(False, exc, timeout.seconds) from None
            while True:
                event = exchange.next_event()
                if event is None:
                    try:
                        if sock.gettimeout() != timeout.seconds:  # a syscall; skip when unchanged
                            sock.settimeout(timeout.seconds)
                        chunk = sock.recv(65536)
                    except OSError as exc:
                        raise exchange.failed(True, exc, timeout.seconds) from None
                    exchange.feed(chunk)
                elif event.__class__ is _End:
                    return
                else:
                    yield event  # type: ignore[misc]
        finally:
            if exchange.keep:
                self._release(origin, sock)
            else:
                sock.close()

    def fetch(self, method: str, url: str, headers: List[Tuple[str, str]], body: Optional[bytes],
              timeout: float) -> Tuple[int, bytes]:
        """A one-off request to another service (token endpoints)."""
        origin, data = _one_off_request(method, url, headers, body)
        status, response = 0, bytearray()
        for event in self.exchange(origin, data, method, _Timeout(timeout)):
            if isinstance(event, _Head):
                status = event.status
            else:
                response += event
        return status, bytes(response)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for socks in idle.values():
            for sock in socks:
                sock.close()


class _ClientBase:
    """The constructor both clients share; raises CredentialsError when no credential is
    given or found in the environment, ValueError for a bad base_url or folder_id."""

    def __init__(
        self,
        api_key: Union[str, Callable[[], Any], None] = None,
        iam_token: Union[str, Callable[[], Any], None] = None,
        folder_id: Optional[str] = None,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 60.0,
        max_retries: int = 4,
        ssl_context: Optional["ssl.SSLContext"] = None,
        credentials: Optional[Credentials] = None,
        allow_insecure: bool = False,
    ) -> None:
        self._config = _Config(api_key, iam_token, folder_id, base_url, timeout, max_retries,
                               ssl_context, credentials, allow_insecure)
        self._setup(ssl_context)

    def _setup(self, ssl_context: Optional["ssl.SSLContext"]) -> None:
        raise NotImplementedError

    @property
    def folder_id(self) -> Optional[str]:
        return self._config.folder_id

    def __repr__(self) -> str:
        return "%s(%r)" % (type(self).__name__, self._config)


class Client(_ClientBase):
    """A synchronous client of the Runs API; safe to share between threads."""

    def _setup(self, ssl_context: Optional["ssl.SSLContext"]) -> None:
        self._transport = _SyncTransport(ssl_context)
        self.runs = Runs(self)

    def close(self) -> None:
        """Close pooled connections; the client reconnects if used again."""
        self._transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _authorization(self, timeout: float) -> str:
        credentials = self._config.credentials
        header = credentials._header(time.monotonic())
        if header is None:
            with credentials._lock:
                header = credentials._header(time.monotonic())
                if header is None:
                    method, url, headers, body = credentials._token_request()
                    try:
                        status, answer = self._transport.fetch(
                            method, url, headers, body, min(timeout, _token_timeout(credentials)))
                    except APIConnectionError as exc:
                        raise CredentialsError("cannot get an IAM token from %s: %s"
                                               % (url.split("?")[0], exc)) from None
                    header = credentials._accept(status, answer, time.monotonic())
        if not isinstance(header, str):
            close = getattr(header, "close", None)
            if callable(close):
                close()
            raise CredentialsError("the token provider returned an awaitable; use AsyncClient "
                                   "for async providers")
        return header

    def _call(self, request: _Request, timeout: Optional[float]) -> Any:
        """The JSON answer to ``request``, retried as its kind allows."""
        seconds = self._config.timeout if timeout is None else _check_timeout(timeout)
        retry = _Retry(self._config.max_retries, request.idempotent)
        refreshed = False
        while True:
            try:
                data, request_id = self._config.request_bytes(request, self._authorization(seconds))
                head: Optional[_Head] = None
                body = bytearray()
                for event in self._transport.exchange(self._config.origin, data, request.method,
                                                      _Timeout(seconds)):
                    if isinstance(event, _Head):
                        head = event
                    else:
                        body += event
                        if len(body) > _MAX_BODY_BYTES:
                            raise MalformedResponseError("the response is over %d bytes"
                                                         % _MAX_BODY_BYTES)
                assert head is not None
                return self._config.decode(head, bytes(body), request_id)
            except AuthenticationError:
                if refreshed or not self._config.credentials.refreshes:
                    raise
                refreshed = True
                self._config.credentials._invalidate()
            except (APIError, APIConnectionError) as exc:
                delay = retry.delay(exc)
                if delay is None:
                    raise
                time.sleep(delay)

    def _stream(self, request: _Request, timeout: _Timeout,
                answered: Callable[[str, Optional[str]], None]) -> Iterator[bytes]:
        """The body of a streaming response, piece by piece; raises the APIError of an error.
        ``answered`` gets the request's ids once the head arrives."""
        data, request_id = self._config.request_bytes(request, self._authorization(timeout.seconds))
        events = self._transport.exchange(self._config.origin, data, request.method, timeout)
        try:
            head = next(events)
            assert isinstance(head, _Head)
            answered(request_id, head.headers.get("x-request-id"))
            if head.status != 200:
                body = b"".join(e for e in events if isinstance(e, bytes))
                raise self._config.error(head, body, request_id)
            for event in events:
                yield event  # type: ignore[misc]
        finally:
            events.close()  # type: ignore[attr-defined]




# ============================================================================
# Async transport: asyncio streams feeding the same codec, a keep-alive pool
# ============================================================================


class _AsyncTransport:
    """The async twin of _SyncTransport: no threads, asyncio timeouts, the same parser."""

    max_idle = 64  # per origin

    def __init__(self, ssl_context: Optional["ssl.SSLContext"]) -> None:
        self._ssl = ssl_context
        # keyed by loop too: a client reused under a new asyncio.run() must not touch streams
        # of a loop that is closed
        self._idle: Dict[Tuple[int, _Origin], List[Tuple[
            "asyncio.StreamReader", "asyncio.StreamWriter", "asyncio.AbstractEventLoop"]]] = {}
        self.connections_opened = 0

    async def _connect(self, origin: _Origin, timeout: float) -> Tuple[
            "asyncio.StreamReader", "asyncio.StreamWriter"]:
        import asyncio

        proxy = _proxy_for(origin)
        context = _ssl_context(self._ssl) if origin.scheme == "https" else None
        hostname = origin.host if context is not None else None
        try:
            if proxy is None:
                streams = await asyncio.wait_for(asyncio.open_connection(
                    origin.host, origin.port, ssl=context, server_hostname=hostname), timeout)
            else:
                sock = await asyncio.wait_for(self._tunnel(origin, proxy), timeout)
                streams = await asyncio.wait_for(asyncio.open_connection(
                    sock=sock, ssl=context, server_hostname=hostname), timeout)
        except asyncio.TimeoutError:
            raise APITimeoutError("connecting to %s timed out" % origin.host,
                                  connected=False) from None
        except (OSError, _ProtocolError) as exc:
            raise _connect_error(origin, exc) from None
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

    async def _acquire(self, origin: _Origin, timeout: float) -> Tuple[
            "asyncio.StreamReader", "asyncio.StreamWriter", bool]:
        import asyncio

        self._forget_closed_loops()
        idle = self._idle.get((id(asyncio.get_running_loop()), origin))
        while idle:
            reader, writer, _ = idle.pop()
            if not (reader.at_eof() or writer.is_closing() or len(getattr(reader, "_buffer", b""))):
                return reader, writer, True
            writer.close()
        reader, writer = await self._connect(origin, timeout)
        return reader, writer, False

    async def exchange(self, origin: _Origin, data: bytes, method: str,
                       timeout: _Timeout) -> AsyncIterator[Union[_Head, bytes]]:
        """Send one request; yield its head, then body pieces. Closing early drops the connection."""
        import asyncio

        reader, writer, reused = await self._acquire(origin, timeout.seconds)
        exchange = _Exchange(origin, method, reused)
        try:
            try:
                writer.write(data)
                await asyncio.wait_for(writer.drain(), timeout.seconds)
            except (OSError, asyncio.TimeoutError) as exc:
                raise exchange.failed(False, exc, timeout.seconds) from None
            while True:
                event = exchange.next_event()
                if event is None:
                    try:
                        chunk = await asyncio.wait_for(reader.read(65536), timeout.seconds)
                    except (OSError, asyncio.TimeoutError) as exc:
                        raise exchange.failed(True, exc, timeout.seconds) from None
                    exchange.feed(chunk)
                elif event.__class__ is _End:
                    return
                else:
                    yield event  # type: ignore[misc]
        finally:
            loop = asyncio.get_running_loop()
            idle = self._idle.setdefault((id(loop), origin), [])
            if exchange.keep and len(idle) < self.max_idle:
                idle.append((reader, writer, loop))
            else:
                writer.close()

    async def fetch(self, method: str, url: str, headers: List[Tuple[str, str]],
                    body: Optional[bytes], timeout: float) -> Tuple[int, bytes]:
        """A one-off request to another service (token endpoints)."""
        origin, data = _one_off_request(method, url, headers, body)
        status, response = 0, bytearray()
        async for event in self.exchange(origin, data, method, _Timeout(timeout)):
            if isinstance(event, _Head):
                status = event.status
            else:
                response += event
        return status, bytes(response)

    def _forget_closed_loops(self) -> None:
        for key in [k for k, conns in self._idle.items() if not conns or conns[0][2].is_closed()]:
            del self._idle[key]  # their loop is gone, and its sockets with it

    async def close(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for _, writer, loop in connections:
                if not loop.is_closed():
                    writer.close()


class AsyncClient(_ClientBase):
    """The asyncio client of the Runs API: the same surface as Client, with ``await``;
    an ``api_key``/``iam_token`` callable may be a coroutine function."""

    def _setup(self, ssl_context: Optional["ssl.SSLContext"]) -> None:
        self._transport = _AsyncTransport(ssl_context)
        self.runs = AsyncRuns(self)
        self._locks: Dict[int, "asyncio.Lock"] = {}

    def _token_lock(self) -> "asyncio.Lock":
        """One token fetch at a time per event loop (the sync client holds a thread lock)."""
        import asyncio

        loop = id(asyncio.get_running_loop())
        lock = self._locks.get(loop)
        if lock is None:
            self._locks.clear()  # locks of loops no longer running
            lock = self._locks[loop] = asyncio.Lock()
        return lock

    async def close(self) -> None:
        """Close pooled connections; the client reconnects if used again."""
        await self._transport.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _authorization(self, timeout: float) -> str:
        credentials = self._config.credentials
        header = credentials._header(time.monotonic())
        if header is None:
            async with self._token_lock():
                header = credentials._header(time.monotonic())
                if header is None:
                    method, url, headers, body = credentials._token_request()
                    try:
                        status, answer = await self._transport.fetch(
                            method, url, headers, body, min(timeout, _token_timeout(credentials)))
                    except APIConnectionError as exc:
                        raise CredentialsError("cannot get an IAM token from %s: %s"
                                               % (url.split("?")[0], exc)) from None
                    header = credentials._accept(status, answer, time.monotonic())
        if not isinstance(header, str):
            header = credentials._finish(await header)
        return header

    async def _call(self, request: _Request, timeout: Optional[float]) -> Any:
        """The JSON answer to ``request``, retried as its kind allows."""
        import asyncio

        seconds = self._config.timeout if timeout is None else _check_timeout(timeout)
        retry = _Retry(self._config.max_retries, request.idempotent)
        refreshed = False
        while True:
            try:
                data, request_id = self._config.request_bytes(
                    request, await self._authorization(seconds))
                head: Optional[_Head] = None
                body = bytearray()
                async for event in self._transport.exchange(self._config.origin, data,
                                                            request.method, _Timeout(seconds)):
                    if isinstance(event, _Head):
                        head = event
                    else:
                        body += event
                        if len(body) > _MAX_BODY_BYTES:
                            raise MalformedResponseError("the response is over %d bytes"
                                                         % _MAX_BODY_BYTES)
                assert head is not None
                return self._config.decode(head, bytes(body), request_id)
            except AuthenticationError:
                if refreshed or not self._config.credentials.refreshes:
                    raise
                refreshed = True
                self._config.credentials._invalidate()
            except (APIError, APIConnectionError) as exc:
                delay = retry.delay(exc)
                if delay is None:
                    raise
                await asyncio.sleep(delay)

    async def _stream(self, request: _Request, timeout: _Timeout,
                      answered: Callable[[str, Optional[str]], None]) -> AsyncIterator[bytes]:
        """The body of a streaming response, piece by piece; raises the APIError of an error.
        ``answered`` gets the request's ids once the head arrives."""
        data, request_id = self._config.request_bytes(
            request, await self._authorization(timeout.seconds))
        events = self._transport.exchange(self._config.origin, data, request.method, timeout)
        try:
            head = await events.__anext__()
            assert isinstance(head, _Head)
            answered(request_id, head.headers.get("x-request-id"))
            if head.status != 200:
                body = b"".join([e async for e in events if isinstance(e, bytes)])
                raise self._config.error(head, body, request_id)
            async for event in events:
                yield event  # type: ignore[misc]
        finally:
            await events.aclose()  # type: ignore[attr-defined]


# ============================================================================
# Runs and Run
# ============================================================================

_LINGER = 0.25  # seconds to wait for a stream's end after its final event


class Runs:
    """``client.runs``: create runs, fetch them, list them."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def create(
        self, assistant: Any, thread: Any, *, stream: bool = False,
        labels: Optional[Mapping[str, str]] = None,
        additional_messages: Optional[Iterable[Any]] = None,
        custom_temperature: Optional[float] = None, custom_max_tokens: Optional[int] = None,
        custom_max_prompt_tokens: Optional[int] = None,
        custom_prompt_truncation_strategy: Union[str, Mapping[str, int], None] = None,
        custom_response_format: Union[str, Mapping[str, Any], None] = None,
        tools: Optional[Iterable[Any]] = None, extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
    ) -> "Run":
        """Start a run of ``assistant`` on ``thread`` (ids or objects with an ``id``)."""
        body = _encode_create(
            assistant, thread, stream=stream, labels=labels,
            additional_messages=additional_messages, custom_temperature=custom_temperature,
            custom_max_tokens=custom_max_tokens, custom_max_prompt_tokens=custom_max_prompt_tokens,
            custom_prompt_truncation_strategy=custom_prompt_truncation_strategy,
            custom_response_format=custom_response_format, tools=tools, extra_body=extra_body)
        return _decode_run(self._client._call(_create_request(body), timeout), Run, self)

    def get(self, run_id: Any, *, timeout: Optional[float] = None) -> "Run":
        """The run as it is now; NotFoundError when there is no such run."""
        return _decode_run(self._client._call(_get_request(run_id), timeout), Run, self)

    def get_last_by_thread(self, thread: Any, *, timeout: Optional[float] = None) -> "Run":
        """The thread's most recent run."""
        return _decode_run(self._client._call(_last_by_thread_request(thread), timeout), Run, self)

    def list(self, *, page_size: Optional[int] = None, timeout: Optional[float] = None) -> Iterator["Run"]:
        """Every run in the folder, fetching pages as the iteration needs them."""
        return self._list(_Pager(self._client.folder_id, page_size), timeout)

    def _list(self, pager: _Pager, timeout: Optional[float]) -> Iterator["Run"]:
        request = pager.request()
        while request is not None:
            for obj in pager.accept(self._client._call(request, timeout)):
                yield _decode_run(obj, Run, self, "ListRunsResponse.runs[]")
            request = pager.request()

    def create_and_wait(self, assistant: Any, thread: Any, *, poll_timeout: Optional[float] = None,
                        poll_interval: Optional[float] = None, **create_args: Any) -> RunResult:
        """``create`` (same arguments) then ``wait``: the finished run's result."""
        run = self.create(assistant, thread, **create_args)
        return run.wait(timeout=create_args.get("timeout"), poll_timeout=poll_timeout,
                        poll_interval=poll_interval)

    def create_and_stream(self, assistant: Any, thread: Any, *, resume: bool = True,
                          **create_args: Any) -> Iterator[RunStreamEvent]:
        """``create`` with ``stream=True`` (same arguments), then its events as they come."""
        run = self.create(assistant, thread, **dict(create_args, stream=True))
        return run.listen(timeout=create_args.get("timeout"), resume=resume)


class Run(_RunFields):
    """A run as of one fetch (``status``, ``result``), with the calls that act on it."""

    def listen(self, *, events_start_idx: int = 0, timeout: Optional[float] = None,
               resume: bool = True) -> Iterator[RunStreamEvent]:
        """Events as each line completes; reconnects after drops unless ``resume=False``.

        ``timeout`` bounds each wait for data. Raises StreamError when the stream is
        malformed or could not be resumed, and the APIError of an error line.
        """
        state = _ListenState(self.id, events_start_idx, self._runs._client._config.max_retries,
                             resume)
        state.secrets = self._runs._client._config.credentials._secrets
        if self._runs._client._config.credentials.refreshes:
            state.refresh = self._runs._client._config.credentials._invalidate
        seconds = self._runs._client._config.timeout if timeout is None else timeout
        return self._listen(state, _check_timeout(seconds))

    def _listen(self, state: _ListenState, seconds: float) -> Iterator[RunStreamEvent]:
        while not state.done:
            timer = _Timeout(seconds)
            body = self._runs._client._stream(state.request(), timer, state.answered)
            try:
                for data in body:
                    for event in state.feed(data):
                        yield event
                    if state.done:
                        timer.seconds = min(seconds, _LINGER)
                if not state.done:
                    for event in state.end():
                        yield event
            except (APIError, APIConnectionError) as exc:
                if state.done:
                    return
                time.sleep(state.delay(exc))
            finally:
                body.close()

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
        """This run fetched again."""
        return self._runs.get(self.id, timeout=timeout)  # type: ignore[no-any-return]

    def get_status(self, *, timeout: Optional[float] = None) -> RunStatus:
        return self.refresh(timeout=timeout).status

    def get_result(self, *, timeout: Optional[float] = None) -> RunResult:
        return self.refresh(timeout=timeout).result

    def wait(self, *, timeout: Optional[float] = None, poll_timeout: Optional[float] = None,
             poll_interval: Optional[float] = None) -> RunResult:
        """Poll until the run is finished (TOOL_CALLS included); WaitTimeoutError after
        ``poll_timeout`` (300 s)."""
        waiter = _Waiter(self.id, poll_timeout, poll_interval)
        while True:
            result = waiter.result(self.refresh(timeout=timeout))
            if result is not None:
                return result
            time.sleep(waiter.sleep_time())

    def submit_tool_results(self, tool_results: Any, *, timeout: Optional[float] = None) -> None:
        """Send results for a TOOL_CALLS run: one {"name", "content"} dict or an iterable."""
        self._runs._client._call(_submit_request(self.id, tool_results), timeout)

    def submit_tool_results_and_wait(self, tool_results: Any, *, timeout: Optional[float] = None,
                                     poll_timeout: Optional[float] = None,
                                     poll_interval: Optional[float] = None) -> RunResult:
        self.submit_tool_results(tool_results, timeout=timeout)
        return self.wait(timeout=timeout, poll_timeout=poll_timeout, poll_interval=poll_interval)

    def run_tools(self, functions: Any, *, max_rounds: int = 8, timeout: Optional[float] = None,
                  poll_timeout: Optional[float] = None,
                  poll_interval: Optional[float] = None) -> RunResult:
        """Answer tool calls with ``functions`` (name -> callable) until the run finishes.

        A function's exception, or a call to an unknown name, is sent to the model as
        {"error": ...}. ToolLoopError after ``max_rounds`` rounds.
        """
        loop = _ToolLoop(functions, max_rounds)
        result = self.wait(timeout=timeout, poll_timeout=poll_timeout, poll_interval=poll_interval)
        while result.status == RunStatus.TOOL_CALLS:
            outputs = []
            for call in loop.calls(result):
                try:
                    outputs.append(loop.output(call, _not_awaitable(loop.start(call), call.name)))
                except _AsyncInSyncError:
                    raise
                except Exception as exc:  # the model gets the error and can recover
                    outputs.append(loop.failure(call, exc))
            result = self.submit_tool_results_and_wait(
                outputs, timeout=timeout, poll_timeout=poll_timeout, poll_interval=poll_interval)
        return result

    def cancel(self, *, timeout: Optional[float] = None) -> None:
        """Always raises UnsupportedOperationError: the Runs API has no cancel."""
        raise UnsupportedOperationError("the Runs API has no cancel operation; a run ends by "
                                        "itself (the official SDK's cancel() raises too)")


# ============================================================================
# AsyncRuns and AsyncRun
# ============================================================================


class AsyncRuns:
    """``client.runs`` of an AsyncClient: the same calls as Runs, awaited."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(
        self, assistant: Any, thread: Any, *, stream: bool = False,
        labels: Optional[Mapping[str, str]] = None,
        additional_messages: Optional[Iterable[Any]] = None,
        custom_temperature: Optional[float] = None, custom_max_tokens: Optional[int] = None,
        custom_max_prompt_tokens: Optional[int] = None,
        custom_prompt_truncation_strategy: Union[str, Mapping[str, int], None] = None,
        custom_response_format: Union[str, Mapping[str, Any], None] = None,
        tools: Optional[Iterable[Any]] = None, extra_body: Optional[Mapping[str, Any]] = None,
        timeout: Optional[float] = None,
    ) -> "AsyncRun":
        """Start a run of ``assistant`` on ``thread`` (ids or objects with an ``id``)."""
        body = _encode_create(
            assistant, thread, stream=stream, labels=labels,
            additional_messages=additional_messages, custom_temperature=custom_temperature,
            custom_max_tokens=custom_max_tokens, custom_max_prompt_tokens=custom_max_prompt_tokens,
            custom_prompt_truncation_strategy=custom_prompt_truncation_strategy,
            custom_response_format=custom_response_format, tools=tools, extra_body=extra_body)
        return _decode_run(await self._client._call(_create_request(body), timeout), AsyncRun, self)

    async def get(self, run_id: Any, *, timeout: Optional[float] = None) -> "AsyncRun":
        """The run as it is now; NotFoundError when there is no such run."""
        return _decode_run(await self._client._call(_get_request(run_id), timeout), AsyncRun, self)

    async def get_last_by_thread(self, thread: Any, *, timeout: Optional[float] = None) -> "AsyncRun":
        """The thread's most recent run."""
        return _decode_run(await self._client._call(_last_by_thread_request(thread), timeout),
                           AsyncRun, self)

    def list(self, *, page_size: Optional[int] = None,
             timeout: Optional[float] = None) -> AsyncIterator["AsyncRun"]:
        """Every run in the folder, fetching pages as the iteration needs them."""
        return self._list(_Pager(self._client.folder_id, page_size), timeout)

    async def _list(self, pager: _Pager, timeout: Optional[float]) -> AsyncIterator["AsyncRun"]:
        request = pager.request()
        while request is not None:
            for obj in pager.accept(await self._client._call(request, timeout)):
                yield _decode_run(obj, AsyncRun, self, "ListRunsResponse.runs[]")
            request = pager.request()

    async def create_and_wait(self, assistant: Any, thread: Any, *,
                              poll_timeout: Optional[float] = None,
                              poll_interval: Optional[float] = None,
                              **create_args: Any) -> RunResult:
        """``create`` (same arguments) then ``wait``: the finished run's result."""
        run = await self.create(assistant, thread, **create_args)
        return await run.wait(timeout=create_args.get("timeout"), poll_timeout=poll_timeout,
                              poll_interval=poll_interval)

    async def create_and_stream(self, assistant: Any, thread: Any, *, resume: bool = True,
                                **create_args: Any) -> AsyncIterator[RunStreamEvent]:
        """``create`` with ``stream=True`` (same arguments), then its events as they come."""
        run = await self.create(assistant, thread, **dict(create_args, stream=True))
        return run.listen(timeout=create_args.get("timeout"), resume=resume)


class AsyncRun(_RunFields):
    """A run as of one fetch, with the calls that act on it, awaited."""

    def listen(self, *, events_start_idx: int = 0, timeout: Optional[float] = None,
               resume: bool = True) -> AsyncIterator[RunStreamEvent]:
        """Events as each line completes; reconnects after drops unless ``resume=False``.

        Cancelling the task or leaving ``async for`` closes the connection at once.
        """
        state = _ListenState(self.id, events_start_idx, self._runs._client._config.max_retries,
                             resume)
        state.secrets = self._runs._client._config.credentials._secrets
        if self._runs._client._config.credentials.refreshes:
            state.refresh = self._runs._client._config.credentials._invalidate
        seconds = self._runs._client._config.timeout if timeout is None else timeout
        return self._listen(state, _check_timeout(seconds))

    async def _listen(self, state: _ListenState, seconds: float) -> AsyncIterator[RunStreamEvent]:
        import asyncio

        while not state.done:
            timer = _Timeout(seconds)
            body = self._runs._client._stream(state.request(), timer, state.answered)
            try:
                async for data in body:
                    for event in state.feed(data):
                        yield event
                    if state.done:
                        timer.seconds = min(seconds, _LINGER)
                if not state.done:
                    for event in state.end():
                        yield event
            except (APIError, APIConnectionError) as exc:
                if state.done:
                    return
                await asyncio.sleep(state.delay(exc))
            finally:
                await body.aclose()

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
        """This run fetched again."""
        return await self._runs.get(self.id, timeout=timeout)  # type: ignore[no-any-return]

    async def get_status(self, *, timeout: Optional[float] = None) -> RunStatus:
        return (await self.refresh(timeout=timeout)).status

    async def get_result(self, *, timeout: Optional[float] = None) -> RunResult:
        return (await self.refresh(timeout=timeout)).result

    async def wait(self, *, timeout: Optional[float] = None, poll_timeout: Optional[float] = None,
                   poll_interval: Optional[float] = None) -> RunResult:
        """Poll until the run is finished (TOOL_CALLS included); WaitTimeoutError after
        ``poll_timeout`` (300 s)."""
        import asyncio

        waiter = _Waiter(self.id, poll_timeout, poll_interval)
        while True:
            result = waiter.result(await self.refresh(timeout=timeout))
            if result is not None:
                return result
            await asyncio.sleep(waiter.sleep_time())

    async def submit_tool_results(self, tool_results: Any, *, timeout: Optional[float] = None) -> None:
        """Send results for a TOOL_CALLS run: one {"name", "content"} dict or an iterable."""
        await self._runs._client._call(_submit_request(self.id, tool_results), timeout)

    async def submit_tool_results_and_wait(self, tool_results: Any, *, timeout: Optional[float] = None,
                                           poll_timeout: Optional[float] = None,
                                           poll_interval: Optional[float] = None) -> RunResult:
        await self.submit_tool_results(tool_results, timeout=timeout)
        return await self.wait(timeout=timeout, poll_timeout=poll_timeout,
                               poll_interval=poll_interval)

    async def run_tools(self, functions: Any, *, max_rounds: int = 8, timeout: Optional[float] = None,
                        poll_timeout: Optional[float] = None,
                        poll_interval: Optional[float] = None) -> RunResult:
        """Answer tool calls with ``functions`` (sync or async callables) until the run finishes."""
        loop = _ToolLoop(functions, max_rounds)
        result = await self.wait(timeout=timeout, poll_timeout=poll_timeout,
                                 poll_interval=poll_interval)
        while result.status == RunStatus.TOOL_CALLS:
            outputs = []
            for call in loop.calls(result):
                try:
                    value = loop.start(call)
                    outputs.append(loop.output(call, await value if _is_awaitable(value) else value))
                except Exception as exc:  # the model gets the error and can recover
                    outputs.append(loop.failure(call, exc))
            result = await self.submit_tool_results_and_wait(
                outputs, timeout=timeout, poll_timeout=poll_timeout, poll_interval=poll_interval)
        return result

    async def cancel(self, *, timeout: Optional[float] = None) -> None:
        """Always raises UnsupportedOperationError: the Runs API has no cancel."""
        raise UnsupportedOperationError("the Runs API has no cancel operation; a run ends by "
                                        "itself (the official SDK's cancel() raises too)")


# ============================================================================
# Emulator: request checks as a proto3 JSON gateway makes them (sans-IO)
# ============================================================================


class _Refusal(Exception):
    """An answer with an error body instead of a result: HTTP status, gRPC code, message."""

    def __init__(self, status: int, grpc: int, message: str) -> None:
        super().__init__(message)
        self.status, self.grpc, self.message = status, grpc, message


def _invalid(message: str) -> _Refusal:
    return _Refusal(400, 3, message)


def _not_found(message: str) -> _Refusal:
    return _Refusal(404, 5, message)


class _Scalar:
    """string | bool | int64 | double | struct (any JSON object)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind


class _Enum:
    def __init__(self, name: str, names: Sequence[str]) -> None:
        self.name, self.names = name, list(names)


class _Repeated:
    def __init__(self, item: _Type) -> None:
        self.item = item


class _MapOf:
    def __init__(self, value: _Type) -> None:
        self.value = value


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
    _Type = Union[_Scalar, _Enum, _Repeated, _MapOf, _Message]

_STRING, _BOOL, _INT64 = _Scalar("string"), _Scalar("bool"), _Scalar("int64")
_DOUBLE, _STRUCT = _Scalar("double"), _Scalar("struct")
_INT64_TEXT = re.compile(r"-?[0-9]+\Z")
_DOUBLE_TEXT = re.compile(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\Z")
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
                                                                  _shown(value)))
        checked: Dict[str, Any] = {}
        for key, item in value.items():
            name = key if key in kind.fields else kind.aliases.get(key)
            if name is None or item is None:  # unknown fields are ignored; null is the default
                continue
            if name in checked:
                raise _invalid("%s: given twice (as %s and %s)" % (_field_path(path, name), name,
                                                                   key))
            checked[name] = _check(kind.fields[name], item, _field_path(path, name))
        for group in kind.oneofs:
            given = [name for name in group if name in checked]
            if len(given) > 1:
                raise _invalid("%s: only one of %s may be set" % (
                    path or kind.name, " and ".join(_field_path(path, g) for g in given)))
        for name in kind.required:
            if checked.get(name) in (None, "", [], {}):
                raise _invalid("%s is required" % _field_path(path, name))
        return checked
    if isinstance(kind, _Repeated):
        if not isinstance(value, list):
            raise _invalid("%s: expected a list, got %s" % (path, _shown(value)))
        items = []
        for i, item in enumerate(value):
            if item is None:
                raise _invalid("%s[%d]: null is not a valid list element" % (path, i))
            items.append(_check(kind.item, item, "%s[%d]" % (path, i)))
        return items
    if isinstance(kind, _MapOf):
        if not isinstance(value, dict):
            raise _invalid("%s: expected an object of values, got %s" % (path, _shown(value)))
        return {key: _check(kind.value, item, "%s[%s]" % (path, _shown(key)))
                for key, item in value.items()}
    if isinstance(kind, _Enum):
        if isinstance(value, str) and value in kind.names:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and -2**31 <= value < 2**31:
            return kind.names[value] if 0 <= value < len(kind.names) else value
        raise _invalid("%s: %s is not a %s (one of %s)" % (path, _shown(value), kind.name,
                                                           ", ".join(kind.names)))
    return _check_scalar(kind.kind, value, path)


def _check_scalar(kind: str, value: Any, path: str) -> Any:
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "struct" and isinstance(value, dict):
        return value
    if kind == "int64" and not isinstance(value, bool):
        number: Optional[int] = None
        if isinstance(value, int):
            number = value
        elif (isinstance(value, float) and value.is_integer()) or (
                isinstance(value, str) and _INT64_TEXT.match(value)):
            number = int(value)
        if number is not None and -2**63 <= number < 2**63:
            return str(number)
    if kind == "double" and not isinstance(value, bool):
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            if value in _DOUBLE_WORDS:
                return _DOUBLE_WORDS[value]
            if _DOUBLE_TEXT.match(value):
                return float(value)
    what = {"string": "a string", "bool": "a bool (true or false)", "struct": "a JSON object",
            "int64": "an int64 (a number or a decimal string)", "double": "a number"}[kind]
    raise _invalid("%s: expected %s, got %s" % (path, what, _shown(value)))


def _non_negative(query: Dict[str, Any], name: str, default: int) -> int:
    value = int(query.get(name, default))
    if value < 0:
        raise _invalid("%s: must not be negative, got %d" % (name, value))
    return value


# ============================================================================
# Emulator: recorded requests, faults, and the threads and runs it keeps
# ============================================================================


@dataclass(frozen=True)
class RecordedRequest:
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


@dataclass(frozen=True)
class Fault:
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
    """The Assistant API (runs, threads, messages) on a local port, for tests and demos:
    no credentials, no network.

    ``with Emulator() as emu: Client(base_url=emu.url, api_key="test")``. Strict like the
    service: a run needs a thread that exists (``emu.threads.create()`` or the Threads API)
    and an assistant it knows (``script``); ``implicit=True`` makes any id work. Its
    assistant echoes the last user message in a few partial messages; with function tools
    it first asks for the first tool and then answers with the submitted result. ``script``
    changes that per assistant; ``inject`` makes it misbehave; ``requests`` records what
    it got (the newest ``keep_requests``). ``latency`` is a delay before each answer and
    between events (seconds, or "realistic": about as slow as the service); ``chunking``
    "random" splits streamed lines at seeded random bytes ("lines": a chunk per line).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, event_delay: float = 0.005,
                 seed: Optional[int] = None, log: Any = None,
                 api_key: Optional[str] = None, implicit: bool = False,
                 latency: Union[None, float, str] = None, chunking: str = "lines",
                 keep_requests: Optional[int] = 10_000) -> None:
        import random

        if latency is not None and latency != "realistic" and (
                isinstance(latency, (str, bool)) or not latency >= 0):
            raise ValueError("latency must be seconds >= 0 or 'realistic', got %r" % (latency,))
        if chunking not in ("lines", "random"):
            raise ValueError("chunking must be 'lines' or 'random', got %r" % (chunking,))
        if keep_requests is not None and keep_requests < 1:
            raise ValueError("keep_requests must be at least 1 or None")
        self.host = host
        self.port = port
        self.event_delay = event_delay
        self.seed = seed
        self.log = log
        self.api_key = api_key
        self.implicit = implicit
        self.latency = latency
        self.chunking = chunking
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
        self.dialects: List[_Dialect] = [_ASSISTANT_API]  # the wires it speaks

    # --- control ------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running; use start() or a with block")
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self._server.server_address[1])

    def start(self) -> "Emulator":
        """Bind and serve in a background thread; returns self."""
        self._server = _emulator_server(self)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},  # stop() in 50 ms, not 500
                                        name="yc_runs.Emulator", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Bind and serve in this thread until KeyboardInterrupt or stop()."""
        self._server = _emulator_server(self)
        try:
            self._server.serve_forever()
        finally:
            self._server.server_close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

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
        listen, submit, createThread, …; None for any): the next ``times`` of them, or each
        with ``probability`` (seeded by ``seed``) up to ``times`` (None: no limit)."""
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
        now = time.monotonic()
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
        state, usage = run.state(time.monotonic())
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
        state, _ = run.state(time.monotonic())
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
    """``value`` as a google.protobuf.Struct carries it: every number a float."""
    if isinstance(value, dict):
        return {k: _as_struct(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_struct(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


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
                 streams: bool = False) -> None:
        self.method, self.endpoint, self.query, self.body = method, endpoint, query, body
        self.pattern = re.compile(pattern + r"\Z")
        self.handler, self.streams = handler, streams


class _Dialect:
    """A wire the emulator speaks: the path prefix it owns, its routes, and how it words
    a refusal. A second wire is a second _Dialect in ``Emulator.dialects``."""

    def __init__(self, name: str, prefix: str, routes: Sequence[_Route],
                 error_body: Callable[[_Refusal], Dict[str, Any]]) -> None:
        self.name, self.prefix, self.routes, self.error_body = name, prefix, routes, error_body


def _resolve(routes: Sequence[_Route], method: str, raw_path: str
             ) -> Tuple[_Route, Tuple[str, ...]]:
    """The route for a request and its path ids (decoded); a JSON 404 when no route has
    the path, 405 when none has the method."""
    from urllib.parse import unquote

    allowed = []
    for route in routes:
        match = route.pattern.match(raw_path)
        if match is None:
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


_ASSISTANT_API = _Dialect("assistant", "/assistants/", _ASSISTANT_API_ROUTES,
                          _assistant_error_body)


# ============================================================================
# Emulator: the HTTP face (http.server, imported only here)
# ============================================================================

_MAX_BODY_BYTES = 32 * 1024 * 1024
_CONTENT_LENGTH = re.compile(r"[0-9]{1,12}\Z")


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
            self._started = time.monotonic()
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
            if not _CONTENT_LENGTH.match(text) or int(text) > _MAX_BODY_BYTES:
                self.close_connection = True
                raise _invalid("Content-Length: %s is not a length up to %d bytes"
                               % (_shown(text), _MAX_BODY_BYTES))
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
                route, ids = _resolve(dialect.routes, self.command, raw_path)
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
                             self.headers.get("x-folder-id", ""))
                answer = route.handler(emu, call)
            except _Refusal as refused:
                self._pause()
                self._send(refused.status, dialect.error_body(refused))
                return
            except Exception as error:  # a bug of ours: still an answer, never a dropped line
                sys.stderr.write("yc_runs.Emulator: %s %s: %r\n" % (self.command, raw_path, error))
                self._send(500, dialect.error_body(_Refusal(500, 13, "internal error: %s" % error)))
                return
            self._pause()
            if answer.stream is None:
                self._send(200, answer.obj)
            else:
                self._stream(answer.stream, fault)

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
                elapsed = (time.monotonic() - self._started) * 1000
                print("%s %s %d %.1fms" % (self.command, self.path.split("?")[0], self._status,
                                           elapsed), file=emu.log, flush=True)

        def _head(self, status: int, extra: Dict[str, str]) -> None:
            self._status = status
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
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
                    fault: Optional[Fault]) -> None:
            self._head(200, {"Transfer-Encoding": "chunked"})
            self.end_headers()
            chunker = emu._chunker()
            sent = 0
            for count, (due, event) in enumerate(events):
                if fault is not None and count == fault.after_events:
                    if fault.kind == "stall":
                        time.sleep(fault.seconds)
                    elif fault.kind == "malformed":
                        self._chunk(b'{"result": {"eventType": "PARTIAL_MESS\n', None)
                        fault = None
                time.sleep(max(0.0, due - time.monotonic()))
                line = json.dumps({"result": event}, ensure_ascii=False).encode("utf-8") + b"\n"
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

    return Server((emu.host, emu.port), Handler)


# ============================================================================
# Command line: python -m yc_runs
# ============================================================================

_EXIT_OK, _EXIT_FAILED, _EXIT_USAGE, _EXIT_API, _EXIT_TIMEOUT, _EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130


def _plain(value: Any) -> Any:
    """Data classes, enums and datetimes as JSON-ready values."""
    from datetime import datetime

    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                if not f.name.startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
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
    """Prints events as a person reads them, or one JSON object per line."""

    def __init__(self, out: Any, as_json: bool) -> None:
        self.out = out
        self.as_json = as_json
        self.mid_line = False

    def line(self, text: str) -> None:
        if self.mid_line:
            self.out.write("\n")
            self.mid_line = False
        self.out.write(text + "\n")
        self.out.flush()

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
            self.out.write(event.delta)
            self.out.flush()
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


def _client_from(args: Any) -> Client:
    return Client(api_key=getattr(args, "api_key", None), iam_token=getattr(args, "iam_token", None),
                  folder_id=getattr(args, "folder_id", None),
                  base_url=getattr(args, "base_url", None) or os.environ.get(
                      "YC_RUNS_BASE_URL", DEFAULT_BASE_URL),
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


def _cmd_create(args: Any, printer: _Printer) -> int:
    tools = _json_file(args.tools, "--tools") if args.tools else None
    labels = {}
    for pair in args.label or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError("--label takes KEY=VALUE, got %r" % pair)
        labels[key] = value
    with _client_from(args) as client:
        run = client.runs.create(args.assistant, args.thread, stream=args.stream,
                                 additional_messages=args.message or None,
                                 custom_temperature=args.temperature,
                                 custom_max_tokens=args.max_tokens, labels=labels or None,
                                 tools=tools)
        if args.stream:
            if not printer.as_json:
                printer.line("run %s" % run.id)
            last = None
            for event in run.listen():
                printer.event(event)
                last = event
            return _exit_for(last)
        if args.wait:
            result = run.wait()
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
        last = None
        for event in Run(args.run_id, _runs=client.runs).listen(events_start_idx=args.start):
            printer.event(event)
            last = event
        return _exit_for(last)


def _cmd_wait(args: Any, printer: _Printer) -> int:
    live = sys.stderr.isatty() and not printer.as_json
    with _client_from(args) as client:
        waiter = _Waiter(args.run_id, args.poll_timeout, args.poll_interval)
        started = time.monotonic()
        while True:
            run = client.runs.get(args.run_id)
            result = waiter.result(run)
            if live:
                sys.stderr.write("\r%s  %.1f s " % (run.status.name, time.monotonic() - started))
                sys.stderr.flush()
            if result is not None:
                if live:
                    sys.stderr.write("\n")
                printer.run(run)
                return _exit_for(result)
            time.sleep(waiter.sleep_time())


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
        Run(args.run_id, _runs=client.runs).submit_tool_results(results)
    if printer.as_json:
        printer.json({"submitted": len(results), "run_id": args.run_id})
    else:
        printer.line("submitted %d tool result(s) to run %s" % (len(results), args.run_id))
    return _EXIT_OK


def _cmd_serve(args: Any, printer: _Printer) -> int:
    emulator = Emulator(args.host, args.port, log=sys.stderr, event_delay=args.event_delay, implicit=True)
    server = _emulator_server(emulator)
    emulator._server = server
    printer.line("yc_runs emulator on %s (Ctrl-C stops it)" % emulator.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        printer.line("stopped")
    finally:
        server.server_close()
    return _EXIT_OK


def get_weather(city: str) -> Dict[str, Any]:
    """The weather in a city now (the demo's tool)."""
    return {"city": city, "temperature_c": 21, "sky": "sunny"}


def _cmd_demo(args: Any, printer: _Printer) -> int:
    with Emulator(event_delay=0.05, implicit=True) as emu:
        emu.script("demo-assistant", tool_calls=[
            {"name": "get_weather", "arguments": {"city": "Moscow"}}],
            replies=[["It is sunny ", "and +21 °C ", "in Moscow right now."]])
        printer.line("emulator at %s (no credentials, no network)" % emu.url)
        with Client(base_url=emu.url, api_key="demo", folder_id="demo-folder") as client:
            run = client.runs.create("demo-assistant", "demo-thread", stream=True,
                                     additional_messages=["What is the weather in Moscow?"],
                                     tools=[get_weather])
            printer.line("created run %s (%s); listening" % (run.id, run.status.name))
            last = None
            for event in run.listen():
                printer.event(event)
                last = event
            if last is not None and last.status == StreamEvent.TOOL_CALLS:
                outputs = [{"name": c.name, "content": get_weather(**c.arguments)}
                           for c in last.tool_calls]
                printer.line("submitting %s" % json.dumps(outputs, ensure_ascii=False))
                run.submit_tool_results(outputs)
                for event in run.listen(events_start_idx=last.stream_cursor.current_event_idx + 1):
                    printer.event(event)
            result = run.wait()
            printer.run(client.runs.get(run.id))
            return _exit_for(result)


def _cli_parser() -> Any:
    import argparse

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api-key", default=argparse.SUPPRESS,
                        help="API key (default: $YC_API_KEY, then the other YC_* variables)")
    common.add_argument("--iam-token", default=argparse.SUPPRESS, help="IAM token")
    common.add_argument("--folder-id", default=argparse.SUPPRESS,
                        help="folder (default: $YC_FOLDER_ID)")
    common.add_argument("--base-url", default=argparse.SUPPRESS,
                        help="service URL (default: $YC_RUNS_BASE_URL or %s)" % DEFAULT_BASE_URL)
    common.add_argument("--allow-insecure", action="store_true", default=argparse.SUPPRESS,
                        help="allow plain http:// to a host that is not loopback")
    common.add_argument("--timeout", type=float, default=argparse.SUPPRESS,
                        help="seconds per request (default 60)")
    common.add_argument("--max-retries", type=int, default=argparse.SUPPRESS,
                        help="retries of a failed request (default 4)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="one JSON object per line")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="tracebacks on errors")
    parser = argparse.ArgumentParser(
        prog="python -m yc_runs", parents=[common],
        description="Runs of Yandex Cloud AI assistants from the shell. "
                    "Start with: python -m yc_runs demo")
    parser.add_argument("--version", action="version", version="yc_runs " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    def command(name: str, handler: Callable[[Any, _Printer], int], text: str) -> Any:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    sub = command("create", _cmd_create, "start a run")
    sub.add_argument("assistant")
    sub.add_argument("thread")
    sub.add_argument("--message", "-m", action="append", help="a user message (repeatable)")
    sub.add_argument("--stream", action="store_true", help="print the reply as it is generated")
    sub.add_argument("--temperature", type=float)
    sub.add_argument("--max-tokens", type=int)
    sub.add_argument("--label", action="append", metavar="K=V")
    sub.add_argument("--tools", metavar="FILE.json", help="a JSON list of tools")
    sub.add_argument("--wait", action="store_true", help="wait for the run to finish")
    sub = command("get", _cmd_get, "show a run")
    sub.add_argument("run_id")
    sub = command("last", _cmd_get, "show the thread's last run")
    sub.add_argument("thread_id")
    sub = command("list", _cmd_list, "runs in the folder, one per line")
    sub.add_argument("--page-size", type=int)
    sub.add_argument("--limit", type=int, help="stop after N runs")
    sub = command("listen", _cmd_listen, "print a run's events as they arrive")
    sub.add_argument("run_id")
    sub.add_argument("--from", dest="start", type=int, default=0, metavar="IDX",
                     help="first event index")
    sub = command("wait", _cmd_wait, "block until the run is finished")
    sub.add_argument("run_id")
    sub.add_argument("--poll-timeout", type=float)
    sub.add_argument("--poll-interval", type=float)
    sub = command("submit", _cmd_submit, "submit tool results")
    sub.add_argument("run_id")
    sub.add_argument("pairs", nargs="*", metavar="NAME=CONTENT")
    sub.add_argument("--results", metavar="FILE.json",
                     help='a JSON list of {"name", "content"} objects')
    sub = command("serve", _cmd_serve, "run the emulator in the foreground")
    sub.add_argument("--host", default="127.0.0.1")
    sub.add_argument("--port", type=int, default=8080)
    sub.add_argument("--event-delay", type=float, default=0.05,
                     help="seconds between stream events")
    command("demo", _cmd_demo, "the whole lifecycle against an in-process emulator")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; returns the exit code (0 ok, 1 run failed, 2 usage, 3 API or
    network error, 4 timed out, 130 interrupted)."""
    parser = _cli_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else _EXIT_USAGE
    printer = _Printer(sys.stdout, getattr(args, "json", False))
    debug = getattr(args, "debug", False)
    try:
        return args.handler(args, printer)  # type: ignore[no-any-return]
    except KeyboardInterrupt:
        if printer.mid_line:
            sys.stdout.write("\n")
        sys.stderr.write("interrupted\n")
        return _EXIT_INTERRUPTED
    except BaseException as exc:
        if debug:
            import traceback

            traceback.print_exc()
        code = _EXIT_API
        if isinstance(exc, (WaitTimeoutError, APITimeoutError)) or (
                isinstance(exc, StreamError) and isinstance(exc.__cause__, APITimeoutError)):
            code = _EXIT_TIMEOUT
        elif isinstance(exc, CredentialsError) or (
                isinstance(exc, (TypeError, ValueError, OSError)) and
                not isinstance(exc, YCRunsError)):
            code = _EXIT_USAGE
        elif not isinstance(exc, Exception):
            raise
        if printer.mid_line:
            sys.stdout.write("\n")
        sys.stderr.write("error: %s\n" % _redact(str(exc), _cli_secrets(args)))
        return code


def _cli_secrets(args: Any) -> List[str]:
    names = ("YC_API_KEY", "YC_IAM_TOKEN", "YC_TOKEN", "YC_OAUTH_TOKEN")
    return [s for s in [getattr(args, "api_key", None), getattr(args, "iam_token", None)]
            + [os.environ.get(n) for n in names] if s]


if __name__ == "__main__":
    sys.exit(main())
