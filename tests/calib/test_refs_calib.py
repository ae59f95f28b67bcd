"""A new dark delivered to a board of simulated exposures calibrated by the real pipeline
(pipelines/acs_wfc.yaml: bestrefs, acsccd, acscte, acsrej, acs2d): ``owl refs apply``
selects exactly the exposure whose rules pick the new file, reruns only its acs2d, and the
new _flt is the old one minus the extra dark current; the first generation's file stays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl import queries
from owl.board import Board
from owl.calib.simulate import simulate_set
from owl.history import history
from owl.resources import data_path
from owl.server import ensure_server

pytestmark = pytest.mark.timeout(900)
REPO = Path(__file__).resolve().parents[2]
#: EXPSTART (MJD) of the three exposures: 2019-06-01, 2021-06-01, 2023-06-01.
STARTS = {"a1": 58635.5, "b1": 59366.5, "c1": 60096.5}
NEW_DARK = """
  - reftype: DARKFILE
    match: {DETECTOR: WFC, CCDAMP: ABCD, CCDGAIN: 2.0}
    useafter: "2022-01-01 00:00:00"
    file: jref$new_drk.fits
"""
EXTRA = 0.002  # e-/s per pixel the new dark adds


def owl(env: dict[str, str], *args: str, timeout: float = 120
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "owl", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, check=False, cwd=REPO)


def burst(env: dict[str, str]) -> None:
    got = owl(env, "agent", "-t", "acs_wfc", "-c", "2", "--burst", timeout=800)
    assert got.returncode == 0, got.stderr[-3000:]


def done_why(board: Board, ds: str) -> list[tuple[str, str]]:
    created = queries.dataset(board, ds).created_ms
    return [(e["st"], e["why"]) for e in history(board, ds, created) if e["to"] == "done"]


def dones(board: Board, ds: str) -> list[str]:
    return [stage for stage, _ in done_why(board, ds)]


def flt_of(board: Board, ds: str) -> Path:
    acs2d = next(i for i in queries.dataset(board, ds).items if i.stage == "acs2d")
    flt = acs2d.outputs["files"]["flt"]  # one path for a single exposure
    return Path(flt if isinstance(flt, str) else flt[0])


@pytest.mark.slow  # about 70 s: the whole chain twice through the engine; board-level refs tests
# (tests/test_refs.py) run by default
def test_a_new_dark_reruns_only_acs2d_of_the_exposure_it_selects(
        tmp_path: Path, embedded_home: Path) -> None:
    data = tmp_path / "data"
    for visit, start in STARTS.items():  # one reference set: the same seed writes it alike
        simulate_set(data, n_exposures=1, seed=5, expstart=start, visit=visit, n_stars=200,
                     n_bright=1)
    refs = data / "refs"
    with fits.open(refs / "owlsim_drk.fits") as dark:
        for hdu in dark:
            if hdu.name == "SCI":
                hdu.data = (hdu.data + EXTRA).astype(hdu.data.dtype)
        dark.writeto(refs / "new_drk.fits")
    old = tmp_path / "old.yaml"
    old.write_text(data_path("pipelines", "refs/acs_refs.yaml").read_text())
    new = tmp_path / "new.yaml"
    new.write_text(old.read_text() + NEW_DARK)
    name = "refcal" + os.urandom(4).hex()
    env = {**os.environ, "OWL_REDIS_URL": ensure_server(embedded_home), "OWL_BOARD": name,
           "OWL_HOME": str(tmp_path / "home"), "OWL_PIPELINES": str(REPO / "pipelines"),
           "OWL_WORK": str(tmp_path / "work"), "jref": f"{refs}/", "OWL_RESCAN": "0.3"}
    got = owl(env, "ingest", str(data))
    assert got.returncode == 0, got.stdout + got.stderr
    burst(env)
    from redis import Redis

    board = Board(Redis.from_url(env["OWL_REDIS_URL"], decode_responses=True), name)
    try:
        stages = ["bestrefs", "acsccd", "acscte", "acsrej", "acs2d"]
        roots = [f"jsim{v}01q" for v in STARTS]
        for ds in roots:
            assert sorted(dones(board, ds)) == sorted(stages), ds
        first = {ds: flt_of(board, ds) for ds in roots}
        before = {ds: fits.getdata(first[ds], "SCI", 1).copy() for ds in roots}

        diff = owl(env, "refs", "diff", str(old), str(new), "--json", "--list")
        assert diff.returncode == 0, diff.stderr
        report = json.loads(diff.stdout)
        assert report["scanned"] == 3 and report["affected"] == 1
        assert {d["dataset"] for d in report["datasets"]} == {"jsimc101q"}
        assert report["from_stage"] == {"acs2d": 1}

        applied = owl(env, "refs", "apply", str(new), "--old", str(old), "--campaign", "dark2",
                      "--json")
        assert applied.returncode == 0, applied.stderr
        assert json.loads(applied.stdout)["rerun"] == 1
        burst(env)

        assert sorted(dones(board, "jsimc101q")) == sorted([*stages, "acs2d"])
        for ds in ("jsima101q", "jsimb101q"):
            assert sorted(dones(board, ds)) == sorted(stages)
            assert flt_of(board, ds) == first[ds]
        rerun = flt_of(board, "jsimc101q")
        assert rerun != first["jsimc101q"] and first["jsimc101q"].exists()
        header = fits.getheader(rerun)
        assert header["DARKFILE"] == "jref$new_drk.fits"
        assert fits.getheader(first["jsimc101q"])["DARKFILE"] == "jref$owlsim_drk.fits"
        # acs2d subtracts dark x DARKTIME then divides by the flat: the new frame is the
        # old one minus EXTRA x DARKTIME / flat (~1 e-). Both frames are float32, rounded
        # at the subtraction and at the division: a few ulps of the value (rtol 5e-7), and
        # near zero an ulp of the pre-subtraction value of ~1e3 e- (atol 5e-4)
        darktime = float(header["DARKTIME"])
        with fits.open(refs / "owlsim_f606w_pfl.fits") as flat:
            chip2 = flat["SCI", 1].data  # SCI,1 of a WFC file is chip 2
            expected = before["jsimc101q"] - EXTRA * darktime / chip2
        after = fits.getdata(rerun, "SCI", 1)
        np.testing.assert_allclose(after, expected, rtol=5e-7, atol=5e-4)
        assert not np.allclose(after, before["jsimc101q"], rtol=0, atol=EXTRA * darktime / 2)

        # A rerun with nothing changed is reused, stage by stage, and explain says so
        again = owl(env, "rerun", "jsima101q", "--from-stage", "acsccd")
        assert again.returncode == 0, again.stderr
        burst(env)
        assert done_why(board, "jsima101q")[5:] == [
            ("acsccd", "reused"), ("acscte", "reused"), ("acsrej", "reused"),
            ("acs2d", "reused")]
        assert flt_of(board, "jsima101q") == first["jsima101q"]
        said = owl(env, "explain", "jsima101q", "acs2d")
        assert said.returncode == 0, said.stderr
        assert "reused (its provenance matched" in said.stdout, said.stdout
        # ... and a deleted output makes its stage run again (only that stage)
        first["jsima101q"].unlink()
        owl(env, "rerun", "jsima101q", "--from-stage", "acsccd").check_returncode()
        burst(env)
        assert done_why(board, "jsima101q")[9:] == [
            ("acsccd", "reused"), ("acscte", "reused"), ("acsrej", "reused"), ("acs2d", "")]
        assert flt_of(board, "jsima101q").exists()
    finally:
        board.destroy()
