"""Every ``--json`` output has a schema under schemas/cli/, and real outputs validate."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click
import jsonschema  # type: ignore[import-untyped]  # jsonschema ships no type information
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from owl.board import Board
from owl.cli.main import cli
from owl.demo_tasks import make_demo_frames
from owl.model import FailureClass
from owl.template import RetryPolicy, Stage, Template

pytestmark = pytest.mark.timeout(120)

SCHEMAS = Path(__file__).parent.parent / "schemas" / "cli"
ONCE = Template(name="once", version="1", stages=(Stage("a", retry=RetryPolicy(max_attempts=1)),))

#: The schema of each command's --json output (a command path -> schema file name).
OF = {"status": "status", "show": "show", "agents": "agents", "dead": "dead",
      "events": "events", "hold": "operator", "release": "operator", "retry": "operator",
      "skip": "operator", "ingest": "ingest", "board status": "board-status",
      "bestrefs": "bestrefs", "rerun": "rerun", "campaign create": "rerun",
      "campaign list": "campaign-list", "campaign show": "campaign-show",
      "campaign pause": "campaign-state", "campaign resume": "campaign-state",
      "campaign drain": "campaign-state", "campaign cancel": "campaign-state",
      "limit list": "limit-list", "explain": "explain", "refs diff": "refs-diff",
      "template migrate": "template-migrate", "refs apply": "refs-apply",
      "actions": "actions"}


def _json_commands(group: click.Group, prefix: str = "") -> list[str]:
    ctx = click.Context(group)
    out = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            out += _json_commands(command, f"{prefix}{name} ")
        elif command is not None and any("--json" in p.opts for p in command.params
                                         if isinstance(p, click.Option)):
            out.append(prefix + name)
    return out


def test_every_json_output_has_a_schema() -> None:
    commands = _json_commands(cli)
    assert len(commands) == len(set(commands)), "a command is listed twice"
    missing = [c for c in commands if c not in OF]
    assert not missing, (f"commands with --json but no schema in {SCHEMAS}: {missing} "
                         "(add schemas/cli/NAME.schema.json and map it in OF)")
    for name in set(OF.values()) | {"status-grid", "operator-dry-run"}:
        schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(schema)


def _check(name: str, doc: Any) -> None:
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(doc)


def _run(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


def test_real_outputs_validate(owl_env: dict[str, str], board: Board, tmp_path: Path) -> None:
    frames = make_demo_frames(tmp_path / "incoming", 3)
    lines = _run(owl_env, "ingest", "--json", str(frames[0].parent)).splitlines()
    assert len(lines) == 3
    for line in lines:
        _check("ingest", json.loads(line))
    board.register_many(ONCE, [("x1", "")])
    claim = board.claim("t", "once", ["a"], 30, 1)[0]
    board.fail(claim, FailureClass.ERROR, "no signal: mean is NaN", "Traceback: ...", 1, "t")
    agent = subprocess.Popen([sys.executable, "-m", "owl", "agent", "-t", "demo", "-s",
                              "combine"], env=owl_env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        end = time.monotonic() + 30
        while not (found := json.loads(_run(owl_env, "agents", "--json"))):
            assert time.monotonic() < end, "the agent never heartbeat"
            time.sleep(0.2)
        _check("agents", found)
        assert found[0]["rss_mb"] > 0, "the heartbeat carries the workers' memory"
    finally:
        agent.terminate()
        agent.wait(20)
    _check("status", json.loads(_run(owl_env, "status", "--json")))
    grid = json.loads(_run(owl_env, "status", "--grid", "--json", "--limit", "2"))
    _check("status-grid", grid)
    assert (grid["first"], grid["last"], grid["total"], grid["pages"]) == (1, 2, 4, 2)
    _check("show", json.loads(_run(owl_env, "show", "demo0001", "--json")))
    _check("show", YAML(typ="safe").load(io.StringIO(_run(owl_env, "show", "demo0002",
                                                          "--yaml"))))
    dead = json.loads(_run(owl_env, "dead", "--json"))
    _check("dead", dead)
    assert [d["message"] for d in dead] == ["no signal: mean is NaN"]
    assert json.loads(_run(owl_env, "dead", "--json", "--since", "1h")) == dead
    assert json.loads(_run(owl_env, "dead", "--json", "--since", "2999-01-01T00:00Z")) == []
    for line in _run(owl_env, "events", "--json", "-n", "30").splitlines():
        _check("events", json.loads(line))
    _check("operator-dry-run", json.loads(_run(owl_env, "hold", "demo0001", "--dry-run",
                                               "--json")))
    for action in ("hold", "release", "retry"):
        target = ["x1"] if action == "retry" else ["demo0001"]
        _check("operator", json.loads(_run(owl_env, action, *target, "--json")))
    _check("board-status", json.loads(_run(owl_env, "board", "status", "--json")))
    raw = tmp_path / "j1_raw.fits"
    from astropy.io import fits  # type: ignore[import-untyped]  # astropy: no py.typed

    fits.PrimaryHDU(header=fits.Header([("DETECTOR", "WFC"), ("CCDGAIN", 2.0),
                                        ("DATE-OBS", "2020-01-06"),
                                        ("TIME-OBS", "04:58:33")])).writeto(raw)
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - reftype: BIASFILE\n    match: {DETECTOR: WFC}\n"
                     "    useafter: '2002-03-01'\n    file: jref$b_bia.fits\n")
    _check("bestrefs", json.loads(_run(owl_env, "bestrefs", "--json", "--rules", str(rules),
                                       str(raw))))


ACS = Template(name="acs", version="1", stages=(Stage("ccd"), Stage("flt", after=("ccd",))))


def test_control_outputs_validate(owl_env: dict[str, str], board: Board) -> None:
    for i, date in enumerate(["2011-05-01", "2012-03-04", "2014-07-08"]):
        board.register(ACS, f"j{i}", meta={"INSTRUME": "ACS", "DATE-OBS": date})
    where = ["-t", "acs", "--where", "DATE-OBS>=2012-01-01", "-s", "flt"]
    _check("rerun", json.loads(_run(owl_env, "rerun", *where, "--dry-run", "--json")))
    made = json.loads(_run(owl_env, "campaign", "create", "redo", *where, "--json"))
    _check("rerun", made)
    assert made["campaign"] == "redo"
    _check("campaign-show", json.loads(_run(owl_env, "campaign", "show", "redo", "--json")))
    _check("campaign-list", json.loads(_run(owl_env, "campaign", "list", "--json")))
    for verb in ("pause", "resume", "drain", "cancel"):
        _check("campaign-state", json.loads(_run(owl_env, "campaign", verb, "redo",
                                                 "--dry-run", "--json")))
        _check("campaign-state", json.loads(_run(owl_env, "campaign", verb, "redo", "--json")))
    _run(owl_env, "limit", "set", "pool:scratch", "3")
    limits = json.loads(_run(owl_env, "limit", "list", "--json"))
    _check("limit-list", limits)
    assert {"name": "pool:scratch", "limit": 3, "from": "live", "held": 0} in limits


def test_provenance_and_migration_outputs_validate(owl_env: dict[str, str], board: Board,
                                                   tmp_path: Path) -> None:
    import os

    from owl.template_loader import load_template

    board.register(ACS, "j0", meta={"INSTRUME": "ACS", "DATE-OBS": "2012-03-04"})
    _check("explain", json.loads(_run(owl_env, "explain", "j0", "--json")))
    rules = tmp_path / "old.yaml"
    rules.write_text("rules:\n  - reftype: BIASFILE\n    match: {DETECTOR: WFC}\n"
                     "    useafter: '2002-03-01'\n    file: jref$b_bia.fits\n")
    new = tmp_path / "new.yaml"
    new.write_text(rules.read_text().replace("b_bia", "c_bia"))
    _check("refs-diff", json.loads(_run(owl_env, "refs", "diff", str(rules), str(new),
                                        "--json", "--list")))
    path = Path(owl_env["OWL_PIPELINES"].split(os.pathsep)[0]) / "mig.yaml"
    body = "stages:\n  first: {task: 'owl_testtasks:record'}\n"
    path.write_text(f"name: mig\nversion: '1'\n{body}  calib: {{task: 'owl_testtasks:record', "
                    "after: first}\n")
    board.register(load_template(path), "m1")
    path.write_text(f"name: mig\nversion: '2'\n{body}  calibrate: {{task: "
                    "'owl_testtasks:record', after: first}\n")
    for extra in (["--dry-run"], []):
        moved = json.loads(_run(owl_env, "template", "migrate", "-t", "mig", "--from-version",
                                "1", "--to-version", "2", "--json", *extra))
        _check("template-migrate", moved)
        assert [m["dataset"] for m in moved] == ["m1"]


def test_refs_apply_output_validates(owl_env: dict[str, str], board: Board,
                                     tmp_path: Path) -> None:
    """On the board tests/test_refs.py builds (datasets run through the real bestrefs)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("refs_board", Path(__file__).with_name(
        "test_refs.py"))
    assert spec is not None and spec.loader is not None
    refs_board = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(refs_board)
    _, old = refs_board.make_board(owl_env, tmp_path, board)
    new = tmp_path / "new.yaml"
    new.write_text(old.read_text() + refs_board.NEW_DARK)
    for extra in (["--dry-run"], []):
        got = json.loads(_run(owl_env, "refs", "apply", str(new), "--old", str(old),
                              "--campaign", "dark2", "--json", *extra))
        _check("refs-apply", got)
        assert got["rerun"] == 2
