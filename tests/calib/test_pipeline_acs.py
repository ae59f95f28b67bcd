"""pipelines/acs_wfc.yaml on the engine: a simulated CR-split association is ingested
whole, calibrated stage by stage by a real agent, and its reference choice is on the board."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed

from owl import queries
from owl.board import Board
from owl.calib.simulate import simulate_set
from owl.server import ensure_server

pytestmark = pytest.mark.timeout(600)
REPO = Path(__file__).resolve().parents[2]


def test_association_through_the_engine(tmp_path: Path, embedded_home: Path) -> None:
    sim = simulate_set(tmp_path / "set", n_exposures=2, seed=3)
    board_name = "acs" + os.urandom(4).hex()
    env = {**os.environ, "OWL_REDIS_URL": ensure_server(embedded_home), "OWL_BOARD": board_name,
           "OWL_HOME": str(tmp_path / "home"), "OWL_PIPELINES": str(REPO / "pipelines"),
           "jref": f"{sim.directory / 'refs'}/"}
    raw_files = sorted(sim.directory.glob("*.fits"))
    before = {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in raw_files}
    ingest = subprocess.run([sys.executable, "-m", "owl", "ingest", str(sim.directory)],
                            env=env, capture_output=True, text=True, check=False)
    assert ingest.returncode == 0, ingest.stdout + ingest.stderr
    assert ingest.stdout.startswith("registered jsim01010 (acs_wfc)")
    assert ingest.stdout.count("member of association jsim01010") == 2
    agent = subprocess.run([sys.executable, "-m", "owl", "agent", "-t", "acs_wfc", "-c", "1",
                            "--burst"], env=env, capture_output=True, text=True, timeout=500,
                           check=False)
    assert agent.returncode == 0, agent.stderr[-3000:]
    from redis import Redis

    board = Board(Redis.from_url(env["OWL_REDIS_URL"], decode_responses=True), board_name)
    try:
        assert sim.asn is not None
        ds = queries.dataset(board, sim.asn.name[:9])
        states = {i.stage: i.state for i in ds.items}
        assert states == dict.fromkeys(("bestrefs", "acsccd", "acscte", "acsrej", "acs2d"),
                                       "done")
        outputs = {i.stage: i.outputs for i in ds.items}
        refs = outputs["bestrefs"]["refs"]
        assert {r["BIASFILE"] for r in refs.values()} == {"jref$owlsim_bia.fits"}
        flts = [Path(p) for p in outputs["acs2d"]["files"]["flt"]]
        crj = Path(outputs["acs2d"]["files"]["crj"])
        assert len(flts) == 2 and all(p.exists() for p in [*flts, crj])
        header = fits.getheader(crj)
        assert header["FLATCORR"] == "COMPLETE" and header["BIASFILE"] == "jref$owlsim_bia.fits"
        # bestrefs recorded its choice without touching the raw files
        assert {f: hashlib.sha256(f.read_bytes()).hexdigest() for f in raw_files} == before
        s = board.shard(ds.dataset)
        k = board.keys
        pe = board.redis.hget(k.dataset(s, ds.dataset), "acs2d.pe")
        used = {r[0]: r[1] for r in json.loads(board.redis.hget(k.pvenv(s), pe))["rf"]}
        assert used["DARKFILE"] == "jref$owlsim_drk.fits" and "BIASFILE" not in used
        assert board.redis.hget(k.refuse(s), "acs_wfc|acsccd|BIASFILE") is not None
        sel = board.redis.hget(k.dataset(s, ds.dataset), "sel")
        assert sel is not None and sel.count("|") == 2  # two members
    finally:
        board.destroy()
