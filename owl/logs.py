"""structlog set-up: a console renderer for people, JSON lines for machines (--log-json).

Events are named like ``item.claimed`` and carry bound fields (dataset=, stage=, token=,
attempt=).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Any, TextIO

import structlog

from owl.redact import redact


def _redacted(renderer: structlog.typing.Processor) -> structlog.typing.Processor:
    """The renderer, with passwords in URLs masked in what it writes (tracebacks too)."""

    def render(logger: Any, method: str, event: Any) -> Any:
        out = renderer(logger, method, event)
        return redact(out) if isinstance(out, str) else out

    return render


class _Stderr:
    """stderr that drops what it cannot write: an agent whose terminal went away (SIGHUP,
    a closed pipe) must still finish its shutdown, not die of EIO/EPIPE in a log call."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return 0

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()


def configure(*, json_lines: bool = False, level: str = "info") -> None:
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if json_lines:
        processors.append(structlog.processors.format_exc_info)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*processors, _redacted(renderer)],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr(sys.stderr)),  # type: ignore[arg-type]  # write/flush is all PrintLogger uses
        cache_logger_on_first_use=True,
    )
