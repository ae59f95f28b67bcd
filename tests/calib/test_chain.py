"""Raw → ``_flt`` on a simulated exposure recovers the truth; switches, HISTORY and the CLI.

Error budget of the recovered sky (truth 0.06 e/s x 500 s = 30 e per pixel): the per-amp
bias level comes from 20 overscan columns x 2048 rows with 4-5 e read noise, a fit good to
~0.03 e; the statistical error of the mean over ~8 million sky pixels is ~0.003 e. The test
allows 0.1 e (3x the bias term). Star fluxes are compared in 21 x 21 boxes (the simulator's
PSF stamp, so each star's flux is all inside) between the ``_flt`` and the noiseless truth
scene; the difference divided by the propagated ERR must look like unit noise: median within
0.15, and fewer than 1 % of stars beyond 5 sigma.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits  # type: ignore[import-untyped]  # astropy ships no py.typed
from click.testing import CliRunner

from owl.calib.calacs import calacs
from owl.calib.cli import calib
from owl.calib.fitsio import read_frame
from owl.calib.simulate import SimulatedSet, simulate_set

STEPS = {"DQICORR": "BPIXTAB", "BIASCORR": "BIASFILE", "BLEVCORR": "OSCNTAB",
         "DARKCORR": "DARKFILE", "FLATCORR": "PFLTFILE", "PHOTCORR": "IMPHTTAB"}


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("chain")
    sim: SimulatedSet = simulate_set(root / "in", n_exposures=1, seed=21, visit="07")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("jref", str(sim.refs.directory) + "/")
        products = calacs(sim.exposures[0].raw, output_dir=root / "out")
        yield {"sim": sim, "flt": products.files["flt"][0], "root": root}


def test_products_and_no_leftover_temporary_files(single: dict[str, Any]) -> None:
    out = single["root"] / "out"
    assert sorted(p.name for p in out.iterdir()) == ["jsim0701q.tra", "jsim0701q_flt.fits"]


def test_switches_complete_and_history_names_reference_files(single: dict[str, Any]) -> None:
    h = fits.getheader(single["flt"])
    history = "\n".join(str(c) for c in h["HISTORY"])
    for step, ref in STEPS.items():
        assert h[step] == "COMPLETE", step
        assert f"{step} complete: " in history and str(h[ref]) in history, step
    assert h["CAL_VER"].startswith("owl ")
    sci = fits.getheader(single["flt"], ("SCI", 1))
    assert sci["BUNIT"] == "ELECTRONS" and sci["LTV1"] == 0.0
    assert fits.getdata(single["flt"], ("SCI", 1)).shape == (2048, 4096)


def test_sky_is_recovered(single: dict[str, Any]) -> None:
    sim: SimulatedSet = single["sim"]
    truth = sim.exposures[0].truth
    flt = read_frame(single["flt"])
    for imset in flt.imsets:
        ext = imset.extver - 1
        sky = (truth.scene[ext] == np.float32(truth.sky)) & (imset.dq == 0) \
            & ~truth.cr_mask[ext]
        resid = (imset.sci - truth.sky)[sky] / imset.err[sky]
        keep = np.abs(resid) < 5  # hot-pixel tails; symmetric, so the mean is unbiased
        assert abs(float(np.mean((imset.sci[sky] - truth.sky)[keep]))) < 0.1


def test_star_fluxes_are_recovered_within_their_errors(single: dict[str, Any]) -> None:
    sim: SimulatedSet = single["sim"]
    truth = sim.exposures[0].truth
    flt = read_frame(single["flt"])
    z = []
    for imset in flt.imsets:
        ext = imset.extver - 1
        for star in truth.stars[truth.stars["chip"] == imset.chip]:
            x, y = round(float(star["x"])), round(float(star["y"]))
            box = (slice(y - 10, y + 11), slice(x - 10, x + 11))
            if (imset.dq[box] != 0).any() or truth.cr_mask[ext][box].any():
                continue
            diff = float(imset.sci[box].sum(dtype=np.float64)
                         - truth.scene[ext][box].sum(dtype=np.float64))
            z.append(diff / float(np.sqrt((imset.err[box].astype(np.float64) ** 2).sum())))
    zs = np.array(z)
    assert zs.size > 1000
    assert abs(np.median(zs)) < 0.15
    assert (np.abs(zs) > 5).mean() < 0.01


def test_cli_runs_and_refuses_to_overwrite(single: dict[str, Any]) -> None:
    sim: SimulatedSet = single["sim"]
    raw = sim.exposures[0].raw
    runner = CliRunner()
    env = {"jref": str(sim.refs.directory) + "/"}
    out = single["root"] / "cli"
    ok = runner.invoke(calib, ["calacs", "-1", "--output-dir", str(out), str(raw)], env=env)
    assert ok.exit_code == 0, ok.output
    assert (out / "jsim0701q_flt.fits").exists()
    again = runner.invoke(calib, ["calacs", "--output-dir", str(out), str(raw)], env=env)
    assert again.exit_code == 1
    assert "output exists" in again.output and len(again.output.strip().splitlines()) == 1


def test_cli_reports_a_corrupt_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "jbad01abq_raw.fits"
    bad.write_bytes(b"SIMPLE  = T" + b"\0" * 100)
    result = CliRunner().invoke(calib, ["acsccd", str(bad)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("acsccd: error: ") and str(bad) in lines[0]
    missing = CliRunner().invoke(calib, ["acs2d", str(tmp_path / "nope_blv_tmp.fits")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_cr_split_association_through_the_cli(tmp_path: Path) -> None:
    sim = simulate_set(tmp_path / "in", n_exposures=2, seed=5, visit="08")
    assert sim.asn is not None
    env = {"jref": str(sim.refs.directory) + "/"}
    out = tmp_path / "out"
    result = CliRunner().invoke(calib, ["calacs", "-s", "--output-dir", str(out),
                                        str(sim.asn)], env=env)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["jsim08010.tra", "jsim08010_crj.fits", "jsim08010_crj_tmp.fits",
                     "jsim0801q.tra", "jsim0801q_blv_tmp.fits", "jsim0801q_flt.fits",
                     "jsim0802q.tra", "jsim0802q_blv_tmp.fits", "jsim0802q_flt.fits"]
    h = fits.getheader(out / "jsim08010_crj.fits")
    assert h["CRCORR"] == "COMPLETE" and h["EXPTIME"] == 1000.0 and h["DARKCORR"] == "COMPLETE"


def test_engine_tasks_chain_stage_by_stage(single: dict[str, Any], tmp_path: Path) -> None:
    import json

    import structlog

    from owl.calib import tasks
    from owl.task import TaskContext

    sim: SimulatedSet = single["sim"]
    inputs: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("jref", str(sim.refs.directory) + "/")
        for stage in ("acsccd", "acscte", "acsrej", "acs2d"):
            ctx = TaskContext(dataset="jsim0701q", stage=stage, attempt=1, token=1,
                              input_path=Path(sim.exposures[0].raw), inputs=dict(inputs),
                              output_path=tmp_path / stage, params={}, refs={},
                              log=structlog.get_logger("test"))
            result = getattr(tasks, stage)(ctx)
            json.dumps(result)
            inputs[stage] = result
    assert Path(inputs["acsccd"]["files"]["blv_tmp"]).name == "jsim0701q_blv_tmp.fits"
    assert inputs["acscte"]["files"] == {} and inputs["acsrej"]["files"] == {}
    flt = Path(inputs["acs2d"]["files"]["flt"])
    assert flt.parent == tmp_path / "acs2d" and fits.getheader(flt)["FLATCORR"] == "COMPLETE"
