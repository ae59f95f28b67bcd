"""The in-memory schedd model kept in a file, so that agent processes and the test share it.

Every call locks the file, loads the queue and history, runs the :class:`MemorySchedd`
method and saves the result: a killed agent process loses nothing the schedd was told,
as with a real schedd. The test plays the execute points (:func:`run_idle_jobs`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import condor_userlog as ul
from condor_memschedd import MemorySchedd

from owl.condor.schedd import Action, SubmitInfo


class FileSchedd(MemorySchedd):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    @contextmanager
    def state(self) -> Iterator[None]:
        """Hold the lock with the file's state loaded; save it on the way out."""
        with open(self.path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._load()
            yield
            self._save()

    def submit(self, description: Any, itemdata: Sequence[dict[str, str]]) -> SubmitInfo:
        with self.state():
            info = super().submit(description, itemdata)
            self.submitted[-1] = (str(description), self.submitted[-1][1])
            return info

    def query(self, constraint: str, projection: Sequence[str]) -> list[dict[str, Any]]:
        with self.state():
            return super().query(constraint, projection)

    def history(self, constraint: str, projection: Sequence[str], match: int = -1,
                since: str | None = None) -> list[dict[str, Any]]:
        with self.state():
            return super().history(constraint, projection, match, since)

    def act(self, action: Action, job_ids: Sequence[str], reason: str) -> int:
        with self.state():
            return super().act(action, job_ids, reason)

    def _load(self) -> None:
        if not self.path.exists():
            return
        data = json.loads(self.path.read_text())
        self.next_cluster = data["next_cluster"]
        self.queue = {(ad["ClusterId"], ad["ProcId"]): ad for ad in data["queue"]}
        self.history_ads = data["history"]
        self.submitted = [(d, items) for d, items in data["submitted"]]
        self.actions = [(Action(a), ids, r) for a, ids, r in data["actions"]]

    def _save(self) -> None:
        data = {"next_cluster": self.next_cluster, "queue": list(self.queue.values()),
                "history": self.history_ads, "submitted": self.submitted,
                "actions": [(str(a), ids, r) for a, ids, r in self.actions]}
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)


def start_idle_jobs(schedd: FileSchedd, running: dict[tuple[int, int], subprocess.Popen[bytes]],
                    slots: int) -> None:
    """Start idle jobs as the starter would (their command line, their environment)."""
    with schedd.state():
        for key, ad in schedd.queue.items():
            if len(running) >= slots:
                break
            if ad["JobStatus"] != 1 or key in running:
                continue
            ad["JobStatus"] = 2
            name, _, value = shlex.split(ad["environment"])[0].partition("=")
            running[key] = subprocess.Popen(
                [ad["executable"], *shlex.split(ad["arguments"])],
                env=dict(os.environ, **{name: value}),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ul.append(Path(ad["UserLog"]), ul.execute(*key))


def end_finished_jobs(schedd: FileSchedd,
                      running: dict[tuple[int, int], subprocess.Popen[bytes]],
                      ran: Callable[[dict[str, Any]], None]) -> None:
    """Log the termination of jobs that exited and move them to the history."""
    done = {k: p.returncode for k, p in running.items() if p.poll() is not None}
    if not done:
        return
    with schedd.state():
        for key, code in done.items():
            del running[key]
            ad = schedd.queue.get(key)
            if ad is None:  # removed while it ran: the shadow would have killed it
                continue
            ul.append(Path(ad["UserLog"]), ul.terminated(*key, code))
            schedd.leave(*key, JobStatus=4, ExitCode=code, ExitBySignal=False)
            ran(ad)
