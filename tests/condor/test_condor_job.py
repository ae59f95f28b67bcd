"""``python -m owl.condor.job`` run as a real subprocess on real tasks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from condor_jobs import make_job

from owl.condor.spool import Spool, item_files, write_json_atomic
from owl.tasklog import log_dir

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path, task_dir, task):
    job = make_job(tmp_path, "jcxx01abq", 7, task=task)
    spec_path, result_path, _, _ = item_files(Spool(tmp_path / "spool").item_base("calib", "x", 7))
    spec_path.parent.mkdir(parents=True)
    write_json_atomic(spec_path, job.spec.to_json())
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(task_dir)]))
    proc = subprocess.run(
        [sys.executable, "-m", "owl.condor.job", str(spec_path), str(result_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    result = json.loads(result_path.read_text()) if result_path.exists() else None
    return proc, result, job


def test_success_writes_outputs_and_exits_0(tmp_path, task_dir):
    proc, result, job = _run(tmp_path, task_dir, "owltask_condor:calibrate")
    assert proc.returncode == 0, proc.stderr
    assert result["ok"] is True
    flt = Path(job.spec.output_dir) / "flt.txt"
    assert result["outputs"] == {"flt": str(flt), "attempt": 1}
    assert flt.read_text() == "jcxx01abq 2"
    assert result["seconds"] >= 0
    assert not [p for p in Path(proc.args[-1]).parent.iterdir() if p.name.endswith(".tmp")]


def test_task_failure_writes_error_and_exits_1(tmp_path, task_dir):
    proc, result, _ = _run(tmp_path, task_dir, "owltask_condor:explode")
    assert proc.returncode == 1
    assert result["ok"] is False
    assert result["error"] == "ValueError: bad frame jcxx01abq"
    assert "raise ValueError" in result["traceback"]
    assert "bad frame" in proc.stderr


def test_unknown_task_is_a_task_failure(tmp_path, task_dir):
    proc, result, _ = _run(tmp_path, task_dir, "owltask_condor:nope")
    assert proc.returncode == 1
    assert "has no function 'nope'" in result["error"]


def test_process_death_leaves_no_result(tmp_path, task_dir):
    proc, result, _ = _run(tmp_path, task_dir, "owltask_condor:die")
    assert proc.returncode == 9
    assert result is None


def test_bad_command_line_exits_2():
    proc = subprocess.run(
        [sys.executable, "-m", "owl.condor.job", "only-one"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_the_job_imports_only_what_the_task_needs(tmp_path, task_dir):
    # Each condor item starts a fresh interpreter: the wrapper's imports are paid per item.
    proc, result, _ = _run(tmp_path, task_dir, "owltask_condor:modules")
    assert proc.returncode == 0, proc.stderr
    assert result["outputs"] == {"loaded": []}


def test_a_task_that_logs_gets_its_logger(tmp_path, task_dir):
    proc, result, job = _run(tmp_path, task_dir, "owltask_condor:logs")
    assert proc.returncode == 0, proc.stderr
    assert result["outputs"] == {"logged": True}
    logs = log_dir(job.spec.output_dir)
    text = (logs / "stdout.log").read_text() + (logs / "stderr.log").read_text()
    assert "task.note" in text and "jcxx01abq" in text


def test_start_check_imports_tasks_as_the_job_will(tmp_path, task_dir):
    from owl.preflight import job_import_problems

    refs = ["owltask_condor:calibrate"]
    assert job_import_problems(refs, tmp_path / "w", sys.executable,
                               (str(REPO), str(task_dir))) == {}
    missing = job_import_problems(refs, tmp_path / "w", sys.executable, (str(REPO),))
    assert "owltask_condor" in missing["owltask_condor:calibrate"]
