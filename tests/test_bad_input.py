"""Bad input is refused where it is found: truncated FITS at ingest, and a task's
PermanentError makes its item dead at once instead of after every retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed
from click.testing import CliRunner

from owl import queries
from owl.agent import DEAD_EXIT
from owl.board import Board
from owl.cli.main import build_cli
from owl.demo_tasks import make_demo_frames
from owl.fitscheck import truncation

pytestmark = pytest.mark.timeout(120)


def _cut_at_block(src: Path, dst: Path) -> Path:
    """A copy of `src` cut inside its data, at a 2880-byte boundary (it looks whole)."""
    data = src.read_bytes()
    dst.write_bytes(data[: (len(data) // 2 // 2880) * 2880])
    return dst


def test_truncation_checks_every_hdu(tmp_path: Path) -> None:
    path = tmp_path / "mef.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.zeros((40, 40), np.float32)),
                  fits.ImageHDU(np.zeros((30, 30), np.int16))]).writeto(path)
    assert truncation(path) is None
    data = path.read_bytes()
    short = tmp_path / "short.fits"
    short.write_bytes(data[:-2880])  # the last extension's data block is gone
    why = truncation(short)
    assert why is not None and "extension 2 needs 1800 bytes of data" in why
    short.write_bytes(data[:4000])
    assert "header of extension 1 (at byte 2880) is cut short" in str(truncation(short))


def test_ingest_rejects_a_truncated_file(owl_env: dict[str, str], tmp_path: Path,
                                         board: Board) -> None:
    src = make_demo_frames(tmp_path / "made", 1)[0]
    cut = _cut_at_block(src, tmp_path / src.name)
    with warnings.catch_warnings():  # astropy: "File may have been truncated"
        warnings.simplefilter("ignore")
        assert fits.getheader(cut)["INSTRUME"] == "DEMO"  # the header alone reads fine
    result = CliRunner().invoke(build_cli(), ["ingest", str(cut)], env=owl_env)
    assert result.exit_code == 1
    assert "truncated: the primary HDU needs" in result.output
    assert "not registered" in result.output
    assert board.redis.zcard(board.keys.datasets(board.shard("demo0001"))) == 0


def test_watch_reports_a_file_stalled_truncated(owl_env: dict[str, str], tmp_path: Path,
                                                board: Board) -> None:
    src = make_demo_frames(tmp_path / "made", 1)[0]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "owl", "ingest", "--watch", "--json",
                             "--interval", "0.2", "--stall", "1", str(inbox)], env=owl_env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        _cut_at_block(src, inbox / src.name)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the stalled file is reported
        row = json.loads(line)
        assert row["status"] == "error" and "truncated" in row["detail"], row
        assert board.redis.zcard(board.keys.datasets(board.shard("demo0001"))) == 0
        (inbox / src.name).write_bytes(src.read_bytes())  # the copy is finished after all
        assert json.loads(proc.stdout.readline())["status"] == "registered"
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_permanent_error_is_dead_after_one_attempt(owl_env: dict[str, str],
                                                   board: Board) -> None:
    path = Path(owl_env["OWL_PIPELINES"].split(os.pathsep)[0]) / "perm.yaml"
    path.write_text("name: perm\nversion: '1'\nstages:\n  work:\n"
                    "    task: owl_testtasks:bad_input\n"
                    "    retry: {max_attempts: 5, backoff: {base: 0.1, jitter: 0}}\n")
    from owl.template_loader import load_template

    board.register(load_template(path), "ds1")
    env = {**owl_env, "OWL_RESCAN": "0.3"}
    start = time.monotonic()
    agent = subprocess.run([sys.executable, "-m", "owl", "agent", "-t", "perm", "--burst"],
                           env=env, capture_output=True, text=True, timeout=90)
    assert agent.returncode == DEAD_EXIT, agent.stdout + agent.stderr  # a burst with dead items
    ds = queries.dataset(board, "ds1")
    assert [(i.state, i.attempts) for i in ds.items] == [("dead", 1)]
    last = queries.failures(board, "ds1", "work")[-1]
    assert last["class"] == "permanent"
    assert "PermanentError: ds1: the input has no SCI extension" in last["message"]
    assert time.monotonic() - start < 60
