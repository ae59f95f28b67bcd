"""The control commands as an operator types them: clear errors, exit status, dry runs."""

from __future__ import annotations

import json
import subprocess
import sys

from owl import queries
from owl.board import Board
from owl.template import Stage, Template

TPL = Template(name="acs", version="1", stages=(Stage("ccd"), Stage("flt", after=("ccd",))))


def owl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "owl", *args], env=env, capture_output=True,
                          text=True, timeout=60)


def _board_with(board: Board) -> None:
    for i, date in enumerate(["2011-05-01", "2012-03-04", "2014-07-08"]):
        board.register(TPL, f"j{i}", meta={"INSTRUME": "ACS", "DATE-OBS": date})


def test_typos_are_errors_with_a_suggestion(owl_env: dict[str, str], board: Board) -> None:
    _board_with(board)
    got = owl(owl_env, "pause", "stage", "acs:flx")
    assert got.returncode == 1
    assert "stage 'flx' is not a stage of template 'acs'" in got.stderr
    assert "did you mean 'flt'" in got.stderr
    got = owl(owl_env, "pause", "template", "acz")
    assert got.returncode == 1 and "did you mean 'acs'" in got.stderr
    got = owl(owl_env, "campaign", "show", "nosuch")
    assert got.returncode == 1 and "no campaign 'nosuch'" in got.stderr
    got = owl(owl_env, "drain", "no-such-agent")
    assert got.returncode == 1 and "no agent 'no-such-agent'" in got.stderr
    got = owl(owl_env, "rerun", "j0", "-s", "flx", "--dry-run")
    assert got.returncode == 1 and "no stage 'flx' (did you mean 'flt'?)" in got.stderr
    got = owl(owl_env, "explain", "j0", "flx")
    assert got.returncode == 1 and "(did you mean 'flt'?)" in got.stderr


def test_a_selection_that_matches_nothing_says_why(owl_env: dict[str, str],
                                                   board: Board) -> None:
    _board_with(board)
    got = owl(owl_env, "campaign", "create", "c1", "-t", "acs", "--where", "INSTRUME=WFC3")
    assert got.returncode == 1
    assert "3 dataset(s) looked at, none passes INSTRUME=WFC3" in got.stderr
    got = owl(owl_env, "rerun", "-t", "acs", "--where", "DATE-OBS=>2012")
    assert got.returncode == 1 and "filter 'DATE-OBS=>2012'" in got.stderr


def test_campaign_dry_run_then_create_show_cancel(owl_env: dict[str, str],
                                                  board: Board) -> None:
    _board_with(board)
    dry = owl(owl_env, "campaign", "create", "redo", "-t", "acs", "--where",
              "DATE-OBS>=2012-01-01", "-s", "flt", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert sorted(d["dataset"] for d in plan["datasets"]) == ["j1", "j2"]
    assert all(d["stages"] == ["flt"] for d in plan["datasets"])
    assert owl(owl_env, "campaign", "list", "--json").stdout.count('"redo"') == 0
    made = owl(owl_env, "campaign", "create", "redo", "-t", "acs", "--where",
               "DATE-OBS>=2012-01-01", "-s", "flt", "--weight", "2", "--band", "bulk")
    assert made.returncode == 0, made.stderr
    shown = json.loads(owl(owl_env, "campaign", "show", "redo", "--json").stdout)
    assert (shown["band"], shown["weight"], shown["selected"]) == ("bulk", 2.0, 2)
    assert shown["stages"]["flt"] == {"waiting": 2}
    again = owl(owl_env, "campaign", "create", "redo", "-t", "acs")
    assert again.returncode == 1 and "already exists" in again.stderr
    cancel = owl(owl_env, "campaign", "cancel", "redo", "--dry-run")
    assert cancel.returncode == 0 and "cancelled" in cancel.stdout
    assert owl(owl_env, "campaign", "cancel", "redo", "--reason", "wrong dates").returncode == 0
    assert json.loads(owl(owl_env, "campaign", "show", "redo", "--json").stdout)["state"] == \
        "cancelled"
    refused = owl(owl_env, "campaign", "resume", "redo")
    assert refused.returncode == 1 and "cannot become active" in refused.stderr


def test_pause_shows_in_status_and_resume_lifts_it(owl_env: dict[str, str],
                                                   board: Board) -> None:
    _board_with(board)
    assert owl(owl_env, "pause", "stage", "acs:ccd", "--reason", "bad bias").returncode == 0
    status = owl(owl_env, "status").stdout
    assert "paused stage acs:ccd: bad bias" in status
    assert board.claim("w", "acs", ["ccd"], 30, 10) == []
    again = owl(owl_env, "pause", "stage", "acs:ccd")
    assert again.returncode == 1 and "paused" in again.stderr
    assert owl(owl_env, "resume", "stage", "acs:ccd").returncode == 0
    assert len(board.claim("w", "acs", ["ccd"], 30, 10)) == 3
    assert owl(owl_env, "resume", "stage", "acs:ccd").returncode == 1
    log = [json.loads(line) for line in owl(owl_env, "actions", "--json").stdout.splitlines()]
    assert [(a["what"], a["name"], a["why"]) for a in log] == [
        ("pause", "acs:ccd", "bad bias"), ("resume", "acs:ccd", "")]
    assert all(a["by"].startswith("operator:") for a in log)


def test_limit_set_list_unset(owl_env: dict[str, str], board: Board) -> None:
    _board_with(board)
    assert owl(owl_env, "limit", "set", "db_writes", "4").returncode == 0
    rows = json.loads(owl(owl_env, "limit", "list", "--json").stdout)
    assert rows == [{"name": "pool:db_writes", "limit": 4, "from": "live", "held": 0}]
    assert owl(owl_env, "limit", "unset", "db_writes").returncode == 0
    gone = owl(owl_env, "limit", "unset", "db_writes")
    assert gone.returncode == 1 and "no live limit" in gone.stderr


def test_rerun_of_named_datasets(owl_env: dict[str, str], board: Board) -> None:
    _board_with(board)
    got = owl(owl_env, "rerun", "j0", "nosuch", "-s", "flt")
    assert got.returncode == 1 and "nosuch" in got.stderr
    got = owl(owl_env, "rerun", "j0", "-s", "flt")
    assert got.returncode == 0, got.stderr
    assert "rerun: 1 now" in got.stdout
    assert queries.dataset(board, "j0").items[1].state == "waiting"
