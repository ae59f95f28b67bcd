"""The numba kernels equal their numpy reference; bias/dark/flat/ERR arithmetic equals ccdproc.

Tolerances: numba and numpy do the same float32 operations in the same order, so they are
held to 1e-6 relative (float32 has 6e-8 resolution; a few ulp of slack covers a compiler
that fuses or reorders). ccdproc works through astropy NDData arithmetic; the data are
chosen far from zero so no subtraction cancels digits, and results agree to 1e-6 relative.
"""

from __future__ import annotations

from typing import Any

import astropy.units as u  # type: ignore[import-untyped]  # astropy ships no py.typed
import ccdproc
import numpy as np
import pytest
from astropy.nddata import CCDData, StdDevUncertainty  # type: ignore[import-untyped]  # ditto

from owl.calib import kernels as K
from owl.calib import kernels_numpy as N

RTOL = 1e-6
SHAPE = (64, 96)
AMPX, AMPY = 50, 20


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(42)


def _images(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "sci": rng.normal(3000.0, 300.0, SHAPE).astype(np.float32),
        "err": rng.uniform(5.0, 60.0, SHAPE).astype(np.float32),
        "dq": rng.choice(np.array([0, 0, 0, 4, 32], np.int16), SHAPE),
        "ref_sci": rng.normal(100.0, 5.0, SHAPE).astype(np.float32),
        "ref_err": rng.uniform(0.1, 2.0, SHAPE).astype(np.float32),
        "ref_dq": rng.choice(np.array([0, 0, 16], np.int16), SHAPE),
        "flat": rng.normal(1.0, 0.05, SHAPE).astype(np.float32),
    }


def _both(name: str, arrays: list[np.ndarray], *args: Any) -> tuple[list[np.ndarray], ...]:
    """Run kernel ``name`` from both modules on copies of ``arrays``; return both results."""
    a = [x.copy() for x in arrays]
    b = [x.copy() for x in arrays]
    getattr(K, name)(*a, *args)
    getattr(N, name)(*b, *args)
    return a, b


def _assert_same(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    for x, y in zip(a, b, strict=True):
        if x.dtype.kind == "f":
            np.testing.assert_allclose(x, y, rtol=RTOL, atol=0)
        else:
            np.testing.assert_array_equal(x, y)


def test_subtract_scaled_matches_numpy(rng: np.random.Generator) -> None:
    d = _images(rng)
    a, b = _both("subtract_scaled", [d["sci"], d["err"], d["dq"]], d["ref_sci"], d["ref_err"],
                 d["ref_dq"], 512.5)
    _assert_same(a, b)


def test_divide_flat_matches_numpy_and_flags_zeros(rng: np.random.Generator) -> None:
    d = _images(rng)
    flat = d["flat"].copy()
    flat[3, 4] = 0.0
    a, b = _both("divide_flat", [d["sci"], d["err"], d["dq"]], flat, d["ref_err"] * 0.01,
                 d["ref_dq"])
    _assert_same(a, b)
    assert a[2][3, 4] & K.CALIBDEFECT
    assert a[0][3, 4] == d["sci"][3, 4]


@pytest.mark.parametrize("name", ["multiply_quadrants", "init_err"])
def test_per_amp_kernels_match_numpy(rng: np.random.Generator, name: str) -> None:
    d = _images(rng)
    quad = np.array([[1.1, 2.2], [3.3, 4.4]])
    a, b = _both(name, [d["sci"] - 3000, d["err"]], quad, AMPX, AMPY)
    _assert_same(a, b)


def test_per_amp_regions_follow_hstcal_layout() -> None:
    sci = np.ones(SHAPE, np.float32)
    err = np.zeros(SHAPE, np.float32)
    K.multiply_quadrants(sci, err, np.array([[1.0, 2.0], [3.0, 4.0]]), AMPX, AMPY)
    assert sci[0, 0] == 1 and sci[0, AMPX] == 2 and sci[AMPY, 0] == 3 and sci[-1, -1] == 4


def test_init_err_is_readnoise_and_poisson() -> None:
    sci = np.array([[400.0, -50.0]], np.float32)
    err = np.array([[3.0, 0.0]], np.float32)
    K.init_err(sci, err, np.full((2, 2), 4.0), 1, 0)
    np.testing.assert_allclose(err, [[np.sqrt(400 + 16 + 9), 4.0]], rtol=RTOL)


def test_saturation_kernels_match_numpy(rng: np.random.Generator) -> None:
    d = _images(rng)
    quad = np.array([[2900.0, 3000.0], [3100.0, 3200.0]])
    a, b = _both("flag_saturation", [d["sci"], d["dq"]], quad, AMPX, AMPY)
    _assert_same(a, b)
    assert (a[1] & K.SATPIXEL).any()
    limit = rng.normal(3000.0, 100.0, (40, 60)).astype(np.float32)
    a, b = _both("flag_above", [d["sci"], d["dq"]], limit, 7, 5)
    _assert_same(a, b)
    assert not (a[1][:5] & K.SATPIXEL).any()


def test_trim_and_bpixtab_match_numpy(rng: np.random.Generator) -> None:
    d = _images(rng)
    np.testing.assert_array_equal(K.trim(d["sci"], 3, 90, 2, 60), N.trim(d["sci"], 3, 90, 2, 60))
    table = [np.array(v) for v in ([5, 10, 90], [1, 3, 60], [4, 100, 10], [1, 2, 2],
                                   [4, 16, 32])]
    a, b = _both("apply_bpixtab", [d["dq"]], *table, 3, 2)
    _assert_same(a, b)
    assert (a[0][2, 7:11] & 4).all()  # row run: PIX1=5, LTV1=3 -> columns 7..10


def test_overscan_measurement_matches_numpy(rng: np.random.Generator) -> None:
    d = _images(rng)
    sections = np.array([[0, 5], [90, 95]])
    np.testing.assert_allclose(K.overscan_row_levels(d["sci"], d["dq"], sections, 2, 60, 4),
                               N.overscan_row_levels(d["sci"], d["dq"], sections, 2, 60, 4),
                               rtol=RTOL)
    np.testing.assert_allclose(K.virtual_overscan_columns(d["sci"], d["dq"], 6, 89, 60, 63, 4),
                               N.virtual_overscan_columns(d["sci"], d["dq"], 6, 89, 60, 63, 4),
                               rtol=RTOL)
    level = N.BiasLevel(10.0, 0.01, 30.0, 0.002, 3.0)
    a, b = _both("subtract_bias_level", [d["sci"]], 2, 60, 6, 50, level)
    _assert_same(a, b)


def test_bias_fit_recovers_a_line_and_rejects_cosmic_rays(rng: np.random.Generator) -> None:
    rows = np.arange(100, 2148)
    levels = 4000.0 + 0.002 * (rows - 1124) + rng.normal(0.0, 1.0, rows.size)
    levels[[10, 500, 900]] += 500.0
    fit = K.fit_bias_level(levels, 100, readnoise=4.0, default=0.0)
    assert fit.nrejected >= 3 and fit.from_overscan
    # hstcal fits against the row counted from row0 but evaluates at the raw row number
    # (BlevEval without the TRIMY1 offset): the level fitted at row 1124 is at_row(1024).
    assert abs(fit.at_row(1124 - 100) - 4000.0) < 0.1  # 2048 rows of sigma 1: error ~0.02
    assert fit.mid_row == 1024.0
    assert abs(fit.slope - 0.002) < 1e-4
    assert not K.fit_bias_level(np.full(10, np.nan), 0, 4.0, 123.0).from_overscan


def _ccd(sci: np.ndarray, err: np.ndarray, unit: Any) -> CCDData:
    return CCDData(sci.astype(np.float64), unit=unit,
                   uncertainty=StdDevUncertainty(err.astype(np.float64)))


def _check_vs(result: CCDData, sci: np.ndarray, err: np.ndarray) -> None:
    np.testing.assert_allclose(sci, result.data, rtol=RTOL)
    np.testing.assert_allclose(err, result.uncertainty.array, rtol=RTOL)


def test_bias_subtraction_equals_ccdproc(rng: np.random.Generator) -> None:
    d = _images(rng)
    sci, err, dq = d["sci"].copy(), d["err"].copy(), d["dq"].copy()
    K.subtract_scaled(sci, err, dq, d["ref_sci"], d["ref_err"], d["ref_dq"], 1.0)
    ref = ccdproc.subtract_bias(_ccd(d["sci"], d["err"], u.electron),
                                _ccd(d["ref_sci"], d["ref_err"], u.electron))
    _check_vs(ref, sci, err)


def test_dark_subtraction_equals_ccdproc(rng: np.random.Generator) -> None:
    d = _images(rng)
    darktime = 510.0
    rate, rate_err = d["ref_sci"] * 0.01, d["ref_err"] * 0.01
    sci, err, dq = d["sci"].copy(), d["err"].copy(), d["dq"].copy()
    K.subtract_scaled(sci, err, dq, rate, rate_err, d["ref_dq"], darktime)
    ref = ccdproc.subtract_dark(_ccd(d["sci"], d["err"], u.electron),
                                _ccd(rate, rate_err, u.electron),
                                dark_exposure=1.0 * u.s, data_exposure=darktime * u.s,
                                scale=True)
    _check_vs(ref, sci, err)


def test_flat_division_equals_ccdproc(rng: np.random.Generator) -> None:
    d = _images(rng)
    flat_err = d["ref_err"] * 0.005
    sci, err, dq = d["sci"].copy(), d["err"].copy(), d["dq"].copy()
    K.divide_flat(sci, err, dq, d["flat"], flat_err, d["ref_dq"])
    ref = ccdproc.flat_correct(_ccd(d["sci"], d["err"], u.electron),
                               _ccd(d["flat"], flat_err, u.dimensionless_unscaled),
                               norm_value=1.0)
    _check_vs(ref, sci, err)
