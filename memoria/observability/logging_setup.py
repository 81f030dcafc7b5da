"""Log output: ``text`` (one readable line) or ``json`` (one object per line), every line
with the request id it was emitted under.

Only fixed fields are written (time, level, logger, message, request_id, exception): a
record's ``extra`` attributes never become fields, so whatever a library attaches to a
record (headers, credentials) stays out of the output.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import IO, Any

from memoria.observability.request_ids import RequestIdFilter, current_request_id

# Library chatter that says nothing to an operator: faiss lists every CPU build it probes,
# alembic every plugin it sets up (migrations themselves still log at INFO).
QUIET_LOGGERS = ("faiss.loader", "alembic.runtime.plugins")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(request_tag)s %(message)s"


def _request_id(record: logging.LogRecord) -> str | None:
    value = getattr(record, "request_id", None)
    return value if isinstance(value, str) else current_request_id()


class TextFormatter(logging.Formatter):
    """``2026-01-02 10:00:00,123 INFO memoria.access [<request id>] message``; the bracket
    is left out for lines emitted outside any request."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        request_id = _request_id(record)
        record.request_tag = f" [{request_id}]" if request_id else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id,
    and exception (the formatted traceback) when the record carries one."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        document: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": _request_id(record),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            document["exception"] = record.exc_text
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii keeps each line one line whatever the message holds.
        return json.dumps(document, ensure_ascii=True, default=str)


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return TextFormatter()
    raise ValueError(f"unknown log format {log_format!r}; expected text or json")


def configure_logging(
    settings_or_format: Any, *, level: int | str = logging.INFO, stream: IO[str] | None = None
) -> logging.Handler:
    """Routes every log record to one handler on the root logger, in the settings' format
    (``Settings`` or the format name), and returns that handler.

    Calling it again replaces the handler it installed before. For uvicorn's own loggers to
    reach it, run uvicorn with ``log_config=None`` (uvicorn then only sets their levels);
    ``access_log=False`` leaves request lines to ``memoria.access``, which logs route
    templates rather than raw paths and query strings.
    """
    log_format = getattr(settings_or_format, "log_format", settings_or_format)
    if not isinstance(log_format, str):
        raise TypeError("configure_logging takes Settings or a format name")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter_for(log_format))
    handler.addFilter(RequestIdFilter())
    handler.set_name("memoria")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "memoria"]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
