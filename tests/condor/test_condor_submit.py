"""Submit descriptions and itemdata, checked through the real htcondor2.Submit."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import htcondor2
import pytest
from condor_jobs import make_job

from owl.condor.job import inline_spec, read_spec
from owl.condor.settings import CondorSettings
from owl.condor.spool import Spool, item_files, safe_name
from owl.condor.submit import build_batch, group_jobs
from owl.errors import ConfigError
from owl.executor import Job
from owl.model import TaskSpec


def _submit_file(batch) -> str:
    """The submit file text the bindings build for Schedd.submit(desc, itemdata=...)."""
    keys = list(batch.itemdata[0])
    body = "".join(f"{k} = {v}\n" for k, v in batch.description.items())
    rows = "".join("\x1f".join(item[k] for k in keys) + "\n" for item in batch.itemdata)
    return f"{body}\nQUEUE {','.join(keys)} FROM (\n{rows})\n"


def _expanded(batch, index: int) -> htcondor2.Submit:
    """The description with item ``index``'s variables set, as the schedd sees that proc."""
    sub = htcondor2.Submit(str(batch.description).replace("queue\n", ""))
    for key, value in batch.itemdata[index].items():
        sub[key] = value
    return sub


def test_one_description_with_per_item_memory_and_attributes(tmp_path, settings):
    jobs = [
        make_job(tmp_path, "jcxx01abq", 7),
        make_job(tmp_path, "jcxx01acq", 8, memory_mb=4096),  # an escalated retry
    ]
    batch = build_batch(jobs, settings, Spool(settings.spool_dir))

    # The itemdata survives the real submit-language parser of a QUEUE ... FROM statement.
    parsed = htcondor2.Submit(_submit_file(batch))
    assert parsed.getQArgs().startswith("owl_item,owl_dataset,owl_token,owl_attempt,owl_memory")
    assert list(parsed.itemdata()) == batch.itemdata

    first, second = _expanded(batch, 0), _expanded(batch, 1)
    assert first.expand("request_memory") == "1024"
    assert second.expand("request_memory") == "4096"
    assert first.expand("request_cpus") == "2"
    assert first.expand("request_disk") == str(512 * 1024)
    assert first.expand("My.OwlBoard") == '"hst"'
    assert first.expand("My.OwlAgent") == '"ap1:4242"'
    assert first.expand("My.OwlStage") == '"calib"'
    assert first.expand("My.OwlDataset") == '"jcxx01abq"'
    assert second.expand("My.OwlToken") == "8"
    assert first.expand("My.OwlAttempt") == "1"
    assert first.expand("log") == str(Spool(settings.spool_dir).event_log("ap1:4242"))
    assert first.expand("executable") == settings.python
    assert first.expand("should_transfer_files") == "NO"
    assert first.expand("allowed_execute_duration") == "600"
    base = Spool(settings.spool_dir).item_base("calib", "jcxx01abq", 7)
    spec = inline_spec(json.dumps(jobs[0].spec.to_json()))
    assert first.expand("arguments") == f"\"-m owl.condor.job '{spec}' '{base}.result.json'\""
    assert first.expand("output") == f"{base}.out"
    assert first.expand("My.OwlItem") == f'"{base}"'


def test_spec_files_hold_the_task_spec(tmp_path, settings):
    job = make_job(tmp_path, "jcxx01abq", 7)
    files = CondorSettings(**{**settings.__dict__, "inline_spec": 0})
    batch = build_batch([job], files, Spool(files.spool_dir))
    spec_path = item_files(batch.items[0].base)[0]
    assert TaskSpec.from_json(json.loads(spec_path.read_text())) == job.spec
    assert _expanded(batch, 0).expand("arguments").startswith(
        f"\"-m owl.condor.job '{spec_path}' ")


def test_small_specs_travel_inline_and_big_ones_in_files(tmp_path, settings):
    small = make_job(tmp_path, "small", 1)
    big = make_job(tmp_path, "big", 2)
    big = Job(spec=TaskSpec(**{**big.spec.__dict__, "params": {"notes": "x" * 5000}}),
              resources=big.resources, extra=big.extra)
    batch = build_batch([small, big], settings, Spool(settings.spool_dir))
    small_files, big_files = (item_files(i.base)[0] for i in batch.items)
    assert not small_files.exists() and big_files.exists()  # no spec file for the small one
    args = [shlex.split(_expanded(batch, i).expand("arguments").strip('"'))[2] for i in (0, 1)]
    assert TaskSpec.from_json(read_spec(args[0])) == small.spec  # as the job reads it
    assert args[1] == str(big_files)
    assert TaskSpec.from_json(read_spec(args[1])) == big.spec


def test_awkward_names_are_quoted_not_expanded(tmp_path, settings):
    name = 'odd "name" with $(HOME) and, comma'
    batch = build_batch([make_job(tmp_path, name, 3)], settings, Spool(settings.spool_dir))
    assert list(htcondor2.Submit(_submit_file(batch)).itemdata()) == batch.itemdata
    value = _expanded(batch, 0).expand("My.OwlDataset")
    assert value == '"odd \\"name\\" with $(HOME) and, comma"'
    assert "$" not in batch.items[0].base.name and " " not in str(batch.items[0].base)


def test_file_transfer_mode_moves_spec_in_and_result_back(tmp_path, settings):
    ft = CondorSettings(**{**settings.__dict__, "transfer_files": True})
    batch = build_batch([make_job(tmp_path, "jcxx01abq", 7)], ft, Spool(ft.spool_dir))
    sub = _expanded(batch, 0)
    base = batch.items[0].base
    assert sub.expand("should_transfer_files") == "YES"
    assert sub.expand("transfer_input_files") == f"{base}.spec.json"
    assert sub.expand("arguments") == (
        "\"-m owl.condor.job 'jcxx01abq.7.spec.json' 'jcxx01abq.7.result.json'\""
    )
    assert sub.expand("transfer_output_files") == "jcxx01abq.7.result.json"
    assert sub.expand("transfer_output_remaps") == (
        f'"jcxx01abq.7.result.json = {base}.result.json"'
    )


def test_extra_attributes_pass_through_but_owl_ones_are_protected(tmp_path, settings):
    extra = (("accounting_group", "group_hst.calib"), ("requirements", 'OpSys == "LINUX"'))
    batch = build_batch(
        [make_job(tmp_path, "a", 1, extra=extra)], settings, Spool(settings.spool_dir)
    )
    assert batch.description["accounting_group"] == "group_hst.calib"
    assert _expanded(batch, 0).expand("requirements") == 'OpSys == "LINUX"'
    for key in ("log", "My.OwlToken", "request_memory"):
        with pytest.raises(ConfigError, match="managed by owl"):
            build_batch(
                [make_job(tmp_path, "a", 1, extra=((key, "x"),))],
                settings,
                Spool(settings.spool_dir),
            )


def test_jobs_are_grouped_per_stage_and_shape(tmp_path):
    jobs = [
        make_job(tmp_path, "a", 1),
        make_job(tmp_path, "b", 2, stage="crrej"),
        make_job(tmp_path, "c", 3, memory_mb=8192),  # memory alone does not split a batch
        make_job(tmp_path, "d", 4, extra=(("accounting_group", "g"),)),
    ]
    names = [[j.spec.dataset for j in g] for g in group_jobs(jobs, 2000)]
    assert names == [["a", "c"], ["b"], ["d"]]
    many = [make_job(tmp_path, f"m{i}", i) for i in range(5)]
    assert [len(g) for g in group_jobs(many, 2)] == [2, 2, 1]


def test_environment_carries_pythonpath(tmp_path, settings):
    s = CondorSettings(**{**settings.__dict__, "pythonpath": ("/opt/owl", "/data/my tasks")})
    batch = build_batch([make_job(tmp_path, "a", 1)], s, Spool(s.spool_dir))
    assert batch.description.expand("environment") == "\"PYTHONPATH='/opt/owl:/data/my tasks'\""


def test_spool_paths_are_safe(tmp_path):
    assert safe_name("jcxx01abq") == "jcxx01abq"
    assert safe_name("a/b") != safe_name("a_b")
    assert safe_name("../x").startswith("_")
    with pytest.raises(ConfigError, match="spool directory"):
        Spool(Path("/tmp/has space"))


def test_container_universe_runs_the_image_python(tmp_path, settings, monkeypatch):
    monkeypatch.setenv("OWL_CONDOR_CONTAINER", "docker://registry.example.org/owl:0.1")
    monkeypatch.delenv("OWL_CONDOR_PYTHONPATH", raising=False)
    monkeypatch.delenv("OWL_CONDOR_PYTHON", raising=False)
    s = CondorSettings.from_env("hst", "ap1", tmp_path)
    batch = build_batch([make_job(tmp_path, "a", 1)], s, Spool(s.spool_dir))
    sub = _expanded(batch, 0)
    assert (sub.expand("universe"), sub.expand("container_image")) == (
        "container", "docker://registry.example.org/owl:0.1")
    assert (sub.expand("executable"), sub.expand("transfer_executable")) == (
        "/usr/bin/python3", "false")
    assert sub.expand("environment") == "\"PYTHONPATH=''\""  # owl is in the image
    with pytest.raises(ConfigError, match="managed by owl"):
        build_batch([make_job(tmp_path, "a", 1, extra=(("container_image", "x"),))], s,
                    Spool(s.spool_dir))


def test_wheels_travel_with_the_job_and_lead_its_pythonpath(tmp_path, settings, monkeypatch):
    wheel = "/opt/dist/owl-0.1.0-py3-none-any.whl"
    monkeypatch.setenv("OWL_CONDOR_TRANSFER", "1")
    monkeypatch.setenv("OWL_CONDOR_WHEELS", wheel)
    monkeypatch.setenv("OWL_CONDOR_PYTHONPATH", "")
    monkeypatch.setenv("OWL_CONDOR_PYTHON", "/usr/bin/python3.11")
    s = CondorSettings.from_env("hst", "ap1", tmp_path)
    batch = build_batch([make_job(tmp_path, "a", 1)], s, Spool(s.spool_dir))
    sub = _expanded(batch, 0)
    base = batch.items[0].base
    assert sub.expand("transfer_input_files") == f"{base}.spec.json, {wheel}"
    assert sub.expand("environment") == "\"PYTHONPATH='owl-0.1.0-py3-none-any.whl'\""
    assert sub.expand("executable") == "/usr/bin/python3.11"
    monkeypatch.setenv("OWL_CONDOR_TRANSFER", "0")
    with pytest.raises(ConfigError, match="needs file-transfer mode"):
        CondorSettings.from_env("hst", "ap1", tmp_path)
    monkeypatch.setenv("OWL_CONDOR_TRANSFER", "1")
    monkeypatch.setenv("OWL_CONDOR_WHEELS", "dist/owl.whl")
    with pytest.raises(ConfigError, match="not an absolute path"):
        CondorSettings.from_env("hst", "ap1", tmp_path)


def test_a_job_runs_owl_from_a_wheel_in_its_scratch_directory(tmp_path, task_dir):
    # What a file-transfer job with OWL_CONDOR_WHEELS does: owl is only the wheel (a zip)
    # in the job's working directory, named on PYTHONPATH by its file name.
    import subprocess
    import sys
    import zipfile

    repo = Path(__file__).resolve().parents[2]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    wheel = scratch / "owl-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path in (repo / "owl").rglob("*.py"):
            z.write(path, path.relative_to(repo))
    spec = make_job(tmp_path, "a", 1, task="owl.bench_tasks:noop").spec
    (scratch / "a.1.spec.json").write_text(json.dumps(spec.to_json()))
    proc = subprocess.run(
        [sys.executable, "-m", "owl.condor.job", "a.1.spec.json", "a.1.result.json"],
        cwd=scratch, env={"PYTHONPATH": wheel.name, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((scratch / "a.1.result.json").read_text())["ok"] is True
    where = subprocess.run([sys.executable, "-c", "import owl; print(owl.__file__)"],
                           cwd=scratch, env={"PYTHONPATH": wheel.name}, capture_output=True,
                           text=True, timeout=60, check=True).stdout.strip()
    assert where == str(wheel / "owl" / "__init__.py")  # from the wheel, not a checkout


def test_a_big_batch_writes_spec_files(tmp_path, settings):
    # Schedd.submit's text building is quadratic in the itemdata: big batches keep files.
    jobs = [make_job(tmp_path, f"d{i}", i + 1) for i in range(1000)]
    batch = build_batch(jobs, settings, Spool(settings.spool_dir))
    assert all(item_files(i.base)[0].exists() for i in batch.items)
    assert sum(len(i["owl_spec"]) for i in batch.itemdata) < 200 * len(jobs)
