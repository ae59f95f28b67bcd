"""Simulate ACS/WFC raw frames with known truth, and the reference files to calibrate them.

A *set* is N exposures of one scene (a CR-split association when N > 1: same pointing,
same stars, independent cosmic rays and noise) plus its reference files. Per exposure and
chip, in electrons on the trimmed 2048 x 4096 area::

    expected  = (stars + sky) * flat + dark_rate * DARKTIME      (BPIXTAB pixels respond 30 %)
    electrons = Poisson(expected) + cosmic rays, bled along columns above full well
    electrons = CTE forward model (electrons)                    (only with ``pctetab``)

and in DN on the raw 2068 x 4144 chip (overscan included), per amplifier::

    raw = (electrons + read noise) / gain + bias level + bias structure   -> uint16

The truth (scene before instrument effects, cosmic-ray mask, star list, sky, the bias
levels drawn for the exposure) is returned and saved beside the raw file as
``<rootname>_truth.npz``. Reference files go to ``<directory>/refs`` (point ``jref`` there).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed

from owl.calib import simulate_scene as scene
from owl.calib.cte.forward import forward_chip
from owl.calib.cte.params import resolve
from owl.calib.cte.pctetab import PCTETab, read_pctetab
from owl.calib.darktime import CYCLE24MJD
from owl.calib.fitsio import Frame, Imset, write_frame
from owl.calib.simulate_2d import NAMES as EXTRA_NAMES
from owl.calib.simulate_2d import ExtraRefs, Extras, write_cte_dark, write_extras
from owl.calib.simulate_header import Exposure, raw_primary, raw_sci_header
from owl.calib.simulate_refs import ReferenceSet, write_reference_set
from owl.calib.simulate_sub import cut_subarray, sink_maps, sink_mask, write_snkcfile
from owl.calib.simulate_tables import OVERHEAD_FLASHED, OVERHEAD_UNFLASHED
from owl.calib.step import SM4MJD
from owl.calib.subarray import Subarray
from owl.calib.subarray import subarray as subarray_of
from owl.calib.wfc_layout import CHIP_AMPS, CHIP_EXTVER, RAW_SHAPE, TRIM_SHAPE, chip_layout

F32 = npt.NDArray[np.float32]
BAD_RESPONSE = 0.3
SINK_RESPONSE = 0.6
"""Fraction of its charge a sink pixel keeps."""
SNKCFILE = "owlsim_snk.fits"
BIAS_JITTER = 4.0
"""Standard deviation (DN) of an exposure's bias level around the CCDTAB value."""


@dataclass(frozen=True)
class Truth:
    """What a simulated exposure really contains; arrays are indexed by EXTVER - 1.

    Attributes
    ----------
    scene : ndarray of float32, shape (2, 2048, 4096)
        Electrons from stars and sky before flat, dark, noise, cosmic rays and saturation.
    cr_mask : ndarray of bool, shape (2, 2048, 4096)
        Pixels hit by cosmic rays.
    stars : ndarray
        Star list (:data:`owl.calib.simulate_scene.STAR_DTYPE`: chip, x, y, flux in e-).
    sky : float
        Sky electrons per pixel.
    bias_level : ndarray of float64, shape (4,)
        Bias level (DN) of amps A, B, C, D in this exposure.
    exptime, darktime : float
        Seconds; ``darktime`` is the time the dark current really ran (the header's DARKTIME
        plus the post-SM4 overhead, i.e. what hstcal's ACSCCD writes as DARKTIME).
    """

    scene: F32 = field(repr=False)
    cr_mask: npt.NDArray[np.bool_] = field(repr=False)
    stars: npt.NDArray[np.void] = field(repr=False)
    sky: float
    bias_level: npt.NDArray[np.float64]
    exptime: float
    darktime: float

    def save(self, path: Path) -> None:
        """Write the truth to ``path`` (``.npz``, uncompressed for speed)."""
        np.savez(path, scene=self.scene, cr_mask=self.cr_mask, stars=self.stars,
                 sky=self.sky, bias_level=self.bias_level, exptime=self.exptime,
                 darktime=self.darktime)

    @classmethod
    def load(cls, path: Path) -> Truth:
        """Read a truth file written by :meth:`save`."""
        with np.load(path) as data:
            return cls(scene=data["scene"], cr_mask=data["cr_mask"], stars=data["stars"],
                       sky=float(data["sky"]), bias_level=data["bias_level"],
                       exptime=float(data["exptime"]), darktime=float(data["darktime"]))


@dataclass(frozen=True)
class SimulatedExposure:
    """One raw frame written by the simulator, with its truth."""

    raw: Path
    truth_path: Path
    truth: Truth = field(repr=False)


@dataclass(frozen=True)
class SimulatedSet:
    """A simulated data set: exposures, their association table and reference files."""

    directory: Path
    exposures: list[SimulatedExposure]
    asn: Path | None
    refs: ReferenceSet = field(repr=False)


def simulate_set(
    directory: str | Path,
    *,
    n_exposures: int = 2,
    seed: int = 0,
    exptime: float = 500.0,
    filt: str = "F606W",
    expstart: float = 58853.20733,
    n_stars: int = 2000,
    n_bright: int = 4,
    sky_rate: float = 0.06,
    visit: str = "01",
    pctetab: str | Path | None = None,
    extras: Extras | None = None,
    subarray: str | None = None,
    sink: bool = False,
) -> SimulatedSet:
    """Write ``n_exposures`` raw frames of one scene and their reference files.

    Parameters
    ----------
    directory : str or pathlib.Path
        Output directory (created); reference files go to its ``refs`` subdirectory.
    n_exposures : int
        Exposures in the set; more than one makes a CR-split association (CRCORR=PERFORM).
    seed : int
        Seed of every random draw: the same seed writes the same files.
    exptime : float
        Seconds per exposure (DARKTIME is 10 s longer).
    filt : str
        FILTER1: F435W, F606W or F814W.
    expstart : float
        EXPSTART (MJD) of the first exposure; the default is post-SM4 (January 2020).
    n_stars, n_bright : int
        Stars per chip with 1e2..5e5 e-, and saturating stars per chip (1e6..5e6 e-).
    sky_rate : float
        Sky in e-/s per pixel.
    visit : str
        Two characters of the rootnames (``jsim<visit><nn>q``), to keep sets apart.
    pctetab : str or pathlib.Path, optional
        A PCTETAB (e.g. the pack-S ``pctetab_synth.fits.gz``): add CTE trails with
        :func:`owl.calib.cte.forward.forward_chip`, copy the table into ``refs`` and set
        PCTECORR=PERFORM, PCTETAB and DRKCFILE (the simulated dark has no trails). None
        (default): no trails, PCTECORR=OMIT.
    extras : owl.calib.simulate_2d.Extras, optional
        Optional ACS2D references applied to the exposures: SHADFILE (SHADCORR=PERFORM),
        DFLTFILE, LFLTFILE, post-flash (FLSHFILE, FLASHDUR, FLSHCORR=PERFORM) and, with
        ``pctetab``, a separate DRKCFILE. None (default): none of them, as before.
    subarray : str, optional
        A supported subarray aperture (``WFC1A-2K`` ... ``WFC2D-512``,
        :mod:`owl.calib.subarray`): the raw frames are that aperture's cut of the simulated
        full frame (one imset; the truth stays full-frame), and the CCDTAB and OSCNTAB get
        the one-amp and subarray rows. None (default): full frames.
    sink : bool
        Write a SNKCFILE (:mod:`owl.calib.simulate_sub`), set SINKCORR=PERFORM and let the
        sink pixels hold back charge. Drawn from its own random stream, so the rest of the
        set is the same as without it.

    Returns
    -------
    SimulatedSet
    """
    if n_exposures < 1:
        raise ValueError(f"n_exposures must be at least 1, not {n_exposures}")
    if len(visit) != 2 or not visit.isalnum():
        raise ValueError(f"visit must be two letters or digits, not {visit!r}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    refs = write_reference_set(out / "refs", rng, filters=(filt,),
                               subarrays=subarray is not None)
    sub = None if subarray is None else subarray_of(subarray)
    sinks = None
    if sink:
        sinks = sink_maps(np.random.default_rng([seed, 1]))
        write_snkcfile(refs.directory / SNKCFILE, sinks)
    cte = None
    if pctetab is not None:
        shutil.copyfile(pctetab, refs.directory / Path(pctetab).name)
        cte = (Path(pctetab).name.removesuffix(".gz"), read_pctetab(pctetab))
    more = extras or Extras()
    if more.cte_dark and cte is None:
        raise ValueError("extras.cte_dark needs a pctetab")
    added = write_extras(refs.directory, more, filt, seed)
    stars = scene.make_stars(rng, n_stars, n_bright)
    star_images = {chip: scene.render_stars(stars, chip) for chip in (1, 2)}
    asn_id = f"jsim{visit}010" if n_exposures > 1 else "NONE"
    exposures = []
    for index in range(n_exposures):
        exp = Exposure(
            rootname=f"jsim{visit}{index + 1:02d}q", asn_id=asn_id, crsplit=n_exposures,
            exptime=exptime, darktime=exptime + 10.0,
            expstart=expstart + index * (exptime + 120.0) / 86400.0, filt=filt,
        )
        if more.cte_dark and index == 0 and cte is not None:
            _write_cte_dark(refs, exp, cte[0], cte[1], added)
        truth = _expose(out / f"{exp.rootname}_raw.fits", exp, refs, stars, star_images,
                        sky_rate * exptime, rng, cte, (more, added), sub, sinks)
        truth_path = out / f"{exp.rootname}_truth.npz"
        truth.save(truth_path)
        exposures.append(SimulatedExposure(raw=out / f"{exp.rootname}_raw.fits",
                                           truth_path=truth_path, truth=truth))
    asn = _write_asn(out, asn_id, [e.raw.name[:9] for e in exposures]) if n_exposures > 1 \
        else None
    return SimulatedSet(directory=out, exposures=exposures, asn=asn, refs=refs)


def _expose(
    path: Path, exp: Exposure, refs: ReferenceSet, stars: npt.NDArray[np.void],
    star_images: dict[int, F32], sky: float, rng: np.random.Generator,
    cte_table: tuple[str, PCTETab] | None, extra: tuple[Extras, ExtraRefs],
    sub: Subarray | None = None, sinks: dict[int, F32] | None = None,
) -> Truth:
    """Simulate and write one raw frame (``sub``: cut to that subarray); return its truth."""
    model = refs.detector
    more, added = extra
    primary = _primary(exp, refs, cte_table, more, added)
    held = None
    if sinks is not None:
        primary["SINKCORR"] = "PERFORM"
        primary["SNKCFILE"] = f"jref${SNKCFILE}"
        held = sink_mask(sinks)
    cte = resolve(cte_table[1], primary, "ABCD") if cte_table is not None else None
    levels = np.array(model.bias) + rng.normal(0.0, BIAS_JITTER, 4)
    # Dark charge accumulates over the header's DARKTIME plus the commanding overhead that
    # hstcal adds for post-SM4 full frames (the CCDTAB's OVRHUFLS, OVRHFLS when flashed)
    # and for the supported subarrays from Cycle 24 on.
    overhead = OVERHEAD_FLASHED if more.flashdur > 0 else OVERHEAD_UNFLASHED
    start = SM4MJD if sub is None else CYCLE24MJD
    dark_seconds = exp.darktime + (overhead if exp.expstart >= start else 0.0)
    scenes = np.empty((2, *TRIM_SHAPE), np.float32)
    masks = np.empty((2, *TRIM_SHAPE), bool)
    imsets = []
    for chip in (2, 1):
        ext = CHIP_EXTVER[chip] - 1
        scenes[ext] = star_images[chip] + np.float32(sky)
        expected = scenes[ext] * refs.flats[exp.filt][chip]
        if chip in added.flat:
            expected *= added.flat[chip]
        if chip in added.shading:
            expected *= np.float32(1.0) + added.shading[chip] / np.float32(exp.exptime)
        expected += refs.dark[chip] * np.float32(dark_seconds)
        if chip in added.flash:
            expected += added.flash[chip] * np.float32(more.flashdur)
        expected[refs.bad[chip]] *= BAD_RESPONSE
        electrons = rng.poisson(expected).astype(np.float32)
        charge, masks[ext] = scene.cosmic_rays(rng, exp.exptime)
        electrons += charge
        scene.bleed(electrons, refs.full_well[chip])
        if held is not None:
            electrons[held[chip]] *= np.float32(SINK_RESPONSE)
        if cte is not None:
            forward_chip(electrons, np.zeros_like(electrons), chip, cte)
        dn = _to_raw(electrons, chip, model.gain, model.readnoise, levels, refs.bias[chip], rng)
        header = raw_sci_header(exp, chip)
        imsets.append(Imset(sci=dn, err=np.zeros(RAW_SHAPE, np.float32),
                            dq=np.zeros(RAW_SHAPE, np.int16), sci_header=header,
                            err_header=header.copy(), dq_header=header.copy(),
                            extver=CHIP_EXTVER[chip]))
    frame = Frame(primary=primary, imsets=imsets, path=None)
    if sub is not None:
        frame = cut_subarray(primary, imsets, sub)
    write_frame(frame, path, overwrite=True)
    return Truth(scene=scenes, cr_mask=masks, stars=stars, sky=sky, bias_level=levels,
                 exptime=exp.exptime, darktime=dark_seconds)


def _primary(exp: Exposure, refs: ReferenceSet, cte_table: tuple[str, PCTETab] | None,
             more: Extras, added: ExtraRefs) -> Any:
    """The raw primary header, with the CTE and optional ACS2D keywords."""
    primary = raw_primary(exp, {**refs.header_values(exp.filt), **added.keywords},
                          refs.detector)
    if cte_table is not None:
        primary["PCTECORR"] = "PERFORM"
        primary["PCTETAB"] = f"jref${cte_table[0]}"
        primary["DRKCFILE"] = (f"jref${EXTRA_NAMES['DRKCFILE']}" if more.cte_dark
                               else primary["DARKFILE"])
    if more.shading:
        primary["SHADCORR"] = "PERFORM"
    if more.flashdur > 0:
        primary["FLSHCORR"] = "PERFORM"
        primary["FLASHDUR"] = more.flashdur
        primary["FLASHCUR"] = "MED"
        primary["FLASHSTA"] = "SUCCESSFUL"
    return primary


def _write_cte_dark(refs: ReferenceSet, exp: Exposure, name: str, table: PCTETab,
                    added: ExtraRefs) -> None:
    """DRKCFILE = the dark; DARKFILE = the dark charge of 1000 s read out with trails."""
    primary = raw_primary(exp, {**refs.header_values(exp.filt), **added.keywords},
                          refs.detector)
    primary["PCTETAB"] = f"jref${name}"
    cte = resolve(table, primary, "ABCD")
    seconds = np.float32(1000.0)
    trailed = {}
    for chip in (1, 2):
        charge = refs.dark[chip] * seconds
        forward_chip(charge, np.zeros_like(charge), chip, cte)
        trailed[chip] = (charge / seconds).astype(np.float32)
    write_cte_dark(refs.directory, refs.dark, trailed)


def _to_raw(
    electrons: F32, chip: int, gain: tuple[float, ...], readnoise: tuple[float, ...],
    levels: npt.NDArray[np.float64], structure: F32, rng: np.random.Generator,
) -> npt.NDArray[np.uint16]:
    """Place a trimmed chip into the raw layout and read it out through its two amps."""
    lay = chip_layout(chip)
    raw = np.zeros(RAW_SHAPE, np.float32)
    raw[lay.image_rows, lay.image_cols] = electrons
    for amp in CHIP_AMPS[chip]:
        i = "ABCD".index(amp)
        cols = lay.amp_cols_raw(amp)
        noise = rng.standard_normal((RAW_SHAPE[0], cols.stop - cols.start), dtype=np.float32)
        raw[:, cols] += noise * np.float32(readnoise[i])
        raw[:, cols] /= np.float32(gain[i])
        raw[:, cols] += np.float32(levels[i])
    raw += structure
    return np.clip(np.rint(raw), 0, 65535).astype(np.uint16)


def _write_asn(directory: Path, asn_id: str, members: list[str]) -> Path:
    """Write the association table ``<asn_id>_asn.fits`` (EXP-CRJ members, PROD-CRJ)."""
    names = [m.upper() for m in members] + [asn_id.upper()]
    types = ["EXP-CRJ"] * len(members) + ["PROD-CRJ"]
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="MEMNAME", format="14A", array=np.array(names)),
        fits.Column(name="MEMTYPE", format="14A", array=np.array(types)),
        fits.Column(name="MEMPRSNT", format="L", array=np.ones(len(names), bool)),
    ])
    primary: Any = fits.Header()
    primary["INSTRUME"] = "ACS"
    primary["DETECTOR"] = "WFC"
    primary["ROOTNAME"] = asn_id
    primary["ASN_ID"] = asn_id
    path = directory / f"{asn_id}_asn.fits"
    fits.HDUList([fits.PrimaryHDU(header=primary), table]).writeto(path, overwrite=True)
    return path
