"""Jobs for the condor executor tests."""

from __future__ import annotations

from pathlib import Path

from owl.executor import Job, Resources
from owl.model import TaskSpec


def make_job(
    tmp_path: Path,
    dataset: str,
    token: int,
    *,
    stage: str = "calib",
    memory_mb: int = 1024,
    task: str = "owltask_condor:calibrate",
    extra: tuple[tuple[str, str], ...] = (),
) -> Job:
    spec = TaskSpec(
        dataset=dataset,
        stage=stage,
        template="acs-wfc",
        token=token,
        attempt=1,
        task=task,
        argv=None,
        input_path=str(tmp_path / f"{dataset}_raw.fits"),
        inputs={},
        output_dir=str(tmp_path / "out" / dataset / str(token)),
        params={"gain": 2},
        timeout=600.0,
    )
    return Job(
        spec=spec, resources=Resources(cpus=2, memory_mb=memory_mb, disk_mb=512), extra=extra
    )
