"""A local worker's own stdout/stderr files, reused task after task.

A worker points its file descriptors 1 and 2 (inherited by everything its task starts) at
two files in its capture directory while a Python task runs, so nothing a task prints is
held in memory. Only an attempt that printed something gets a log directory: when the task
ends, the non-empty files are moved (renamed; copied across filesystems) to the attempt's
``OUTPUT_DIR/.owl/`` and the worker starts fresh ones. A silent attempt costs no directory
and no file, which is most of a short task's overhead. When a worker dies or is killed (a
crash, a timeout), its agent moves what the files hold the same way (:func:`keep_files`).

An argv task and a condor job write their streams straight to the attempt's directory
(``owl.tasklog``): they start a process anyway.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from owl.tasklog import start_attempt

STREAMS = {1: "stdout.log", 2: "stderr.log"}


def _open(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)


def _move(src: Path, dst: Path) -> None:
    """Move `src` to `dst`, appending when `dst` exists (an earlier part of the attempt)."""
    if not dst.exists():
        try:
            os.rename(src, dst)
            return
        except OSError:  # another filesystem: copy below
            pass
    with src.open("rb") as f, dst.open("ab") as out:
        shutil.copyfileobj(f, out, 1 << 20)
    src.unlink()


def keep_files(directory: Path, output_dir: str | Path, attempt: int) -> Path | None:
    """Move the non-empty capture files of `directory` into the attempt's log directory
    (created then, with its ``attempt`` file). Returns the log directory, or None when
    nothing was printed (or the files are gone)."""
    printed = []
    for name in STREAMS.values():
        try:
            if (directory / name).stat().st_size > 0:
                printed.append(name)
        except FileNotFoundError:
            continue
    if not printed:
        return None
    logs = start_attempt(output_dir, attempt)
    for name in printed:
        _move(directory / name, logs / name)
    return logs


class Capture:
    """The capture files of one worker process, in `directory` (created if missing)."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._fds = {fd: _open(directory / name) for fd, name in STREAMS.items()}
        self._saved = {fd: os.dup(fd) for fd in STREAMS}

    @contextlib.contextmanager
    def redirected(self) -> Iterator[None]:
        """Descriptors 1 and 2 go to the capture files while the block runs."""
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, target in self._fds.items():
            os.dup2(target, fd)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, saved in self._saved.items():
                os.dup2(saved, fd)

    def keep(self, output_dir: str | Path, attempt: int) -> Path | None:
        """After a task: move what it printed to its attempt's log directory (see
        :func:`keep_files`) and start empty files for the next task."""
        if not any(os.fstat(fd).st_size for fd in self._fds.values()):
            return None  # the usual case: a silent task (one fstat each, no path lookups)
        logs = keep_files(self.directory, output_dir, attempt)
        if logs is not None:
            for fd, name in STREAMS.items():
                os.close(self._fds[fd])
                self._fds[fd] = _open(self.directory / name)
        return logs
