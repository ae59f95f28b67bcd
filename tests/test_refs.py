"""Reference deliveries on a board of datasets run through the real bestrefs stage: a
changed rule selects exactly the datasets whose rules pick it, and they rerun only from the
stage that uses it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl import queries
from owl.board import Board
from owl.history import history
from owl.refs import Side, diff
from owl.resources import data_path
from owl.template import Template
from owl.template_loader import load_template

pytestmark = pytest.mark.timeout(180)

DATES = {"a": "2019-06-01", "b": "2021-06-01", "c": "2023-06-01"}
NEW_DARK = """
  - reftype: DARKFILE
    match: {DETECTOR: WFC, CCDAMP: ABCD, CCDGAIN: 2.0}
    useafter: "2022-01-01 00:00:00"
    file: jref$new_drk.fits
"""


def make_board(env: dict[str, str], tmp: Path, board: Board) -> tuple[Template, Path]:
    rules = tmp / "old.yaml"
    shutil.copy(data_path("pipelines", "refs/acs_refs.yaml"), rules)
    refs = tmp / "refs"
    refs.mkdir()
    for line in rules.read_text().splitlines():
        if "file: jref$" in line:
            name = line.split("jref$")[1].strip()
            (refs / name).write_text(f"{name}\n")
    (refs / "new_drk.fits").write_text("new dark\n")
    env["jref"] = f"{refs}/"
    path = Path(env["OWL_PIPELINES"].split(os.pathsep)[0]) / "acsref.yaml"
    path.write_text(f"""name: acsref
version: '1'
stages:
  bestrefs: {{task: "owl.calib.bestrefs_task:bestrefs", params: {{rules: "{rules}"}}}}
  acsccd: {{task: "owl_reftasks:uses_refs", after: bestrefs,
            params: {{names: [BIASFILE, CCDTAB]}}}}
  acs2d: {{task: "owl_reftasks:uses_refs", after: acsccd,
           params: {{names: [DARKFILE, PFLTFILE]}}}}
""")
    template = load_template(path)
    raws = tmp / "raw"
    raws.mkdir()
    for filt in ("F606W", "F814W"):
        for tag, day in DATES.items():
            ds = f"j{filt[1:4]}{tag}"
            h = fits.Header({"INSTRUME": "ACS", "DETECTOR": "WFC", "CCDAMP": "ABCD",
                             "CCDGAIN": 2.0, "FILTER1": filt, "FILTER2": "CLEAR2L",
                             "DATE-OBS": day, "TIME-OBS": "12:00:00", "ROOTNAME": ds})
            raw = raws / f"{ds}_raw.fits"
            fits.PrimaryHDU(header=h).writeto(raw)
            board.register(template, ds, str(raw))
    burst(env)
    return template, rules


def burst(env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "owl", "agent", "-t", "acsref", "-c", "2",
                           "--burst"], env={**env, "OWL_RESCAN": "0.2"}, capture_output=True,
                          text=True, timeout=150, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]


def owl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "owl", *args], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def dones(board: Board, ds: str) -> list[tuple[str, str]]:
    created = queries.dataset(board, ds).created_ms
    return [(e["st"], e["why"]) for e in history(board, ds, created) if e["to"] == "done"]


def test_new_dark_reruns_only_acs2d_of_the_datasets_it_selects(
        owl_env: dict[str, str], board: Board, tmp_path: Path) -> None:
    _, old = make_board(owl_env, tmp_path, board)
    new = tmp_path / "new.yaml"
    new.write_text(old.read_text() + NEW_DARK)
    got = owl(owl_env, "refs", "diff", str(old), str(new), "--json", "--list")
    assert got.returncode == 0, got.stderr
    report: dict[str, Any] = json.loads(got.stdout)
    assert report["scanned"] == 6 and report["affected"] == 2
    assert report["changes"] == [{"reftype": "DARKFILE", "old": "jref$owlsim_drk.fits",
                                  "new": "jref$new_drk.fits", "datasets": 2,
                                  "stages": ["acs2d"]}]
    assert {d["dataset"] for d in report["datasets"]} == {"j606c", "j814c"}
    assert report["from_stage"] == {"acs2d": 2}

    plan = owl(owl_env, "refs", "apply", str(new), "--old", str(old), "--campaign", "dark2",
               "--dry-run")
    assert plan.returncode == 0, plan.stderr
    assert "rerun from acs2d: 2 datasets" in plan.stdout and "nothing changed" in plan.stdout
    assert board.redis.hget(board.keys.dataset(board.shard("j606c"), "j606c"), "rf") is None

    done = owl(owl_env, "refs", "apply", str(new), "--old", str(old), "--campaign", "dark2",
               "--json")
    assert done.returncode == 0, done.stderr
    applied = json.loads(done.stdout)
    assert applied["created"]["selected"] == 2 and applied["rerun"] == 2
    assert board.redis.hget(board.keys.refs, "current") == applied["rules_version"]
    rf = board.redis.hget(board.keys.dataset(board.shard("j606c"), "j606c"), "rf")
    assert json.loads(rf or "{}") == {"DARKFILE": "jref$new_drk.fits"}
    burst(owl_env)
    for ds in ("j606c", "j814c"):
        assert dones(board, ds) == [("bestrefs", ""), ("acsccd", ""), ("acs2d", ""),
                                    ("acs2d", "")]
        out = queries.dataset(board, ds).items[2].outputs["files"]["out"]
        assert Path(out).read_text().startswith("new dark")
    for ds in ("j606a", "j606b", "j814a", "j814b"):
        assert dones(board, ds) == [("bestrefs", ""), ("acsccd", ""), ("acs2d", "")]
    assert queries.dataset(board, "j606c").items[2].state == "done"
    # The same change again moves nothing: the new choice is already the old one.
    assert diff(board, Side.read(new), Side.read(new)).affected == ()
    again = owl(owl_env, "refs", "apply", str(new), "--campaign", "dark3")
    assert again.returncode == 1 and "no dataset needs reprocessing" in again.stderr


def test_redelivered_file_selects_the_datasets_that_chose_it(
        owl_env: dict[str, str], board: Board, tmp_path: Path) -> None:
    _, old = make_board(owl_env, tmp_path, board)
    again = tmp_path / "again"
    shutil.copytree(tmp_path / "refs", again)
    (again / "owlsim_f606w_pfl.fits").write_text("better flat\n")
    got = owl(owl_env, "refs", "diff", str(tmp_path / "refs"), str(again), "--rules", str(old),
              "--json")
    assert got.returncode == 0, got.stderr
    report = json.loads(got.stdout)
    assert report["affected"] == 3 and report["from_stage"] == {"acs2d": 3}
    (change,) = report["changes"]
    assert change["reftype"] == "PFLTFILE" and change["old"] == "jref$owlsim_f606w_pfl.fits"
