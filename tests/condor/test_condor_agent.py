"""An agent with the condor executor on a real board: adoption after a restart, stale jobs
removed, memory escalation kept on the board and used for the next submission.

The schedd is the in-memory model of ``condor_memschedd`` (real Submit expansion, real
ClassAd constraints); the board is a real Redis.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from condor_memschedd import MemorySchedd

from owl import queries
from owl.agent import Agent
from owl.agent_ends import adopt, shutdown
from owl.board import Board
from owl.cli.main import build_cli
from owl.condor.executor import CondorExecutor
from owl.condor.schedd import Action
from owl.condor.settings import CondorSettings
from owl.config import Settings
from owl.executor import Resources
from owl.local import LocalExecutor
from owl.model import FailureClass, Outcome
from owl.routing import RoutingExecutor
from owl.template import RetryPolicy, Stage, Template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = Template(name="heavy", version="1", stages=(
    Stage("calib", task="owltask_condor:calibrate", executor="condor",
          resources=Resources(memory_mb=1024),
          retry=RetryPolicy(max_attempts=5, base=0.01, factor=1, max_delay=0.01, jitter=0,
                            memory_multiplier=2.0, memory_cap_mb=3000)),
))


def make_agent(board: Board, schedd: MemorySchedd, tmp_path: Path, task_dir: Path,
               lease: float = 30.0, concurrency: int = 4) -> Agent:
    cs = CondorSettings(board=board.name, agent_id="ap1-heavy", spool_dir=tmp_path / "spool",
                        pythonpath=(str(REPO), str(task_dir)), submit_window=0.0)
    settings = Settings(home=tmp_path, board=board.name, lease=lease)
    return Agent(board, TEMPLATE, executor=CondorExecutor(cs, schedd), concurrency=concurrency,
                 settings=settings, agent_id="ap1-heavy")


def test_restarted_agent_adopts_its_jobs_and_drops_stale_ones(
        board: Board, tmp_path: Path, task_dir: Path) -> None:
    schedd = MemorySchedd()
    board.register_many(TEMPLATE, [("ds1", ""), ("ds2", "")])
    first = make_agent(board, schedd, tmp_path, task_dir, lease=0.3)
    assert first._claim() == 2
    assert len(schedd.submitted) == 1 and len(schedd.queue) == 2  # one transaction
    keep = next(c for c in first.running.values() if c.dataset == "ds1")
    time.sleep(0.4)
    board.renew([keep], 30)  # ds1's lease is renewed; ds2's expires and is reaped
    assert board.reap("other") == [("ds2", "calib", "retry")]
    # the first agent dies here, its jobs still in the pool

    again = make_agent(board, schedd, tmp_path, task_dir)
    adopt(again)
    assert [(c.dataset, c.token) for c in again.running.values()] == [("ds1", keep.token)]
    removed = [a for a in schedd.actions if a[0] is Action.REMOVE]
    assert len(removed) == 1 and "fenced" in removed[0][2]  # ds2's stale job
    assert len(schedd.submitted) == 1  # ds1 was adopted, not submitted again


def test_memory_hold_escalates_the_next_request(board: Board, tmp_path: Path,
                                               task_dir: Path) -> None:
    schedd = MemorySchedd()
    board.register(TEMPLATE, "ds1")
    agent = make_agent(board, schedd, tmp_path, task_dir)
    assert agent._claim() == 1
    claim = next(iter(agent.running.values()))
    assert schedd.submitted[0][1][0]["owl_memory"] == "1024"
    agent._report([Outcome(dataset="ds1", stage="calib", token=claim.token, ok=False,
                           error="held: memory usage exceeded", failure=FailureClass.MEMORY)])
    item = queries.dataset(board, "ds1").items[0]
    assert (item.state, item.memory_mb) == ("retry", 2048)
    time.sleep(0.05)
    assert agent._claim() == 1
    assert schedd.submitted[-1][1][0]["owl_memory"] == "2048"
    second = next(iter(agent.running.values()))
    agent._report([Outcome(dataset="ds1", stage="calib", token=second.token, ok=False,
                           error="held again", failure=FailureClass.MEMORY)])
    time.sleep(0.05)
    assert agent._claim() == 1
    assert schedd.submitted[-1][1][0]["owl_memory"] == "3000"  # capped
    third = next(iter(agent.running.values()))
    agent._report([Outcome(dataset="ds1", stage="calib", token=third.token, ok=False,
                           error="held at the cap", failure=FailureClass.MEMORY)])
    final = queries.dataset(board, "ds1").items[0]
    assert (final.state, final.attempts) == ("dead", 3)  # the cap, not max_attempts (5)


def test_hybrid_template_runs_short_stages_locally_and_heavy_ones_on_condor(
        board: Board, tmp_path: Path, task_dir: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(task_dir))  # spawned local workers import the tasks
    # the successor is claimed behind the completion however long the first task took
    monkeypatch.setattr("owl.control.claimer.ROUND_S", 600.0)
    hybrid = Template(name="hybrid", version="1", stages=(
        Stage("quick", task="owltask_condor:calibrate"),
        Stage("heavy", after=("quick",), task="owltask_condor:calibrate", executor="condor"),
    ))
    board.register(hybrid, "ds1")
    schedd = MemorySchedd()
    cs = CondorSettings(board=board.name, agent_id="hyb", spool_dir=tmp_path / "spool",
                        pythonpath=(str(REPO), str(task_dir)), submit_window=0.0)
    routing = RoutingExecutor({"local": LocalExecutor(1), "condor": CondorExecutor(cs, schedd)},
                              {"quick": "local", "heavy": "condor"})
    agent = Agent(board, hybrid, executor=routing, concurrency=2,
                  settings=Settings(home=tmp_path, board=board.name), agent_id="hyb")
    try:
        assert agent._claim() == 1 and schedd.submitted == []  # quick: a local child
        end = time.monotonic() + 30
        outcomes: list[Outcome] = []
        while not outcomes and time.monotonic() < end:
            outcomes = routing.poll(0.1) or (time.sleep(0.05) or [])
        assert [o.ok for o in outcomes] == [True]
        agent._report(outcomes)  # completes quick, and claims heavy in the same round trip
        [(_description, items)] = schedd.submitted
        assert [ad["OwlStage"] for ad in schedd.queue.values()] == ["heavy"]
        heavy = queries.dataset(board, "ds1").items[1]
        assert [i["owl_token"] for i in items] == [str(heavy.token)]
        assert heavy.state == "running"
    finally:
        routing.close()


def test_operator_hold_holds_the_job_and_release_releases_it(
        board: Board, tmp_path: Path, task_dir: Path) -> None:
    schedd = MemorySchedd()
    board.register(TEMPLATE, "ds1")
    agent = make_agent(board, schedd, tmp_path, task_dir)
    assert agent._claim() == 1
    board.hold([("ds1", "calib")], "operator:test")
    agent._renew()
    assert [(a[0], a[1]) for a in schedd.actions] == [(Action.HOLD, ["100.0"])]
    board.release([("ds1", "calib")], "operator:test")
    agent._renew()
    assert [(a[0], a[1]) for a in schedd.actions][-1] == (Action.RELEASE, ["100.0"])
    assert queries.dataset(board, "ds1").items[0].state == "running"


def test_stopping_agent_leaves_jobs_for_its_restart(board: Board, tmp_path: Path,
                                                    task_dir: Path) -> None:
    schedd = MemorySchedd()
    board.register(TEMPLATE, "ds1")
    first = make_agent(board, schedd, tmp_path, task_dir)
    assert first._claim() == 1
    token = next(iter(first.running.values())).token
    first.request_stop()
    shutdown(first)
    first.executor.close()
    assert not [a for a in schedd.actions if a[0] is Action.REMOVE]  # the job runs on
    assert queries.dataset(board, "ds1").items[0].state == "running"
    again = make_agent(board, schedd, tmp_path, task_dir)
    adopt(again)
    assert [c.token for c in again.running.values()] == [token]
    assert len(schedd.submitted) == 1


def test_renew_removes_the_job_of_a_stale_claim_beside_a_newer_one(
        board: Board, tmp_path: Path, task_dir: Path) -> None:
    schedd = MemorySchedd()
    board.register(TEMPLATE, "ds1")
    agent = make_agent(board, schedd, tmp_path, task_dir, lease=0.3)
    assert agent._claim() == 1
    time.sleep(0.4)
    agent._reap()  # the agent's own reap expires its lease: the item goes to retry
    time.sleep(0.05)
    assert agent._claim() == 1  # and it claims the item again under a new token
    stale, newer = sorted(agent.running.values(), key=lambda c: c.token)
    agent._renew()
    assert [c.token for c in agent.running.values()] == [newer.token]
    removed = [(a[1], a[2]) for a in schedd.actions if a[0] is Action.REMOVE]
    assert removed == [(["100.0"], f"owl: token {stale.token} of ds1/calib fenced")]
    assert list(schedd.queue) == [(101, 0)]


def test_owl_agents_summarises_many_items(board: Board, redis_url: str, tmp_path: Path,
                                          task_dir: Path) -> None:
    schedd = MemorySchedd()
    n = 200
    board.register_many(TEMPLATE, [(f"ds{i:03d}", "") for i in range(n)])
    agent = make_agent(board, schedd, tmp_path, task_dir, concurrency=n)
    assert agent._claim() == n
    board.hold([("ds007", "calib")], "operator:test")
    agent._renew()
    agent._heartbeat()
    env = {"OWL_REDIS_URL": redis_url, "OWL_BOARD": board.name, "OWL_HOME": str(tmp_path)}
    short = CliRunner().invoke(build_cli(), ["agents"], env=env, catch_exceptions=False)
    assert short.exit_code == 0, short.output
    lines = short.output.splitlines()
    assert f"holding {n} (calib: 1 held, {n - 1} running)" in lines[0]
    claims = list(agent.running.values())
    assert lines[1:] == [*(f"    {c.dataset}:calib token {c.token}" for c in claims[:3]),
                         f"    ... {n - 3} more (owl agents --items)"]
    every = CliRunner().invoke(build_cli(), ["agents", "--items"], env=env,
                               catch_exceptions=False)
    listed = every.output.splitlines()[1:]
    held = next(c for c in claims if c.dataset == "ds007")
    assert len(listed) == n
    assert f"    ds007:calib token {held.token} (paused: held by an operator)" in listed
