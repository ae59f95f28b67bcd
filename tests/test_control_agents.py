"""The control layer with real agent processes: throttles under SIGKILL, cron with several
agents, drain, and the exit status of a burst agent whose items went dead."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from test_agent import Agents, agents, wait_for, write_template  # noqa: F401  # fixture

from owl import queries
from owl.board import Board
from owl.control import actions
from owl.control import campaigns as camps
from owl.control.model import Band
from owl.control.select import Selector

pytestmark = pytest.mark.timeout(400)

RETRY = "retry: {max_attempts: 5, backoff: {base: 0.1, factor: 1, max: 0.1, jitter: 0}}"


def _register(board: Board, template_name: str, env: dict[str, str], n: int) -> list[str]:
    from owl.template_loader import load_template

    path = Path(env["OWL_PIPELINES"].split(os.pathsep)[0]) / f"{template_name}.yaml"
    template = load_template(path)
    ids = [f"{template_name}{i:04d}" for i in range(n)]
    board.register_many(template, [(d, "") for d in ids])
    return ids


@pytest.mark.heavy
def test_a_throttle_is_never_exceeded_with_50_claimers_and_sigkills(
        agents: Agents, board: Board) -> None:  # noqa: F811
    """Five agents of concurrency 10 compete for a pool of 4 permits; two are SIGKILLed
    mid-run and replaced. Running items on the board never exceed the limit."""
    path = Path(agents.env["OWL_PIPELINES"].split(os.pathsep)[0]) / "thr.yaml"
    path.write_text(f"""name: thr
version: '1'
limits: {{slots: 4}}
stages:
  work:
    task: owl_testtasks:short
    params: {{sleep: 0.3}}
    pools: [slots]
    {RETRY}
""")
    ids = _register(board, "thr", agents.env, 60)
    peak = [0, 0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            n = queries.counts(board).get(("thr", "work", "running"), 0)
            peak[0] = max(peak[0], n)
            peak[1] = max(peak[1], actions.permits_held(board, "pool:slots"))
            time.sleep(0.01)

    t = threading.Thread(target=watch)
    t.start()
    try:
        procs = [agents.start(f"a{i}", "-t", "thr", "-c", "10") for i in range(5)]
        wait_for(lambda: queries.counts(board).get(("thr", "work", "done"), 0) >= 8,
                 timeout=120, what="first completions")
        for p in procs[:2]:
            os.killpg(p.pid, signal.SIGKILL)
        for i in range(2):
            agents.start(f"b{i}", "-t", "thr", "-c", "10")
        wait_for(lambda: queries.counts(board).get(("thr", "work", "done"), 0) == len(ids),
                 timeout=240, what="every item done")
    finally:
        stop.set()
        t.join()
    assert peak[0] <= 4, f"{peak[0]} items ran at once under a limit of 4"
    assert peak[1] <= 4, f"{peak[1]} permits were held under a limit of 4"
    assert peak[0] == 4  # the limit was reached, so the test could have failed


@pytest.mark.heavy
def test_cron_fires_once_per_tick_with_three_agents(agents: Agents,  # noqa: F811
                                                     board: Board) -> None:
    write_template(agents.env, "cr", f"""  work:
    task: owl_testtasks:short
    params: {{sleep: 0.01}}
    {RETRY}
""")
    _register(board, "cr", agents.env, 2)
    camps.create(board, name="nightly", selector=Selector(template="cr"), who="test",
                 band=Band.REPROCESSING, schedule="* * * * * *")
    procs = [agents.start(f"c{i}", "-t", "cr", "-c", "2") for i in range(3)]
    time.sleep(5)
    for p in procs:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(30)
    ticks = [e for e in actions.control_events(board, 1000) if e.get("what") == "tick"]
    fired = [e["why"].split(",")[0] for e in ticks]
    assert len(fired) >= 2
    assert len(fired) == len(set(fired)), f"a tick fired twice: {fired}"
    # no agent runs for a while: the missed ticks are reported, not replayed
    time.sleep(3)
    agents.start("late", "-t", "cr", "-c", "2")
    wait_for(lambda: len([e for e in actions.control_events(board, 1000)
                          if e.get("what") == "tick"]) > len(ticks), timeout=30,
             what="a tick after the gap")
    late = [e for e in actions.control_events(board, 1000) if e.get("what") == "tick"][-1]
    missed = int(late["why"].rsplit(" ", 1)[1])
    assert missed >= 2, late


def test_drain_makes_an_agent_finish_its_items_and_exit(agents: Agents,  # noqa: F811
                                                        board: Board) -> None:
    write_template(agents.env, "dr", f"""  work:
    task: owl_testtasks:short
    params: {{sleep: 1.0}}
    {RETRY}
""")
    _register(board, "dr", agents.env, 6)
    proc = agents.start("d", "-t", "dr", "-c", "2", "--id", "drainme")
    wait_for(lambda: queries.counts(board).get(("dr", "work", "running"), 0) == 2,
             what="two items running")
    out = subprocess.run([sys.executable, "-m", "owl", "drain", "drainme", "--reason", "reboot"],
                         env=agents.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert proc.wait(30) == 0
    counts = queries.counts(board)
    assert counts.get(("dr", "work", "running"), 0) == 0
    assert counts[("dr", "work", "done")] == 2  # finished what it held, took nothing new
    assert counts[("dr", "work", "ready")] == 4
    drained = [e for e in actions.control_events(board) if e.get("kind") == "drain"]
    assert drained[0]["why"] == "reboot" and drained[0]["by"].startswith("operator:")


def test_a_paused_agent_takes_nothing_behind_its_completions_at_once(
        agents: Agents, board: Board) -> None:  # noqa: F811
    # a 2-stage chain: each completion would hand its successor to the same agent; the
    # agent rescans rarely here, so only the control wake-up can stop it in time
    write_template(agents.env, "pz", f"""  a:
    task: owl_testtasks:short
    params: {{sleep: 1.5}}
    {RETRY}
  b:
    after: a
    task: owl_testtasks:short
    params: {{sleep: 0.1}}
""")
    _register(board, "pz", agents.env, 4)
    agents.env = {**agents.env, "OWL_RESCAN": "30"}
    agents.start("p", "-t", "pz", "-c", "2", "--id", "pauseme")
    wait_for(lambda: queries.counts(board).get(("pz", "a", "running"), 0) == 2,
             what="two items running")
    out = subprocess.run([sys.executable, "-m", "owl", "pause", "agent", "pauseme"],
                         env=agents.env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    wait_for(lambda: queries.counts(board).get(("pz", "a", "done"), 0) == 2, timeout=30,
             what="the two running items done")
    time.sleep(1.0)
    counts = queries.counts(board)
    assert counts.get(("pz", "b", "running"), 0) + counts.get(("pz", "b", "done"), 0) == 0
    assert counts[("pz", "b", "ready")] == 2 and counts[("pz", "a", "ready")] == 2


def test_burst_exits_non_zero_when_items_went_dead(agents: Agents,  # noqa: F811
                                                   board: Board) -> None:
    write_template(agents.env, "bd", """  work:
    task: owl_testtasks:always_crash
    retry: {max_attempts: 1}
""")
    _register(board, "bd", agents.env, 1)
    proc = agents.start("burst", "-t", "bd", "--burst")
    assert proc.wait(60) == 3


def test_burst_exits_when_what_is_left_is_paused(agents: Agents,  # noqa: F811
                                                board: Board) -> None:
    """A paused stage's ready items, and a paused campaign's, are left for after the resume:
    a burst agent runs what it can and exits 0 instead of waiting for them."""
    write_template(agents.env, "bp", """  a:
    task: owl_testtasks:short
  b:
    after: a
    task: owl_testtasks:short
""")
    ids = _register(board, "bp", agents.env, 6)
    camps.create(board, name="later", selector=Selector(
        template="bp", datasets=tuple((d, "") for d in ids[4:])), who="test",
        band=Band.REPROCESSING)
    actions.pause(board, "stage", "bp:b", "op", "bad step")
    actions.pause(board, "campaign", "later", "op", "not yet")
    proc = agents.start("burst", "-t", "bp", "--burst")
    assert proc.wait(60) == 0
    counts = queries.counts(board)
    assert counts[("bp", "a", "done")] == 4 and counts[("bp", "b", "ready")] == 4
    assert counts[("bp", "a", "ready")] == 2  # the paused campaign's, never claimed


def test_a_template_scan_schedule_ingests_its_directories(agents: Agents,  # noqa: F811
                                                          board: Board, tmp_path: Path) -> None:
    from astropy.io import fits

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    path = Path(agents.env["OWL_PIPELINES"].split(os.pathsep)[0]) / "scanned.yaml"
    path.write_text(f"""name: scanned
version: '1'
match: {{INSTRUME: SCANCAM}}
ingest: ["*_raw.fits"]
scan: {{schedule: "* * * * * *", dirs: ["{incoming}"]}}
stages:
  work:
    task: owl_testtasks:short
""")
    agents.start("s", "-t", "scanned", "-c", "2")
    time.sleep(1.5)
    hdr = fits.Header({"INSTRUME": "SCANCAM", "ROOTNAME": "scan0001"})
    fits.PrimaryHDU(header=hdr).writeto(incoming / "scan0001_raw.fits")
    wait_for(lambda: queries.counts(board).get(("scanned", "work", "done"), 0) == 1,
             timeout=150, what="the scanned file registered and run")
    ticks = [e for e in actions.control_events(board, 1000)
             if e.get("name") == "template:scanned:scan"]
    assert ticks and len({e["why"] for e in ticks}) == len(ticks)  # each tick once
    first = queries.events(board, dataset_id="scan0001", count=10)[0]
    assert first["by"].startswith("scan:") and first["to"] == "ready"
