"""owl template migrate: in-flight datasets move to a new version explicitly, dry run first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from owl import queries
from owl.board import Board
from owl.cli.main import build_cli
from owl.template import Template
from owl.template_loader import load_template

pytestmark = pytest.mark.timeout(120)

OLD = ("  first: {task: 'owl_testtasks:record'}\n"
       "  calib: {task: 'owl_testtasks:record', after: first}\n")
NEW = ("  first: {task: 'owl_testtasks:record'}\n"
       "  calibrate: {task: 'owl_testtasks:record', after: first}\n")


def write(env: dict[str, str], body: str, version: str) -> Template:
    path = Path(env["OWL_PIPELINES"].split(os.pathsep)[0]) / "mig.yaml"
    path.write_text(f"name: mig\nversion: '{version}'\nstages:\n{body}")
    return load_template(path)


def owl(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(build_cli(), list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def states(board: Board, ds: str) -> dict[str, str]:
    return {i.stage: i.state for i in queries.dataset(board, ds).items}


def test_migrate_moves_in_flight_datasets(owl_env: dict[str, str], board: Board) -> None:
    old = write(owl_env, OLD, "1")
    for ds in ("d1", "d2", "d3", "d4"):
        board.register(old, ds)
    claims = {c.dataset: c for c in board.claim("t", "mig", ["first"], 30, 4)}
    board.complete(claims["d1"], {"n": 1}, "t")  # d1: first done, calib ready
    board.complete(claims["d4"], {"n": 4}, "t")
    for c in board.claim("t", "mig", ["calib"], 30, 4):
        if c.dataset == "d4":
            board.complete(c, {}, "t")  # d4 finished
        else:
            board.giveback(c, "t")
    board.giveback(claims["d2"], "t")  # d2: nothing done yet; d3 stays running
    write(owl_env, NEW, "2")

    dry = owl(owl_env, "template", "migrate", "--from-version", "1", "--to-version", "2",
              "--dry-run")
    assert "d1 1 -> 2: would move: keep first; start calibrate; drop calib" in dry
    assert "d2 1 -> 2: would move: keep -; start first, calibrate; drop calib" in dry
    assert "d3 1 -> 2: stage first is running: not moved" in dry
    assert "d4 1 -> 2: finished: nothing left to run" in dry
    assert "2 of 4 dataset(s) would move (dry run: nothing changed)" in dry
    assert states(board, "d1") == {"first": "done", "calib": "ready"}

    out = json.loads(owl(owl_env, "template", "migrate", "--from-version", "1",
                         "--to-version", "2", "--json"))
    assert {r["dataset"]: r["outcome"] for r in out}["d1"] == "moved"
    assert states(board, "d1") == {"first": "done", "calibrate": "ready"}
    assert states(board, "d2") == {"first": "ready", "calibrate": "waiting"}
    assert queries.dataset(board, "d1").version == "2"
    assert queries.dataset(board, "d3").version == "1"
    counts = queries.counts(board)
    assert ("mig", "calib", "ready") not in counts  # the old stage's items are gone

    board.complete(claims["d3"], {}, "t")  # d3's running item finishes...
    env = {**owl_env, "OWL_RESCAN": "0.3"}
    owl(owl_env, "template", "migrate", "--from-version", "1", "--to-version", "2")  # ...moves
    agent = subprocess.run([sys.executable, "-m", "owl", "agent", "-t", "mig", "--burst"],
                           env=env, capture_output=True, text=True, timeout=90)
    assert agent.returncode == 0, agent.stderr
    for ds in ("d1", "d2", "d3"):
        assert states(board, ds) == {"first": "done", "calibrate": "done"}, ds


def test_migrate_names_what_is_wrong(owl_env: dict[str, str], board: Board) -> None:
    board.register(write(owl_env, OLD, "1"), "d1")
    out = owl(owl_env, "template", "migrate", "--from-version", "7", "--to-version", "2",
              code=1)
    assert "version '7' is not on board" in out and "pinned versions: mig 1" in out
    out = owl(owl_env, "template", "migrate", "--from-version", "1", "--to-version", "9",
              code=1)
    assert "version '9' of template 'mig' is neither on board" in out
