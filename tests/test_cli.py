"""The command line as operators and scripts use it (real board, real files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis

from owl.board import Board
from owl.cli.main import build_cli
from owl.demo_tasks import make_demo_frames

pytestmark = pytest.mark.timeout(120)


def owl(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(build_cli(), list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture
def frames(tmp_path: Path) -> list[Path]:
    return make_demo_frames(tmp_path / "incoming", 4)


def test_template_validate_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstages:\n  one:\n    task: m:f\n    retires: 3\n")
    out = owl({}, "template", "validate", str(bad), code=1)
    assert f"{bad}:5: stages.one: unknown key 'retires' (did you mean 'retry'?)" in out


def test_ingest_registers_once(owl_env: dict[str, str], frames: list[Path],
                               board: Board) -> None:
    out = owl(owl_env, "ingest", str(frames[0].parent))
    assert out.count("registered demo") == 4
    again = owl(owl_env, "ingest", str(frames[0]))
    assert "unchanged  demo0001: already on the board" in again
    rows = json.loads(owl(owl_env, "status", "--json"))
    assert rows["demo"]["ingest_check"] == {"ready": 4}
    assert rows["demo"]["combine"] == {"waiting": 4}


def test_ingest_reports_unmatched_header(owl_env: dict[str, str], tmp_path: Path,
                                         board: Board) -> None:
    from astropy.io import fits  # type: ignore[import-untyped]  # astropy: no py.typed

    path = tmp_path / "x0001_demo.fits"
    fits.PrimaryHDU(header=fits.Header([("INSTRUME", "WFC3")])).writeto(path)
    out = owl(owl_env, "ingest", str(path), code=1)
    assert "no template matches its header (INSTRUME='WFC3')" in out


def test_operator_commands(owl_env: dict[str, str], frames: list[Path], board: Board) -> None:
    owl(owl_env, "ingest", str(frames[0].parent))
    dry = owl(owl_env, "hold", "--stage", "ingest_check", "--dry-run")
    assert "would hold demo0001 ingest_check: ready -> held" in dry
    assert "4 item(s) would change (dry run: nothing changed)" in dry
    assert json.loads(owl(owl_env, "status", "--json"))["demo"]["ingest_check"] == {"ready": 4}
    owl(owl_env, "hold", "demo0002", "--stage", "ingest_check")
    grid = owl(owl_env, "status", "--grid")
    assert "demo0002             h w w w w" in grid
    shown = json.loads(owl(owl_env, "show", "demo0002", "--json"))
    assert [e["to"] for e in shown["history"] if e["st"] == "ingest_check"] == ["ready", "held"]
    released = json.loads(owl(owl_env, "release", "--state", "held", "--json"))
    assert [(r["dataset"], r["after"]) for r in released] == [("demo0002", "ready")]
    with pytest.raises(AssertionError, match="needs a filter"):
        owl(owl_env, "retry")
    assert owl(owl_env, "dead") == "no dead items\n"
    assert json.loads(owl(owl_env, "agents", "--json")) == []
    assert "dataset 'nope' is not on board" in owl(owl_env, "show", "nope", code=1)


@pytest.fixture
def demo_board(client: Redis[str], board_name: str) -> Iterator[str]:
    """A board name not yet on the server; whatever the test leaves there is deleted."""
    yield board_name
    Board(client, board_name).destroy()


def test_demo_runs_to_done(owl_env: dict[str, str], demo_board: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "owl", "demo", "-n", "14", "-a", "2"],
                          env=owl_env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "14 of 14 datasets done; 1 attempt(s) failed and were retried" in proc.stdout


def test_demo_refuses_a_board_it_did_not_make(owl_env: dict[str, str], frames: list[Path],
                                              board: Board) -> None:
    owl(owl_env, "ingest", str(frames[0].parent))
    out = owl(owl_env, "demo", "-n", "2", code=1)
    assert f"board {board.name!r} already exists and was not made by 'owl demo'" in out
    assert json.loads(owl(owl_env, "status", "--json"))["demo"]["ingest_check"] == {"ready": 4}


def test_demo_reruns_on_its_own_board(owl_env: dict[str, str], demo_board: str,
                                      client: Redis[str]) -> None:
    from owl.config import Settings
    from owl.demo_board import fresh_demo_board

    settings = Settings(redis_url=owl_env["OWL_REDIS_URL"], board=demo_board, shards=2)
    first = fresh_demo_board(settings)
    client.set(first.keys.agent("leftover"), "x")
    again = fresh_demo_board(settings)  # the demo's own board: emptied and reused
    assert client.get(again.keys.agent("leftover")) is None
    assert client.hget(again.keys.meta, "demo") == "1"


def test_watch_waits_for_complete_files(owl_env: dict[str, str], tmp_path: Path,
                                        board: Board) -> None:
    src = make_demo_frames(tmp_path / "made", 1)[0]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "owl", "ingest", "--watch", "--interval",
                             "0.2", str(inbox)], env=owl_env, stdout=subprocess.DEVNULL)
    try:
        data = src.read_bytes()
        target = inbox / src.name
        target.write_bytes(data[:5000])  # a partial copy: not a whole FITS file yet
        time.sleep(1.5)
        assert board.redis.zcard(board.keys.datasets(board.shard("demo0001"))) == 0
        target.write_bytes(data)
        end = time.monotonic() + 20
        while board.redis.zcard(board.keys.datasets(board.shard("demo0001"))) == 0:
            assert time.monotonic() < end, "the complete file was never registered"
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)


def test_typos_are_errors_with_did_you_mean(owl_env: dict[str, str], frames: list[Path],
                                            board: Board) -> None:
    owl(owl_env, "ingest", str(frames[0].parent))
    out = owl(owl_env, "hold", "demo0002", "-s", "combin", code=1)
    assert "stage 'combin' is not a stage of board" in out and "did you mean 'combine'?" in out
    out = owl(owl_env, "retry", "-t", "demoo", code=1)
    assert "template 'demoo' is not on board" in out and "did you mean 'demo'?" in out
    assert "did you mean 'demo'?" in owl(owl_env, "status", "-t", "dmeo", code=1)
    assert "template 'nosuch' is not on board" in owl(owl_env, "dead", "-t", "nosuch", code=1)
    assert "dataset 'demo0099' is not on board" in owl(owl_env, "hold", "demo0099", code=1)
    out = owl(owl_env, "retry", "--state", "dead", code=1)
    assert "'owl retry' matched no item: nothing selected is in state dead" in out
    assert json.loads(owl(owl_env, "status", "--json"))["demo"]["combine"] == {"waiting": 4}


def test_bad_redis_urls_are_one_line_errors(owl_env: dict[str, str]) -> None:
    base = owl_env["OWL_REDIS_URL"]
    if not base.startswith("redis://"):
        pytest.skip("the embedded server is reached by a unix socket URL")
    root = base.rsplit("/", 1)[0]
    for url, words in ((f"{root}/99", "refused the connection: DB index is out of range"),
                       (f"{root}/thirteen", "the path must be a database number")):
        proc = subprocess.run([sys.executable, "-m", "owl", "--redis", url, "status"],
                              env=owl_env, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1 and words in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr


def test_same_rootname_from_another_file_is_a_conflict(owl_env: dict[str, str],
                                                       frames: list[Path], tmp_path: Path,
                                                       board: Board) -> None:
    owl(owl_env, "ingest", str(frames[0]))
    other = tmp_path / "elsewhere" / frames[0].name
    other.parent.mkdir()
    other.write_bytes(frames[0].read_bytes())
    out = owl(owl_env, "ingest", str(other), code=1)
    assert f"is already on the board from another file, {frames[0].resolve()}" in out
    assert "unchanged" in owl(owl_env, "ingest", str(frames[0]))  # the same file: a no-op


def test_one_broken_template_does_not_stop_ingest(owl_env: dict[str, str], frames: list[Path],
                                                  board: Board) -> None:
    broken = Path(owl_env["OWL_PIPELINES"].split(os.pathsep)[0]) / "broken.yaml"
    broken.write_text("name: broken\nstages:\n  one: {task: m:f, retires: 3}\n")
    result = CliRunner().invoke(build_cli(), ["ingest", "--json", str(frames[0].parent)],
                                env=owl_env)
    assert result.exit_code == 1
    assert f"{broken}:3: stages.one: unknown key 'retires'" in result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]  # JSON Lines
    assert [r["status"] for r in rows] == ["registered"] * 4
