"""The interleaved post-SM4 kernels give the one-amp kernels' numbers, bit for bit."""

from __future__ import annotations

import numpy as np

from owl.calib import blev_ilp as I
from owl.calib import blev_postsm4 as B


def _chips(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    c1 = rng.normal(3000, 30, (2068, 200)).astype(np.float32)
    c2 = rng.normal(2500, 300, (2068, 200)).astype(np.float32)
    c1[100:110, 30:40] = 80000.0  # bright rows, saturated prescan neighbours
    c2[500, 20:30] = 75000.0
    c2[700:705] += 500.0  # rows far from the amp mean
    return c1, c2


def test_bias_shift_pair_equals_one_amp_kernel() -> None:
    c1, c2 = _chips(1)
    a1, a2, b1, b2 = c1.copy(), c2.copy(), c1.copy(), c2.copy()
    va = [B.amp_view(a1, a2, k) for k in range(4)]
    vb = [B.amp_view(b1, b2, k) for k in range(4)]
    scratch = np.empty(va[0].shape)
    old = [B._bias_shift_f32(va[k], scratch, B.TIME_CONST[k], B.DC_RATIO[k], B.DSI_SENS[k])
           for k in range(4)]
    da, db = np.empty(vb[0].shape), np.empty(vb[0].shape)
    new: list[float] = []
    for a, b in ((0, 1), (2, 3)):
        new.extend(I.bias_shift_pair(vb[a], vb[b], da, db, B.TIME_CONST[a], B.TIME_CONST[b],
                                     B.DC_RATIO[a], B.DC_RATIO[b], B.DSI_SENS[a],
                                     B.DSI_SENS[b]))
    assert old == new
    assert a1.tobytes() == b1.tobytes() and a2.tobytes() == b2.tobytes()


def test_good_rows4_equals_one_amp_kernel() -> None:
    c1, c2 = _chips(2)
    views = [B.amp_view(c1, c2, k) for k in range(4)]
    pre = np.stack([B._prescan(v) for v in views])
    old = np.empty((4, c1.shape[0]), np.uint8)
    for k in range(4):
        B._good_rows(pre[k], views[k], old[k])
    new = np.empty_like(old)
    I.good_rows4(pre, views[0], views[1], views[2], views[3], new)
    assert np.array_equal(old, new)
    assert 0 < int(new.sum()) < new.size
