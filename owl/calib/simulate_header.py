"""Headers of simulated raw frames, modelled on a real ACS/WFC header.

The keyword set, order and comments follow ``j94f05bgq`` (the ACS/WFC header astropy ships
as ``astropy/wcs/tests/data/j94f05bgq_flt.fits``), reduced to what calibration reads and
with raw-file values: switches at PERFORM/OMIT, reference files from the simulated set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # astropy: no py.typed
from astropy.time import Time  # type: ignore[import-untyped, unused-ignore]  # as above

from owl.calib.simulate_tables import DetectorModel
from owl.calib.step import SM4MJD
from owl.calib.wfc_layout import TRIM_SHAPE, chip_layout

SWITCHES = ("DQICORR", "ATODCORR", "BLEVCORR", "BIASCORR", "FLSHCORR", "CRCORR", "EXPSCORR",
            "SHADCORR", "DARKCORR", "FLATCORR", "PHOTCORR", "RPTCORR", "DRIZCORR", "PCTECORR",
            "SINKCORR")
_OMITTED = {"ATODCORR", "FLSHCORR", "SHADCORR", "RPTCORR", "DRIZCORR", "PCTECORR", "SINKCORR"}
UNUSED_REFS = ("ATODTAB", "FLSHFILE", "SHADFILE", "DFLTFILE", "LFLTFILE", "PCTETAB",
               "DRKCFILE", "SNKCFILE")


@dataclass(frozen=True)
class Exposure:
    """What distinguishes one simulated exposure's header.

    Attributes
    ----------
    rootname : str
        Nine-character dataset name, e.g. ``jsim0101q``.
    asn_id : str
        Association id shared by a CR-split set, or ``NONE``.
    crsplit : int
        Number of exposures in the set.
    exptime, darktime : float
        Seconds.
    expstart : float
        MJD of the start.
    filt : str
        Filter in wheel 1 (wheel 2 is CLEAR2L).
    """

    rootname: str
    asn_id: str
    crsplit: int
    exptime: float
    darktime: float
    expstart: float
    filt: str


def raw_primary(exp: Exposure, refs: dict[str, str], detector: DetectorModel) -> Any:
    """Primary header of a raw WFC frame (``_raw.fits``).

    Parameters
    ----------
    exp : Exposure
        Exposure description.
    refs : dict
        Reference keyword -> ``jref$name``.
    detector : DetectorModel
        CCD properties (for CCDOFSTx).
    """
    start = Time(exp.expstart, format="mjd", scale="utc")
    h = fits.Header()
    h["NEXTEND"] = (6, "Number of standard extensions")
    h["FILENAME"] = (f"{exp.rootname}_raw.fits", "name of file")
    h["FILETYPE"] = ("SCI", "type of data found in data file")
    h["TELESCOP"] = ("HST", "telescope used to acquire data")
    h["INSTRUME"] = ("ACS", "identifier for instrument used to acquire data")
    h["EQUINOX"] = (2000.0, "equinox of celestial coord. system")
    h["ROOTNAME"] = (exp.rootname, "rootname of the observation set")
    h["IMAGETYP"] = ("EXT", "type of exposure identifier")
    h["PRIMESI"] = ("ACS", "instrument designated as prime")
    h["TARGNAME"] = ("OWL-SIM-FIELD", "proposer's target name")
    h["RA_TARG"] = (5.655, "right ascension of the target (deg) (J2000)")
    h["DEC_TARG"] = (-72.07055555556, "declination of the target (deg) (J2000)")
    h["PROPOSID"] = (99999, "PEP proposal identifier")
    h["DATE-OBS"] = (start.strftime("%Y-%m-%d"), "UT date of start of observation (yyyy-mm-dd)")
    h["TIME-OBS"] = (start.strftime("%H:%M:%S"), "UT time of start of observation (hh:mm:ss)")
    h["EXPSTART"] = (exp.expstart, "exposure start time (Modified Julian Date)")
    h["EXPEND"] = (exp.expstart + exp.exptime / 86400.0, "exposure end time (MJD)")
    h["EXPTIME"] = (exp.exptime, "exposure duration (seconds)--calculated")
    h["DARKTIME"] = (exp.darktime, "dark time (seconds)")
    h["EXPFLAG"] = ("NORMAL", "Exposure interruption indicator")
    h["PA_V3"] = (337.125305, "position angle of V3-axis of HST (deg)")
    h["OBSTYPE"] = ("IMAGING", "observation type - imaging or spectroscopic")
    h["OBSMODE"] = ("ACCUM", "operating mode")
    h["NRPTEXP"] = (1, "number of repeat exposures in set: default 1")
    h["SUBARRAY"] = (False, "data from a subarray (T) or full frame (F)")
    h["DETECTOR"] = ("WFC", "detector in use: WFC, HRC, or SBC")
    h["FILTER1"] = (exp.filt, "element selected from filter wheel 1")
    h["FILTER2"] = ("CLEAR2L", "element selected from filter wheel 2")
    h["APERTURE"] = ("WFC", "aperture name")
    h["CRSPLIT"] = (exp.crsplit, "number of cosmic ray split exposures")
    for switch in SWITCHES:
        omit = switch in _OMITTED or (switch == "CRCORR" and exp.crsplit < 2)
        value = "OMIT" if omit else "PERFORM"
        h[switch] = (value, "calibration switch")
    for key in sorted(refs):
        h[key] = (refs[key], "reference file")
    for key in UNUSED_REFS:
        if key not in refs:
            h[key] = ("N/A", "reference file (not used)")
    h["FLASHDUR"] = (0.0, "Exposure time in seconds: 0.1 to 409.5")
    h["FLASHCUR"] = ("OFF", "Post flash current: OFF, LOW, MED, HIGH")
    h["FLASHSTA"] = ("NOT PERFORMED", "Status: SUCCESSFUL, ABORTED, NOT PERFORMED")
    h["SHUTRPOS"] = ("A", "Shutter position: A or B")
    h["CCDAMP"] = ("ABCD", "CCD Amplifier Readout Configuration")
    h["CCDGAIN"] = (2.0, "commanded gain of CCD")
    # Post-SM4 full frames are read with the dual-slope integrator; hstcal's bias-shift and
    # cross-talk corrections run only when JWROTYPE says so.
    h["JWROTYPE"] = ("DS_INT" if exp.expstart >= SM4MJD else "CLAMP",
                     "ASCS read out type: DS_INT or CLAMP")
    for amp in "ABCD":
        h[f"CCDOFST{amp}"] = (detector.offset, f"commanded CCD bias offset for amplifier {amp}")
    h["ASN_ID"] = (exp.asn_id, "unique identifier assigned to association")
    h["ASN_TAB"] = (f"{exp.asn_id.lower()}_asn.fits" if exp.asn_id != "NONE" else "NONE",
                    "name of the association table")
    h["ASN_MTYP"] = ("EXP-CRJ" if exp.asn_id != "NONE" else "", "Role of the Member")
    return h


def raw_sci_header(exp: Exposure, chip: int, bunit: str = "COUNTS") -> Any:
    """SCI (and ERR/DQ) extension header of raw chip ``chip``."""
    lay = chip_layout(chip)
    h = fits.Header()
    h["INHERIT"] = (True, "inherit the primary header")
    h["EXPNAME"] = (exp.rootname, "exposure identifier")
    h["BUNIT"] = (bunit, "brightness units")
    h["CCDCHIP"] = (chip, "CCD chip (1 or 2)")
    h["LTV1"] = (float(lay.ltv1), "offset in X to subsection start")
    h["LTV2"] = (float(lay.ltv2), "offset in Y to subsection start")
    h["LTM1_1"] = (1.0, "reciprocal of sampling rate in X")
    h["LTM2_2"] = (1.0, "reciprocal of sampling rate in Y")
    h["SIZAXIS1"] = (TRIM_SHAPE[1], "subarray axis1 size in unbinned detector pixels")
    h["SIZAXIS2"] = (TRIM_SHAPE[0], "subarray axis2 size in unbinned detector pixels")
    h["BINAXIS1"] = (1, "axis1 data bin size in unbinned detector pixels")
    h["BINAXIS2"] = (1, "axis2 data bin size in unbinned detector pixels")
    h["PHOTMODE"] = (f"ACS WFC1 {exp.filt} MJD#{exp.expstart:.4f}", "observation con")
    h["PHOTFLAM"] = (0.0, "inverse sensitivity, ergs/cm2/Ang/electron")
    h["PHOTZPT"] = (0.0, "ST magnitude zero point")
    h["PHOTPLAM"] = (0.0, "Pivot wavelength (Angstroms)")
    h["PHOTBW"] = (0.0, "RMS bandwidth of filter plus detector")
    h["SDQFLAGS"] = (31743, "serious data quality flags")
    h["NCOMBINE"] = (1, "number of image sets combined during CR rejecti")
    return h
