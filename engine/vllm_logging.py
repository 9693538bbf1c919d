"""vLLM's log with each traceback cut to one line, in this process and in every process vLLM starts.

When vLLM cannot start (too little memory for the KV cache, a bad engine argument, a driver problem), its engine
core and worker processes log the error with its traceback: 180 lines for one cause, printed before the caller
ever sees an exception. vLLM configures its logging from ``VLLM_LOGGING_CONFIG_PATH`` in each process, so a
config naming ``OneLineErrors`` reaches all of them; the message and the exception's own sentence stay, the
stack goes. A vLLM process that dies of the error also has Python's multiprocessing print its traceback;
``in_vllm_process`` (run in each vLLM process by our ``vllm.general_plugins`` entry point) makes that one line
too. ``mimo --verbose`` (debug logging) and a user's own ``VLLM_LOGGING_CONFIG_PATH`` keep vLLM's default.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import multiprocessing
import os
import sys
import tempfile
import traceback

CONFIG_ENV = "VLLM_LOGGING_CONFIG_PATH"
ONE_LINE_ENV = "MIMO_VLLM_ONE_LINE_ERRORS"  # set for the processes vLLM starts
_FORMAT = "(%(processName)s pid=%(process)d) %(levelname)s %(asctime)s [%(filename)s:%(lineno)d] %(message)s"


def one_line(error: BaseException) -> str:
    """An exception's message on one line: pydantic's first error message (vLLM's configs are pydantic
    dataclasses), else its first line that says something, after the exception's type."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):  # not pydantic's errors() after all
            first = errors()[0]
            return str(first.get("msg") or first)
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


class OneLineErrors(logging.Formatter):
    """A log line per record: an exception becomes ``(Type: its message)`` after the record's message."""

    def __init__(self) -> None:
        super().__init__(_FORMAT, datefmt="%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_info[1] is not None:
            fields = dict(record.__dict__, exc_info=None, exc_text=None, stack_info=None, args=None)
            fields["msg"] = f"{record.getMessage()} ({one_line(record.exc_info[1])})"
            record = logging.makeLogRecord(fields)
        return " ".join(super().format(record).splitlines())


def cut_vllm_tracebacks() -> None:
    """Points vLLM (this process, if it has not imported vLLM yet, and every process it starts) at a logging
    config with ``OneLineErrors``, at vLLM's usual level and stream. Does nothing under debug logging or when
    the user configured vLLM's logging themselves."""
    if CONFIG_ENV in os.environ or os.environ.get("VLLM_CONFIGURE_LOGGING") == "0":
        return
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        return
    level = os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper()
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"one_line": {"()": f"{__name__}.OneLineErrors"}},
        "handlers": {
            "vllm": {
                "class": "logging.StreamHandler",
                "formatter": "one_line",
                "level": level,
                "stream": os.environ.get("VLLM_LOGGING_STREAM", "ext://sys.stderr"),
            }
        },
        "loggers": {"vllm": {"handlers": ["vllm"], "level": level, "propagate": False}},
    }
    handle, path = tempfile.mkstemp(prefix="mimo-vllm-logging-", suffix=".json")
    with os.fdopen(handle, "w") as file:
        json.dump(config, file)
    atexit.register(_remove, path)
    os.environ[CONFIG_ENV] = path
    os.environ[ONE_LINE_ENV] = "1"


def in_vllm_process() -> None:
    """In a process vLLM started (not the caller's own), when asked for: an uncaught exception is reported on
    one line. multiprocessing reports a child's uncaught exception with ``traceback.print_exc()``, looked up
    when it is called, so replacing that function here is what reaches it."""
    if os.environ.get(ONE_LINE_ENV) == "1" and multiprocessing.parent_process() is not None:
        traceback.print_exc = _print_exception_line


def _print_exception_line(limit=None, file=None, chain=True) -> None:
    error = sys.exc_info()[1]
    if error is not None:
        print(f"  {one_line(error)}", file=file or sys.stderr)


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
