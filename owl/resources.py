"""Find owl's data files (JSON Schemas, shipped pipeline templates).

An installed wheel carries them inside the package as ``owl/_data/<kind>/`` (see
``[tool.hatch.build.targets.wheel.force-include]`` in pyproject.toml); a source checkout or an
editable install has them at the repository root as ``<kind>/``. The wheel copy is tried first.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Literal

DataKind = Literal["schemas", "pipelines"]

_KINDS: tuple[str, ...] = ("schemas", "pipelines")


def _data_dir(kind: DataKind) -> Path:
    if kind not in _KINDS:
        raise ValueError(f"unknown data kind {kind!r}; expected one of {', '.join(_KINDS)}")
    packaged = files("owl") / "_data" / kind
    # Only a real directory can be handed out as a Path (not one inside a zip import).
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[1] / kind


def data_path(kind: DataKind, name: str) -> Path:
    """Return the path of one of owl's data files.

    Parameters
    ----------
    kind : {"schemas", "pipelines"}
        Which data folder to look in.
    name : str
        The file name inside it, e.g. ``"template.schema.json"``.

    Returns
    -------
    pathlib.Path
        The existing file.

    Raises
    ------
    FileNotFoundError
        When neither the installed package nor the source checkout has the file.
    ValueError
        When ``kind`` is not one of the known kinds.
    """
    path = _data_dir(kind) / name
    if not path.is_file():
        raise FileNotFoundError(
            f"owl data file {kind}/{name} not found (looked in {path}); "
            "reinstall owl or run from a complete source checkout"
        )
    return path


def pipelines_dir() -> Path:
    """Return the directory of the pipeline templates shipped with owl.

    Returns
    -------
    pathlib.Path
        ``owl/_data/pipelines`` in an installed wheel, ``pipelines/`` in a source checkout.
    """
    return _data_dir("pipelines")
