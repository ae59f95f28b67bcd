"""The child side of the local executor (`owl.local`): the worker loop, and the removal of
capture directories that killed agents left behind.

A message to a worker is a spec: its sequence number on that worker's pipe (8 bytes, big
endian) and the task spec as JSON. The worker counts every spec it reads (``received``, in
shared memory) and, under the same lock, looks whether the agent withdrew it while it waited
in the pipe (``skips``: a ring of withdrawn sequence numbers + 1, one slot per spec the pipe
may hold); a withdrawn spec is answered ``{"skipped": true}`` and not run.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

SKIPPED = b'{"skipped": true}'


def spec_body(spec: dict[str, Any]) -> bytes:
    return json.dumps(spec).encode()


def pack(seq: int, body: bytes) -> bytes:
    return seq.to_bytes(8, "big") + body


def worker_main(conn: Connection, log_json: bool, parent: int, received: Any, gate: Any,
                skips: Any, capture_dir: str) -> None:
    """Worker loop: receive a spec, count it, run it with its output going to the worker's
    capture files in `capture_dir` (unless withdrawn), send the result (JSON).

    The worker leads its own session, so the agent's signals reach everything the task
    started (`owl.proc`); what a finished task leaves running is killed before the next.
    """
    from owl.attempt import run_attempt
    from owl.capture import Capture
    from owl.logs import configure
    from owl.model import TaskSpec
    from owl.proc import become_group_leader, check_parent, kill_own_group, kill_strays

    become_group_leader(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the agent decides when work stops
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    configure(json_lines=log_json)
    capture = Capture(Path(capture_dir))
    ring = len(skips)
    while True:
        try:
            raw = conn.recv_bytes()
        except (EOFError, OSError):
            kill_own_group()  # the agent closed the pipe: nothing of ours may outlive it
            return
        seq = int.from_bytes(raw[:8], "big")
        with gate:  # from here on a death of this worker is the task's crash
            received.value += 1
            withdrawn = skips[seq % ring] == seq + 1
        if withdrawn:
            conn.send_bytes(SKIPPED)
            continue
        check_parent(parent)
        result = run_attempt(TaskSpec.from_json(json.loads(raw[8:])), capture)
        kill_strays()
        conn.send_bytes(json.dumps(result).encode())


def remove_stale(root: Path) -> None:
    """Remove the capture directories (``HOST-PID-wN``) that agents of this host left when
    they were killed (their pid is gone); other hosts' (a shared OWL_WORK) are left alone."""
    host = socket.gethostname()
    try:
        entries = list(root.iterdir())
    except OSError:
        return
    for d in entries:
        name_host, _, rest = d.name.rpartition("-w")[0].rpartition("-")
        if name_host != host or not rest.isdigit():
            continue
        try:
            os.kill(int(rest), 0)
        except ProcessLookupError:
            shutil.rmtree(d, ignore_errors=True)
        except PermissionError:  # alive, someone else's
            continue
