"""Provenance written by the fenced completion, and skip-if-done, with real agents."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from redis import Redis

from owl import queries
from owl.board import Board
from owl.history import history
from owl.model import Provenance
from owl.server import ensure_server, server_info, stop_server
from owl.template import Stage, Template
from owl.template_loader import load_template

pytestmark = pytest.mark.timeout(120)

STAGES = """\
  a: {task: owl_testtasks:transform, params: {ref: "tref$r1.txt"}}
  b: {task: owl_testtasks:transform, after: a}
"""


def setup(env: dict[str, str], tmp: Path, stages: str = STAGES) -> tuple[Template, Path]:
    path = Path(env["OWL_PIPELINES"].split(os.pathsep)[0]) / "prov.yaml"
    path.write_text(f"name: prov\nversion: '1'\nstages:\n{stages}")
    refs = tmp / "refs"
    refs.mkdir()
    (refs / "r1.txt").write_text("reference one\n")
    env["tref"] = f"{refs}/"
    raw = tmp / "ds1_raw.txt"
    raw.write_text("raw\n")
    return load_template(path), raw


def burst(env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "owl", "agent", "-t", "prov", "-c", "1",
                           "--burst"], env={**env, "OWL_RESCAN": "0.2"}, capture_output=True,
                          text=True, timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


def rerun(board: Board, dataset: str, stages: list[str]) -> None:
    """Start the dataset's next generation from stages[0] (the control layer's rerun)."""
    s = board.shard(dataset)
    k = board.keys
    version = queries.dataset(board, dataset).version
    spec = {"from": stages[0], "cp": "production", "v": version, "ov": version,
            "reset": stages, "why": "test"}
    res = board.scripts["rerun"](
        keys=[k.counts(s), k.events(s), k.dataset(s, dataset)], client=board.redis,
        args=[k.prefix(s), dataset, json.dumps(spec), "test", board.event_cap, k.notify,
              "", ""])
    assert res[0] == 1, res


def fields(board: Board, dataset: str, stage: str) -> tuple[dict[str, Any], dict[str, Any]]:
    s = board.shard(dataset)
    pv, pe = board.redis.hmget(board.keys.dataset(s, dataset), [f"{stage}.pv", f"{stage}.pe"])
    env = board.redis.hget(board.keys.pvenv(s), pe)
    return json.loads(pv), json.loads(env)


def done_why(board: Board, dataset: str) -> list[tuple[str, str]]:
    created = queries.dataset(board, dataset).created_ms
    return [(e["st"], e["why"]) for e in history(board, dataset, created) if e["to"] == "done"]


def test_completion_records_provenance(owl_env: dict[str, str], board: Board,
                                       tmp_path: Path) -> None:
    template, raw = setup(owl_env, tmp_path)
    board.register(template, "ds1", str(raw))
    burst(owl_env)
    pv, env = fields(board, "ds1", "a")
    assert env["task"] == "owl_testtasks:transform" and len(env["cv"]) == 16
    assert env["pm"] == {"ref": "tref$r1.txt"} and env["x"] == "local" and env["h"]
    assert env["ov"] and len(env["th"]) == 16
    (ref,) = env["rf"]
    assert ref[:3] == ["REFFILE", "tref$r1.txt", str(tmp_path / "refs" / "r1.txt")]
    assert ref[3] == len("reference one\n") and len(ref[5]) == 32
    (inp,) = pv["in"]
    assert inp[0] == str(raw) and inp[1] == 4
    (out,) = pv["out"]
    assert out[0] == "ds1_a.txt" and Path(pv["od"], out[0]).read_text().startswith("raw")
    assert pv["mem"] > 0 and pv["cpu"] >= 0 and pv["du"] >= 0 and pv["t0"] > 0
    assert len(pv["k"]) == 16 and "r" not in pv
    b_pv, _ = fields(board, "ds1", "b")
    b_in = {rec[0]: rec[3] for rec in b_pv["in"]}  # the registered input, and a's output
    assert b_in == {str(raw): inp[3], str(Path(pv["od"], "ds1_a.txt")): out[3]}


def test_rerun_with_nothing_changed_is_reused(owl_env: dict[str, str], board: Board,
                                              tmp_path: Path) -> None:
    template, raw = setup(owl_env, tmp_path)
    board.register(template, "ds1", str(raw))
    burst(owl_env)
    before = {i.stage: i.outputs for i in queries.dataset(board, "ds1").items}
    rerun(board, "ds1", ["a", "b"])
    burst(owl_env)
    ds = queries.dataset(board, "ds1")
    assert {i.stage: i.state for i in ds.items} == {"a": "done", "b": "done"}
    assert {i.stage: i.outputs for i in ds.items} == before
    assert done_why(board, "ds1") == [("a", ""), ("b", ""), ("a", "reused"), ("b", "reused")]
    assert fields(board, "ds1", "a")[0]["r"] == 1


def test_missing_output_or_changed_reference_runs_again(owl_env: dict[str, str], board: Board,
                                                        tmp_path: Path) -> None:
    template, raw = setup(owl_env, tmp_path)
    board.register(template, "ds1", str(raw))
    burst(owl_env)
    b_out = Path(queries.dataset(board, "ds1").items[1].outputs["files"]["out"])
    b_out.unlink()
    rerun(board, "ds1", ["a", "b"])
    burst(owl_env)
    assert done_why(board, "ds1")[2:] == [("a", "reused"), ("b", "")]
    assert Path(queries.dataset(board, "ds1").items[1].outputs["files"]["out"]).exists()
    (tmp_path / "refs" / "r1.txt").write_text("reference one, redelivered\n")
    rerun(board, "ds1", ["a", "b"])
    burst(owl_env)
    # a runs (its reference changed); b's input then differs, so b runs too.
    assert done_why(board, "ds1")[4:] == [("a", ""), ("b", "")]
    assert "redelivered" in Path(
        queries.dataset(board, "ds1").items[1].outputs["files"]["out"]).read_text()


def test_reuse_false_always_runs(owl_env: dict[str, str], board: Board, tmp_path: Path) -> None:
    stages = STAGES.replace("after: a}", "after: a, reuse: false}")
    template, raw = setup(owl_env, tmp_path, stages)
    board.register(template, "ds1", str(raw))
    burst(owl_env)
    rerun(board, "ds1", ["a", "b"])
    burst(owl_env)
    assert done_why(board, "ds1")[2:] == [("a", "reused"), ("b", "")]


def test_provenance_survives_a_server_kill(tmp_path: Path) -> None:
    """SIGKILL of the embedded server right after completions: provenance comes back from
    the AOF with the item."""
    home = tmp_path / "home"
    client = Redis.from_url(ensure_server(home), decode_responses=True)
    board = Board(client, "killme", shards=2)
    tpl = Template(name="k", version="1", stages=(Stage("a", task="x:y"),))
    board.register_many(tpl, [(f"d{i}", "") for i in range(20)])
    for c in board.claim("w", "k", ["a"], 30, 20):
        prov = Provenance(item={"k": c.dataset, "in": [], "out": []}, env_id="e1",
                          env={"task": "x:y", "rf": [["DARKFILE", "jref$d.fits", "/r/d",
                                                      1, 2, "ab"]]})
        assert board.complete(c, {}, "w", prov).ok
    info = server_info(home)
    assert info is not None
    client.close()
    os.kill(info["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server_info(home) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    client = Redis.from_url(ensure_server(home), decode_responses=True)
    try:
        board = Board(client, "killme")
        for i in range(20):
            ds, s = f"d{i}", board.shard(f"d{i}")
            pv = client.hget(board.keys.dataset(s, ds), "a.pv")
            assert pv is not None and json.loads(pv)["k"] == ds
            assert client.hget(board.keys.refuse(s), "k|a|DARKFILE") is not None
    finally:
        client.close()
        stop_server(home)


def test_explain_says_why(owl_env: dict[str, str], board: Board, tmp_path: Path) -> None:
    from owl.explain import explain

    template, raw = setup(owl_env, tmp_path)
    board.register(template, "ds1", str(raw))
    before = {e.stage: e for e in explain(board, "ds1")}
    assert before["a"].verdict.startswith("would run")
    assert before["a"].differences == ("never completed",)
    assert any("no agent serves prov:a" in b for b in before["a"].blocked)
    assert before["b"].blocked[0] == "waiting for predecessor a (ready)"
    burst(owl_env)
    rerun(board, "ds1", ["a", "b"])
    burst(owl_env)
    got = subprocess.run([sys.executable, "-m", "owl", "explain", "ds1", "a"], env=owl_env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert got.returncode == 0, got.stderr
    assert "reused (its provenance matched" in got.stdout and "would be reused" in got.stdout
    out_b = Path(queries.dataset(board, "ds1").items[1].outputs["files"]["out"])
    out_b.unlink()
    (tmp_path / "refs" / "r1.txt").write_text("changed\n")
    after = {e.stage: e for e in explain(board, "ds1")}
    assert "a rerun now would run" in after["a"].verdict
    assert after["a"].differences == (
        f"REFFILE tref$r1.txt: reference file content changed ({tmp_path}/refs/r1.txt)",)
    assert f"output file missing: {out_b}" in after["b"].differences
    s = board.shard("ds1")
    board.redis.hset(board.keys.dataset(s, "ds1"), "rf", json.dumps({"REFFILE": "tref$r2.txt"}))
    (ref_change,) = explain(board, "ds1", "a")[0].differences
    assert ref_change == "REFFILE tref$r1.txt → tref$r2.txt"


def test_explain_names_a_changed_param(owl_env: dict[str, str], board: Board,
                                       tmp_path: Path) -> None:
    from owl.explain import explain

    template, raw = setup(owl_env, tmp_path)
    board.register(template, "ds1", str(raw))
    burst(owl_env)
    path = Path(owl_env["OWL_PIPELINES"].split(os.pathsep)[0]) / "prov.yaml"
    path.write_text(path.read_text().replace("version: '1'", "version: '2'").replace(
        'params: {ref: "tref$r1.txt"}', 'params: {ref: "tref$r1.txt", sigmas: [5, 4]}'))
    v2 = load_template(path)
    board.register(v2, "ds2", str(raw))  # pins version 2 on the board
    s = board.shard("ds1")
    board.redis.hset(board.keys.dataset(s, "ds1"), "v", "2")
    (a,) = explain(board, "ds1", "a")
    assert a.differences == ("param sigmas added: 5,4",)
