"""CLI conventions: lazy imports, strict JSON, the command table."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from owl.board import Board
from owl.cli.main import LAZY, MODULES, QUIET, cli
from owl.cli.output import jsonable, to_json
from owl.server import stop_server
from owl.template import Stage, Template

ROOT = Path(__file__).parent.parent
TWO = Template(name="two", version="1", stages=(Stage("first"), Stage("second", after=("first",))))


def test_lazy_table_names_every_command_once() -> None:
    listed: dict[str, str] = {}
    for module in MODULES:
        for command in importlib.import_module(module).COMMANDS:
            assert command.name not in listed, f"{command.name} is in two modules"
            listed[command.name] = module
    assert {n: m for n, (m, _, _) in LAZY.items() if n != "calib"} == listed
    ctx = click.Context(cli)
    for name, (_, _, short) in LAZY.items():
        command = cli.get_command(ctx, name)
        assert command is not None
        assert " ".join((command.help or "").split())[:20] == short[:20], (
            f"the help of {name!r} in LAZY differs from the command's own")


@pytest.mark.parametrize("args", [["--help"], ["status", "--json"], ["agents"],
                                  ["events", "-n", "1"]])
def test_quiet_commands_import_no_logging_condor_or_numba(tmp_path: Path,
                                                          args: list[str]) -> None:
    probe = textwrap.dedent(f"""
        import sys
        sys.argv = ["owl", *{args!r}]
        from owl.cli.main import main
        try:
            main()
        except SystemExit:
            pass
        heavy = [m for m in sys.modules
                 if m.split(".")[0] in ("structlog", "htcondor2", "numba", "astropy")]
        print("HEAVY", heavy, file=sys.stderr)
    """)
    try:
        proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                              text=True, timeout=60,
                              env={"OWL_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"})
    finally:  # the command started the embedded server there, which outlives it by design
        stop_server(tmp_path / "home")
    assert "HEAVY []" in proc.stderr, proc.stderr[-2000:]
    assert set(args) & {"status", "agents", "events"} <= QUIET | {"--help"}


def test_local_agent_modules_do_not_import_htcondor() -> None:
    proc = subprocess.run([sys.executable, "-c", "import sys, owl.agent, owl.cli.run; "
                           "print([m for m in sys.modules if m.startswith('htcondor')])"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_json_maps_nan_and_infinity_to_null_and_refuses_reprs() -> None:
    text = to_json({"mean": float("nan"), "peak": float("inf"), "low": -float("inf"),
                    "ok": 1.5, "path": Path("/x"), "tags": {"b", "a"}})
    assert json.loads(text) == {"mean": None, "peak": None, "low": None, "ok": 1.5,
                                "path": "/x", "tags": ["a", "b"]}
    assert "NaN" not in text and "Infinity" not in text
    with pytest.raises(TypeError, match="object is not JSON data"):
        jsonable(object())


def _complete(env: dict[str, str], words: str) -> list[str]:
    """What bash completion offers for the last word of `words` (click's protocol)."""
    parts = words.split(" ")
    proc = subprocess.run([sys.executable, "-m", "owl"], capture_output=True, text=True,
                          timeout=60, env={**env, "_OWL_COMPLETE": "bash_complete",
                                           "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)})
    assert proc.returncode == 0, proc.stderr
    return [line.split(",", 1)[1] for line in proc.stdout.splitlines() if line]


def test_shell_completion_offers_board_names(owl_env: dict[str, str], board: Board) -> None:
    board.register_many(TWO, [("demo0001", ""), ("demo0002", ""), ("other9", "")])
    assert _complete(owl_env, "owl show demo") == ["demo0001", "demo0002"]
    assert _complete(owl_env, "owl hold -t t") == ["two"]
    assert _complete(owl_env, "owl hold -t two -s ") == ["first", "second"]
    assert _complete(owl_env, "owl events -d oth") == ["other9"]
    gone = {**owl_env, "OWL_REDIS_URL": "", "OWL_HOME": owl_env["OWL_HOME"] + "-none"}
    assert _complete(gone, "owl show demo") == []  # no server: nothing offered, none started
    assert not Path(gone["OWL_HOME"]).exists()
