"""What an agent checks when it starts: task modules importable by its workers, a writable
OWL_WORK, the board's copy of its template version, and items it will not run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from owl import queries
from owl.board import Board
from owl.template import Template
from owl.template_loader import load_template

pytestmark = pytest.mark.timeout(120)

FAST = "retry: {max_attempts: 2, backoff: {base: 0.1, factor: 1, max: 0.1, jitter: 0}}"


def pipelines(env: dict[str, str]) -> Path:
    return Path(env["OWL_PIPELINES"].split(os.pathsep)[0])


def write(env: dict[str, str], name: str, body: str, version: str = "1") -> Template:
    path = pipelines(env) / f"{name}.yaml"
    path.write_text(f"name: {name}\nversion: '{version}'\nstages:\n{body}")
    return load_template(path)


def agent(env: dict[str, str], *args: str, cwd: Path | None = None,
          python: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *python, "-m", "owl", "agent", *args, "--burst"],
                          env={**env, "OWL_RESCAN": "0.3"}, cwd=cwd, capture_output=True,
                          text=True, timeout=90)


def state(board: Board, ds: str, stage: str) -> str:
    return next(i.state for i in queries.dataset(board, ds).items if i.stage == stage)


def test_a_task_module_typo_stops_the_agent_before_any_claim(owl_env: dict[str, str],
                                                             board: Board) -> None:
    t = write(owl_env, "typo", f"  work:\n    task: owl_testtaskz:record\n    {FAST}\n")
    board.register(t, "ds1")
    proc = agent(owl_env, "-t", "typo")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "the agent cannot run its stages" in proc.stderr
    assert "stage 'work': task 'owl_testtaskz:record': cannot import module 'owl_testtaskz'" \
        in proc.stderr
    assert "PYTHONPATH" in proc.stderr
    assert state(board, "ds1", "work") == "ready"


def test_a_missing_function_is_named(owl_env: dict[str, str], board: Board) -> None:
    write(owl_env, "nofunc", "  work: {task: 'owl_testtasks:recrod'}\n")
    proc = agent(owl_env, "-t", "nofunc")
    assert proc.returncode == 1
    assert "module 'owl_testtasks' has no function 'recrod'" in proc.stderr


def test_a_module_only_in_the_current_directory_is_refused(owl_env: dict[str, str],
                                                           tmp_path: Path,
                                                           board: Board) -> None:
    here = tmp_path / "here"
    here.mkdir()
    (here / "mytasks.py").write_text("def work(ctx):\n    return {}\n")
    write(owl_env, "cwdmod", "  work: {task: 'mytasks:work'}\n")
    # -P: no current directory on sys.path, as for the installed `owl` command.
    proc = agent(owl_env, "-t", "cwdmod", cwd=here, python=("-P",))
    assert proc.returncode == 1
    assert "cannot import module 'mytasks': ModuleNotFoundError" in proc.stderr
    env = {**owl_env, "PYTHONPATH": os.pathsep.join([str(here), owl_env["PYTHONPATH"]])}
    assert agent(env, "-t", "cwdmod", cwd=here, python=("-P",)).returncode == 0


def test_an_unwritable_work_dir_stops_the_agent(owl_env: dict[str, str], tmp_path: Path,
                                                board: Board) -> None:
    write(owl_env, "wd", "  work: {task: 'owl_testtasks:record'}\n")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    proc = agent({**owl_env, "OWL_WORK": str(blocker / "work")}, "-t", "wd")
    assert proc.returncode == 1
    assert f"OWL_WORK={blocker / 'work'} is not writable" in proc.stderr


def test_an_argv_program_not_on_path_is_named(owl_env: dict[str, str], board: Board) -> None:
    write(owl_env, "noprog", "  work: {argv: [no-such-program-owl, '{input}']}\n")
    proc = agent(owl_env, "-t", "noprog")
    assert proc.returncode == 1
    assert "program 'no-such-program-owl' of its argv is not on PATH" in proc.stderr


def test_edited_template_under_the_same_version_is_refused(owl_env: dict[str, str],
                                                           board: Board) -> None:
    t = write(owl_env, "pinned", "  work:\n    task: owl_testtasks:record\n"
                                 "    params: {gain: 1}\n")
    board.register(t, "ds1")
    write(owl_env, "pinned", "  work:\n    task: owl_testtasks:record\n    params: {gain: 2}\n")
    proc = agent(owl_env, "-t", "pinned")
    assert proc.returncode == 1
    assert "version '1' on board" in proc.stderr and "has different content" in proc.stderr
    assert state(board, "ds1", "work") == "ready"


def test_items_of_another_version_are_held_not_run(owl_env: dict[str, str],
                                                   board: Board) -> None:
    old = write(owl_env, "vers", "  work: {task: 'owl_testtasks:always_crash'}\n", version="1")
    board.register(old, "old1")
    new = write(owl_env, "vers", "  work: {task: 'owl_testtasks:record'}\n", version="2")
    board.register(new, "new1")
    proc = agent(owl_env, "-t", "vers")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "datasets pinned to template vers version 1" in proc.stderr
    assert "--from-version 1 --to-version 2" in proc.stderr
    assert state(board, "new1", "work") == "done"
    assert state(board, "old1", "work") == "held"  # never run: not this agent's content
    assert queries.failures(board, "old1", "work") == []


def test_same_content_under_another_version_runs(owl_env: dict[str, str],
                                                 board: Board) -> None:
    body = "  work: {task: 'owl_testtasks:record'}\n"
    board.register(write(owl_env, "same", body, version="1"), "a1")
    write(owl_env, "same", body, version="2")
    proc = agent(owl_env, "-t", "same")
    assert proc.returncode == 0, proc.stderr
    assert state(board, "a1", "work") == "done"


def test_a_renamed_stage_with_pending_items_is_warned_about(owl_env: dict[str, str],
                                                            board: Board) -> None:
    board.register(write(owl_env, "ren", "  calib: {task: 'owl_testtasks:record'}\n"), "d1")
    write(owl_env, "ren", "  calibrate: {task: 'owl_testtasks:record'}\n", version="2")
    proc = agent(owl_env, "-t", "ren")
    assert "1 item(s) of stage 'calib' of template ren are waiting, ready or retrying" \
        in proc.stderr
