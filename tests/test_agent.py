"""Agents as real processes on a real board: crashes, pauses, fencing, retries, shutdown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from owl import queries
from owl.agent import DEAD_EXIT
from owl.board import Board
from owl.template import Template
from owl.template_loader import load_template

pytestmark = pytest.mark.timeout(120)

RETRY = "retry: {max_attempts: 3, backoff: {base: 0.1, factor: 1, max: 0.1, jitter: 0}}"


def write_template(env: dict[str, str], name: str, stages: str) -> Template:
    path = Path(env["OWL_PIPELINES"].split(os.pathsep)[0]) / f"{name}.yaml"
    path.write_text(f"name: {name}\nversion: '1'\nstages:\n{stages}")
    return load_template(path)


class Agents:
    """Starts `owl agent` processes in their own process groups and cleans them up."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.env = {**env, "OWL_LEASE": "2", "OWL_RESCAN": "0.3"}
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115  # closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "owl", "agent", *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text()

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.fixture
def agents(owl_env: dict[str, str], tmp_path: Path) -> Iterator[Agents]:
    a = Agents(owl_env, tmp_path)
    yield a
    a.close()


def wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def item(board: Board, ds: str, stage: str) -> queries.Item:
    return next(i for i in queries.dataset(board, ds).items if i.stage == stage)


def done_events(board: Board, ds: str, stage: str) -> int:
    return sum(1 for e in queries.events(board, dataset_id=ds, count=1000)
               if e["st"] == stage and e["to"] == "done")



def token_dir(agents: Agents, template: str, ds: str, stage: str, token: str,
              generation: int = 1) -> Path:
    return (Path(agents.env["OWL_HOME"]) / "work" / template / ds / f"g{generation}"
            / f"{stage}.t{token}")


def test_sigkilled_agent_item_rerun_once_by_another(agents: Agents, board: Board) -> None:
    t = write_template(agents.env, "killed", f"""  work:
    task: owl_testtasks:slow_first
    params: {{sleep: 60}}
    {RETRY}
""")
    board.register(t, "ds1")
    a = agents.start("a", "-t", "killed", "-c", "1")
    wait_for(lambda: item(board, "ds1", "work").state == "running", what="claim")
    first = item(board, "ds1", "work").token
    wait_for(lambda: (token_dir(agents, "killed", "ds1", "work", first) / "started").exists(),
             what="task start")
    os.killpg(a.pid, signal.SIGKILL)
    b = agents.start("b", "-t", "killed", "-c", "1", "--burst")
    assert b.wait(60) == 0, agents.log("b")
    final = item(board, "ds1", "work")
    assert final.state == "done" and final.attempts == 2
    assert final.token != first and final.outputs["token"] == int(final.token)
    assert done_events(board, "ds1", "work") == 1
    assert (token_dir(agents, "killed", "ds1", "work", final.token) / "result.txt").exists()
    assert not (token_dir(agents, "killed", "ds1", "work", first) / "result.txt").exists()
    assert queries.failures(board, "ds1", "work")[0]["class"] == "lease"


def test_paused_agent_is_fenced_on_resume(agents: Agents, board: Board) -> None:
    t = write_template(agents.env, "paused", f"""  work:
    task: owl_testtasks:slow_first
    params: {{sleep: 3}}
    {RETRY}
""")
    board.register(t, "ds1")
    a = agents.start("a", "-t", "paused", "-c", "1")
    wait_for(lambda: item(board, "ds1", "work").state == "running", what="claim")
    zombie = item(board, "ds1", "work").token
    wait_for(lambda: (token_dir(agents, "paused", "ds1", "work", zombie) / "started").exists(),
             what="task start")
    os.kill(a.pid, signal.SIGSTOP)  # the agent only: its worker goes on and finishes
    b = agents.start("b", "-t", "paused", "-c", "1", "--burst")
    assert b.wait(60) == 0, agents.log("b")
    winner = item(board, "ds1", "work")
    assert winner.state == "done" and winner.token != zombie
    os.kill(a.pid, signal.SIGCONT)
    wait_for(lambda: "item.fenced" in agents.log("a"), what="the fenced log line")
    a.send_signal(signal.SIGTERM)
    assert a.wait(30) == 0
    after = item(board, "ds1", "work")
    assert (after.state, after.token, after.outputs["token"]) == (
        "done", winner.token, int(winner.token))
    assert done_events(board, "ds1", "work") == 1


def test_agent_killed_after_complete_leaves_successors_ready(agents: Agents,
                                                             board: Board) -> None:
    t = write_template(agents.env, "chain", f"""  first:
    task: owl_testtasks:record
    {RETRY}
  second:
    after: first
    task: owl_testtasks:record
    {RETRY}
""")
    board.register(t, "ds1")
    a = agents.start("a", "-t", "chain", "-s", "first", "-c", "1")
    wait_for(lambda: item(board, "ds1", "first").state == "done", what="first done")
    os.killpg(a.pid, signal.SIGKILL)
    assert item(board, "ds1", "second").state == "ready"
    b = agents.start("b", "-t", "chain", "-s", "second", "-c", "1", "--burst")
    assert b.wait(60) == 0, agents.log("b")
    assert item(board, "ds1", "second").state == "done"


def test_always_crashing_task_ends_dead_with_traceback(agents: Agents, board: Board) -> None:
    t = write_template(agents.env, "crash", f"""  work:
    task: owl_testtasks:always_crash
    {RETRY}
""")
    board.register(t, "ds1")
    b = agents.start("b", "-t", "crash", "-c", "2", "--burst")
    assert b.wait(60) == DEAD_EXIT, agents.log("b")  # a burst agent whose item went dead
    final = item(board, "ds1", "work")
    assert (final.state, final.attempts) == ("dead", 3)
    out = subprocess.run([sys.executable, "-m", "owl", "dead", "--json"], env=agents.env,
                         capture_output=True, text=True, check=True).stdout
    dead = json.loads(out)
    assert [(d["dataset"], d["stage"], d["attempts"]) for d in dead] == [("ds1", "work", 3)]
    assert "calibration exploded on ds1 (attempt 3)" in dead[0]["message"]
    assert "Traceback" in dead[0]["traceback"] and "always_crash" in dead[0]["traceback"]


def test_sigterm_gives_back_unfinished_items(agents: Agents, board: Board) -> None:
    t = write_template(agents.env, "term", f"""  work:
    task: owl_testtasks:sleepy
    {RETRY}
""")
    board.register(t, "ds1")
    a = agents.start("a", "-t", "term", "-c", "1", "--grace", "0.5")
    wait_for(lambda: item(board, "ds1", "work").state == "running", what="claim")
    wait_for(lambda: [i["dataset"] for a in queries.agents(board) for i in a["items"]] == ["ds1"],
             timeout=10, what="the agent's record to show its item")
    a.send_signal(signal.SIGTERM)
    assert a.wait(30) == 0
    back = item(board, "ds1", "work")
    assert (back.state, back.attempts) == ("ready", 0)
    assert queries.agents(board) == []


def _proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_hold_pauses_the_task_and_release_resumes_it(agents: Agents, board: Board) -> None:
    t = write_template(agents.env, "pause", f"""  work:
    task: owl_testtasks:slow_first
    params: {{sleep: 2}}
    {RETRY}
""")
    board.register(t, "ds1")
    agents.start("a", "-t", "pause", "-c", "1")
    wait_for(lambda: item(board, "ds1", "work").state == "running", what="claim")
    token = item(board, "ds1", "work").token
    started = token_dir(agents, "pause", "ds1", "work", token) / "started"
    wait_for(started.exists, what="task start")
    worker = int(started.read_text())
    board.hold([("ds1", "work")], "op")
    wait_for(lambda: _proc_state(worker) == "T", timeout=10, what="the task to be stopped")
    time.sleep(2.5)  # longer than the task: it must not have finished while paused
    assert item(board, "ds1", "work").state == "held"
    assert board.release([("ds1", "work")], "op", lease=2)[0].after == "running"
    wait_for(lambda: item(board, "ds1", "work").state == "done", what="the resumed task")
    final = item(board, "ds1", "work")
    assert (final.token, final.attempts) == (token, 1)
    assert "item.paused" in agents.log("a") and "item.resumed" in agents.log("a")


def _gone(pid: int) -> bool:
    try:
        return _proc_state(pid) == "Z"
    except OSError:
        return True


def test_workers_and_their_children_die_with_a_sigkilled_agent(agents: Agents,
                                                               board: Board) -> None:
    t = write_template(agents.env, "orphan", f"""  work:
    task: owl_testtasks:spawn_child
    {RETRY}
""")
    board.register(t, "ds1")
    a = agents.start("a", "-t", "orphan", "-c", "1")
    wait_for(lambda: item(board, "ds1", "work").state == "running", what="claim")
    out = token_dir(agents, "orphan", "ds1", "work", item(board, "ds1", "work").token)
    wait_for(lambda: (out / "child.pid").exists() and (out / "worker.pid").exists(),
             what="the task's child")
    worker, child = int((out / "worker.pid").read_text()), int((out / "child.pid").read_text())
    os.kill(a.pid, signal.SIGKILL)  # the agent alone, not its group
    wait_for(lambda: _gone(worker) and _gone(child), timeout=10,
             what="the worker and the task's child to die with their agent")


def test_sighup_stops_the_agent_gracefully(agents: Agents, board: Board) -> None:
    t = write_template(agents.env, "hup", f"""  work:
    task: owl_testtasks:sleepy
    {RETRY}
""")
    board.register(t, "ds1")
    proc = subprocess.Popen([sys.executable, "-m", "owl", "agent", "-t", "hup", "-c", "1",
                             "--grace", "0.5"], env=agents.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    agents.procs.append(proc)
    assert proc.stdout is not None
    wait_for(lambda: [i["dataset"] for a in queries.agents(board) for i in a["items"]] == ["ds1"],
             what="the agent's record to show its item")
    proc.stdout.close()  # the terminal is gone: every later log line fails to write
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(30) == 0
    back = item(board, "ds1", "work")
    assert (back.state, back.attempts) == ("ready", 0)
    assert queries.agents(board) == []


def test_owl_logs_prints_each_attempts_output(agents: Agents, board: Board) -> None:
    t = write_template(agents.env, "chat", f"""  work:
    task: owl_testtasks:chatty
    params: {{fail: true}}
    {RETRY}
""")
    board.register(t, "ds1")
    b = agents.start("b", "-t", "chat", "-c", "1", "--burst")
    assert b.wait(60) == DEAD_EXIT, agents.log("b")  # a burst agent whose items went dead
    assert item(board, "ds1", "work").state == "dead"
    records = queries.failures(board, "ds1", "work")
    assert [r["attempt"] for r in records] == [1, 2, 3]
    assert all("trouble on stderr" in r["log_tail"] for r in records)

    def owl_logs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "owl", "logs", *args], env=agents.env,
                              capture_output=True, text=True, check=False)

    second = owl_logs("ds1", "work", "--attempt", "2")
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("hello from stdout") == 1 and "child says hi" in second.stdout
    assert "trouble on stderr" in second.stdout and "attempt 2" in second.stderr
    assert "attempt 3" in owl_logs("ds1", "work").stderr  # the latest by default
    missing = owl_logs("ds1", "work", "--attempt", "9")
    assert missing.returncode == 1 and "no log files of attempt 9 of ds1 work" in missing.stderr
    typo = owl_logs("ds1", "wrok")
    assert typo.returncode == 1
    assert "has no stage 'wrok' (did you mean 'work'?); its stages are work" in typo.stderr


def test_hold_and_release_reach_the_agent_at_once(agents: Agents, board: Board) -> None:
    agents.env["OWL_LEASE"] = "30"  # renewals every 10 s: only the wake-up can be this quick
    t = write_template(agents.env, "prompt", f"""  work:
    task: owl_testtasks:slow_first
    params: {{sleep: 30}}
    {RETRY}
""")
    board.register(t, "ds1")
    agents.start("a", "-t", "prompt", "-c", "1")
    wait_for(lambda: item(board, "ds1", "work").state == "running", what="claim")
    started = token_dir(agents, "prompt", "ds1", "work", item(board, "ds1", "work").token)
    wait_for(lambda: (started / "started").exists() and bool((started / "started").read_text()),
             what="task start")
    worker = int((started / "started").read_text())
    time.sleep(0.5)  # past the renewal that follows the claim
    board.hold([("ds1", "work")], "op")
    wait_for(lambda: _proc_state(worker) == "T", timeout=5, what="the hold to pause the task")
    board.release([("ds1", "work")], "op", lease=30)
    wait_for(lambda: _proc_state(worker) != "T", timeout=5,
             what="the release to resume the task")


def test_a_released_item_whose_agent_died_runs_again_uncharged(agents: Agents,
                                                              board: Board) -> None:
    t = write_template(agents.env, "strand", f"""  work:
    task: owl_testtasks:sleep_once
    {RETRY}
""")
    board.register(t, "ds1")
    a = agents.start("a", "-t", "strand", "-c", "1")
    wait_for(lambda: item(board, "ds1", "work").state == "running", what="claim")
    first = item(board, "ds1", "work").token
    wait_for((token_dir(agents, "strand", "ds1", "work", first) / "started").exists,
             what="task start")
    board.hold([("ds1", "work")], "op")
    wait_for(lambda: "item.paused" in agents.log("a"), what="the agent to pause the task")
    os.killpg(a.pid, signal.SIGKILL)
    a.wait()
    assert board.release([("ds1", "work")], "op", lease=2)[0].after == "running"
    b = agents.start("b", "-t", "strand", "-c", "1", "--burst")
    assert b.wait(60) == 0, agents.log("b")
    final = item(board, "ds1", "work")
    assert (final.state, final.attempts) == ("done", 1) and final.token != first
    assert queries.failures(board, "ds1", "work") == []  # no "agent stopped renewing"
    assert any(e.get("why") == "released, but no agent resumed it"
               for e in queries.events(board, dataset_id="ds1"))


def test_an_idle_worker_killed_from_outside_costs_nothing(agents: Agents, board: Board) -> None:
    t = write_template(agents.env, "idle", f"""  work:
    task: owl_testtasks:record
    {RETRY}
""")
    board.register(t, "ds1")
    a = agents.start("a", "-t", "idle", "-c", "1")
    wait_for(lambda: item(board, "ds1", "work").state == "done", what="the first item")
    worker = int(item(board, "ds1", "work").outputs["pid"])
    os.kill(worker, signal.SIGKILL)  # the agent's only worker, idle
    wait_for(lambda: _gone(worker), what="the worker to die")
    board.register(t, "ds2")
    wait_for(lambda: item(board, "ds2", "work").state == "done", what="the next item")
    assert item(board, "ds2", "work").attempts == 1 and a.poll() is None
    assert queries.failures(board, "ds2", "work") == []


def test_a_prefetching_agent_holds_a_queued_item_and_runs_each_once(agents: Agents,
                                                                    board: Board) -> None:
    t = write_template(agents.env, "pf", f"""  work:
    task: owl_testtasks:short
    params: {{sleep: 0.4}}
    {RETRY}
""")
    board.register_many(t, [(f"ds{i}", "") for i in range(1, 5)])
    agents.start("a", "-t", "pf", "-c", "1", "--prefetch", "3")
    # one worker, four items claimed at once: one runs, three wait in its pipe
    wait_for(lambda: all(item(board, f"ds{i}", "work").state in ("running", "done")
                         for i in range(1, 5)), what="every item claimed")
    shown = subprocess.run([sys.executable, "-m", "owl", "agents"], env=agents.env,
                           capture_output=True, text=True, timeout=60)
    assert "local x1 +3 prefetch" in shown.stdout, shown.stdout + shown.stderr
    first_done = [i for i in range(1, 5) if item(board, f"ds{i}", "work").state == "done"]
    last = max(i for i in range(1, 5) if i not in first_done)
    board.hold([(f"ds{last}", "work")], "op")
    others = [i for i in range(1, 5) if i != last]
    wait_for(lambda: all(item(board, f"ds{i}", "work").state == "done" for i in others),
             what="the items not held")
    time.sleep(0.6)  # longer than a task: the held one did not run meanwhile
    assert item(board, f"ds{last}", "work").state == "held"
    board.release([(f"ds{last}", "work")], "op", lease=2)
    wait_for(lambda: item(board, f"ds{last}", "work").state == "done", what="the released item")
    for i in range(1, 5):
        assert (item(board, f"ds{i}", "work").attempts, done_events(board, f"ds{i}", "work")) \
            == (1, 1)


def test_prefetch_is_refused_for_a_stage_on_condor(owl_env: dict[str, str]) -> None:
    write_template(owl_env, "pfc", "  work:\n    task: owl_testtasks:short\n"
                   "    executor: condor\n")
    out = subprocess.run([sys.executable, "-m", "owl", "agent", "-t", "pfc", "--prefetch", "2",
                          "--burst"], env=owl_env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "--prefetch queues items in local workers; stage(s) work of template 'pfc' run " \
           "on condor" in out.stderr


def test_sigterm_gives_back_prefetched_items_at_once_and_finishes_the_running_one(
        agents: Agents, board: Board) -> None:
    t = write_template(agents.env, "pft", f"""  work:
    task: owl_testtasks:slow_first
    params: {{sleep: 3}}
    {RETRY}
""")
    board.register_many(t, [(f"ds{i}", "") for i in range(1, 4)])
    a = agents.start("a", "-t", "pft", "-c", "1", "--prefetch", "2", "--grace", "20")
    wait_for(lambda: all(item(board, f"ds{i}", "work").state == "running" for i in (1, 2, 3)),
             what="three items claimed by one worker")

    def started() -> list[int]:
        return [i for i in (1, 2, 3) if token_dir(
            agents, "pft", f"ds{i}", "work", item(board, f"ds{i}", "work").token).joinpath(
            "started").exists()]

    wait_for(lambda: len(started()) == 1, what="one task started")
    a.send_signal(signal.SIGTERM)
    # the two queued ones are back on the board while the running one still runs
    wait_for(lambda: sorted(item(board, f"ds{i}", "work").state for i in (1, 2, 3))
             == ["ready", "ready", "running"], timeout=2.5, what="the queued items given back")
    assert a.wait(30) == 0
    states = {i: item(board, f"ds{i}", "work") for i in (1, 2, 3)}
    assert sorted((s.state, s.attempts) for s in states.values()) == [
        ("done", 1), ("ready", 0), ("ready", 0)], states


@pytest.mark.heavy
def test_a_sigkilled_prefetching_agent_leaves_every_item_done_exactly_once(
        agents: Agents, board: Board) -> None:
    t = write_template(agents.env, "pfk", f"""  a:
    task: owl_testtasks:short
    params: {{sleep: 0.1}}
    {RETRY}
  b:
    task: owl_testtasks:short
    params: {{sleep: 0.1}}
    after: a
    {RETRY}
""")
    names = [f"ds{i:02d}" for i in range(12)]
    board.register_many(t, [(n, "") for n in names])
    a = agents.start("a", "-t", "pfk", "-c", "1", "--prefetch", "3")
    # killed with items running and queued in its worker
    wait_for(lambda: sum(item(board, n, "a").state == "done" for n in names) >= 3,
             what="a few completions")
    os.killpg(a.pid, signal.SIGKILL)
    b = agents.start("b", "-t", "pfk", "-c", "2", "--prefetch", "2", "--burst")
    assert b.wait(90) == 0, agents.log("b")
    for n in names:
        for stage in ("a", "b"):
            it = item(board, n, stage)
            assert it.state == "done" and done_events(board, n, stage) == 1, (n, stage, it)
            assert it.outputs["token"] == int(it.token)  # the output of the winning token
