"""Template files: values loaded, and every kind of mistake named by file:line and path."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]  # jsonschema ships no type information
import pytest

from owl.errors import TemplateError
from owl.resources import data_path, pipelines_dir
from owl.template_loader import (
    find_template,
    load_template,
    load_templates,
    parse_duration,
    parse_size_mb,
    validate_files,
)

GOOD = """\
name: acs-wfc
version: "2.1"
description: ACS/WFC calibration
match:
  INSTRUME: ACS
  DETECTOR: [WFC, HRC]
ingest: ["*_raw.fits", "*_asn.fits"]
defaults:
  resources: {cpus: 2, memory: 2GB}
  timeout: 30m
  retry:
    max_attempts: 4
    backoff: {base: 0.5, factor: 3, max: 60, jitter: 0.1}
  params: {gain: 2.0, flags: {a: 1}}
stages:
  ingest_check:
    task: owl.demo_tasks:ingest_check
    timeout: 45s
  calibrate:
    after: ingest_check
    task: owl.calib.steps:calibrate
    executor: condor
    resources: {memory: 1.5G, disk: 512MB}
    timeout: 1h30m
    retry:
      backoff: {base: 2}
      no_retry: [error, memory]
      memory_multiplier: 1.5
      memory_cap: 16GB
    priority: 5
    params: {flags: {b: 2}}
    condor: {+AccountingGroup: group_hst, request_gpus: "1"}
  measure_a:
    after: [calibrate]
    argv: ["measure", "{input}", "--out", "{output_dir}", "--gain={param.gain}", "{dataset}"]
    timeout: 90
    resources: {memory: 256}
  measure_b:
    after: calibrate
    task: owl.demo_tasks:measure_b
  combine:
    after: [measure_a, measure_b]
    task: owl.demo_tasks:combine
"""


def write(tmp_path: Path, text: str, name: str = "t.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def minimal(stages: str = "  a: {task: m:f}\n", head: str = "name: t\n") -> str:
    return head + "stages:\n" + stages


# --- good files ----------------------------------------------------------------------------


def test_good_file_loads_every_value(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    t = load_template(path)
    assert (t.name, t.version, t.description) == ("acs-wfc", "2.1", "ACS/WFC calibration")
    assert t.source == str(path)
    assert t.match == {"INSTRUME": ("ACS",), "DETECTOR": ("WFC", "HRC")}
    assert t.ingest == ("*_raw.fits", "*_asn.fits")
    assert t.stage_names == ("ingest_check", "calibrate", "measure_a", "measure_b", "combine")
    assert [s.line for s in t.stages] == [16, 19, 33, 38, 41]

    check = t.stage("ingest_check")
    assert check.timeout == 45.0
    assert (check.resources.cpus, check.resources.memory_mb, check.resources.disk_mb) == (
        2,
        2048,
        1024,
    )
    assert check.retry.max_attempts == 4
    assert (check.retry.base, check.retry.factor, check.retry.max_delay) == (0.5, 3.0, 60.0)
    assert check.retry.jitter == 0.1
    assert check.params == {"gain": 2.0, "flags": {"a": 1}}
    assert (check.executor, check.priority, check.condor) == ("local", 0, {})

    cal = t.stage("calibrate")
    assert cal.after == ("ingest_check",)
    assert cal.task == "owl.calib.steps:calibrate" and cal.argv is None
    assert cal.executor == "condor"
    assert (cal.resources.cpus, cal.resources.memory_mb, cal.resources.disk_mb) == (2, 1536, 512)
    assert cal.timeout == 5400.0
    # backoff merges key by key with the defaults; params merge one level deep
    assert (cal.retry.base, cal.retry.factor, cal.retry.max_delay) == (2.0, 3.0, 60.0)
    assert cal.retry.max_attempts == 4
    assert cal.retry.no_retry == ("error", "memory")
    assert (cal.retry.memory_multiplier, cal.retry.memory_cap_mb) == (1.5, 16384)
    assert cal.priority == 5
    assert cal.params == {"gain": 2.0, "flags": {"b": 2}}
    assert cal.condor == {"+AccountingGroup": "group_hst", "request_gpus": "1"}

    meas = t.stage("measure_a")
    assert meas.task is None
    assert meas.argv == (
        "measure",
        "{input}",
        "--out",
        "{output_dir}",
        "--gain={param.gain}",
        "{dataset}",
    )
    assert (meas.timeout, meas.resources.memory_mb) == (90.0, 256)
    assert t.stage("combine").after == ("measure_a", "measure_b")


def test_graph_queries(tmp_path: Path) -> None:
    t = load_template(write(tmp_path, GOOD))
    assert t.first_stages() == ("ingest_check",)
    assert t.successors("calibrate") == ("measure_a", "measure_b")
    assert t.successors("measure_b") == ("combine",)
    assert t.successors("combine") == ()


def test_missing_version_is_content_hash(tmp_path: Path) -> None:
    path = write(tmp_path, minimal())
    expected = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    t = load_template(path)
    assert t.version == expected
    assert len(t.version) == len("sha256:") + 12
    path.write_text(minimal() + "# a comment changes the content\n", encoding="utf-8")
    assert load_template(path).version != expected


def test_stage_defaults_without_defaults_section(tmp_path: Path) -> None:
    stage = load_template(write(tmp_path, minimal())).stages[0]
    assert (stage.timeout, stage.executor, stage.after, stage.priority) == (3600.0, "local", (), 0)
    assert stage.retry.max_attempts == 3
    assert stage.resources.memory_mb == 1024


def test_dates_and_anchors_become_plain_values(tmp_path: Path) -> None:
    text = minimal(
        "  a: &base {task: m:f, params: {since: 2024-01-01}}\n  b:\n    <<: *base\n    after: a\n",
        head="name: t\nversion: 2024-05-01\n",
    )
    t = load_template(write(tmp_path, text))
    assert t.version == "2024-05-01"
    assert t.stage("b").task == "m:f"
    assert t.stage("b").params == {"since": "2024-01-01"}
    assert json.dumps(t.stage("a").params) == '{"since": "2024-01-01"}'


@pytest.mark.parametrize(
    ("text", "mb"),
    [(512, 512), ("512MB", 512), ("2GB", 2048), ("2g", 2048), ("1.5 GiB", 1536), ("1T", 1048576)],
)
def test_sizes(text: int | str, mb: int) -> None:
    assert parse_size_mb(text) == mb


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(90, 90.0), (2.5, 2.5), ("45s", 45.0), ("30m", 1800.0), ("2h", 7200.0), ("1h30m", 5400.0)],
)
def test_durations(text: float | str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_bad_size_and_duration_strings_raise() -> None:
    with pytest.raises(ValueError, match="not a size"):
        parse_size_mb("lots")
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("30 minutes")


# --- bad files: one mistake each -----------------------------------------------------------

BAD = [
    pytest.param(
        minimal("  calibrate:\n    task: m:f\n    retry:\n      max_attempts: three\n"),
        '6: stages.calibrate.retry.max_attempts: must be an integer >= 1, got "three"',
        id="wrong-value",
    ),
    pytest.param(
        minimal("  calibrate:\n    task: m:f\n    retires: 3\n"),
        "5: stages.calibrate: unknown key 'retires' (did you mean 'retry'?)",
        id="unknown-key-close",
    ),
    pytest.param(
        minimal("  a:\n    task: m:f\n    zzz: 1\n"),
        "5: stages.a: unknown key 'zzz'; allowed keys: after, task, argv, executor,",
        id="unknown-key-far",
    ),
    pytest.param(
        "stages:\n  a: {task: m:f}\n",
        "1: missing required key 'name'",
        id="missing-required",
    ),
    pytest.param(
        minimal("  a:\n    task: m:f\n    timeout: 30 minutes\n"),
        '5: stages.a.timeout: must be a duration such as 45 (seconds), "45s", "30m" or "2h", '
        'got "30 minutes"',
        id="bad-duration",
    ),
    pytest.param(
        minimal("  a:\n    task: m:f\n    resources:\n      memory: lots\n"),
        '6: stages.a.resources.memory: must be a size such as "512MB" or "2GB", '
        'or a whole number of MB, got "lots"',
        id="bad-size",
    ),
    pytest.param(
        minimal("  a:\n    task: m:f\n    executor: slurm\n"),
        '5: stages.a.executor: must be one of local, condor; got "slurm"',
        id="enum",
    ),
    pytest.param(
        minimal("  a:\n    task: m:f\n    retry: {no_retry: [error, oom]}\n"),
        "5: stages.a.retry.no_retry[1]: must be one of error, timeout, crash, lease, held, "
        'memory, removed, evicted, permanent; got "oom"',
        id="enum-in-list",
    ),
    pytest.param(
        minimal("  a:\n    task: owl.demo_tasks.calibrate\n"),
        "4: stages.a.task: must be 'module:function', e.g. \"owl.demo_tasks:calibrate\", "
        'got "owl.demo_tasks.calibrate"',
        id="bad-task-form",
    ),
    pytest.param(
        minimal("  a:\n    argv: [prog, 3]\n"),
        '4: stages.a.argv[1]: must be a string (quote numbers: "2"), got 3',
        id="argv-item-type",
    ),
    pytest.param(
        minimal("  a:\n    after: []\n"),
        "3: stages.a: a stage needs 'task' (\"module:function\") or 'argv' (a command list)",
        id="neither-task-nor-argv",
    ),
    pytest.param(
        minimal("  a:\n    task: m:f\n    argv: [x]\n"),
        "3: stages.a: a stage has either 'task' or 'argv', not both",
        id="both-task-and-argv",
    ),
    pytest.param(
        minimal(
            "  calibrate: {task: m:f}\n  b:\n    task: m:f\n    after: [calibrate, clibrate]\n"
        ),
        "6: stages.b.after[1]: unknown stage 'clibrate' (did you mean 'calibrate'?); "
        "stages: calibrate, b",
        id="unknown-after",
    ),
    pytest.param(
        minimal("  a: {task: m:f}\n  b:\n    task: m:f\n    after: z\n"),
        "6: stages.b.after: unknown stage 'z'; stages: a, b",
        id="unknown-after-string",
    ),
    pytest.param(
        minimal("  a: {task: m:f, after: b}\n  b: {task: m:f, after: a}\n"),
        "3: stages.a.after: dependency cycle: a -> b -> a (each runs before the next)",
        id="cycle",
    ),
    pytest.param(
        minimal("  a: {task: m:f, after: a}\n"),
        "3: stages.a.after: dependency cycle: a -> a (each runs before the next)",
        id="self-cycle",
    ),
    pytest.param(
        minimal("  a: {task: m:f}\n  b: {task: m:f}\n  a: {task: m:g}\n"),
        "5: stages: duplicate stage name 'a' (first at line 3); remove one",
        id="duplicate-stage",
    ),
    pytest.param(
        "name: t\nname: u\nstages:\n  a: {task: m:f}\n",
        "2: duplicate key 'name' (first at line 1); remove one",
        id="duplicate-key",
    ),
    pytest.param(
        minimal("  a:\n    argv: [prog, '{datset}']\n"),
        "4: stages.a.argv[1]: unknown placeholder {datset} (did you mean '{dataset}'?); "
        "known: {dataset}, {stage}, {template}, {input}, {output_dir}, {token}, {attempt}, "
        "{param.NAME} (add !q to shell-quote)",
        id="unknown-placeholder",
    ),
    pytest.param(
        minimal("  a:\n    argv: [sh, -c, 'cat {input} > {output_dir!q}/x']\n"),
        "4: stages.a.argv[2]: {input} inside a shell command must be quoted: write {input!q}",
        id="unquoted-placeholder-in-shell",
    ),
    pytest.param(
        minimal("  a:\n    argv: [prog, '{input!r}']\n"),
        "4: stages.a.argv[1]: {input!r}: the only conversion is !q (shell quoting)",
        id="bad-conversion",
    ),
    pytest.param(
        minimal("  a:\n    argv: [prog, 'a{b']\n"),
        "4: stages.a.argv[1]: lone '{': write '{{' for a literal brace",
        id="lone-brace",
    ),
    pytest.param(
        minimal("  a:\n    argv: [prog, '{param.gain}']\n    params: {g: 1}\n"),
        "4: stages.a.argv[1]: {param.gain} names no parameter of this stage (its params: g)",
        id="unknown-param",
    ),
    pytest.param(
        minimal("  a: {task: m:f}\n", head="name: t\nmatch:\n  instrume: ACS\n"),
        "3: match: key 'instrume' must be an upper-case FITS header keyword (A-Z, 0-9, _ and -)",
        id="bad-match-keyword",
    ),
    pytest.param(
        minimal("  a: {task: m:f}\n", head="name: t\nversion: 1.2\n"),
        '2: version: must be a non-empty string (quote numbers: version: "1.2"), got 1.2',
        id="unquoted-version",
    ),
    pytest.param(
        minimal("  a: {task: m:f}\n", head="name: bad name\n"),
        "1: name: must be a name of letters, digits, '_' and '-'",
        id="bad-name",
    ),
    pytest.param(
        minimal("  a: {task: m:f}\n", head="name: t\ndefaults:\n  task: m:f\n"),
        "3: defaults: unknown key 'task'; allowed keys: executor, resources,",
        id="task-in-defaults",
    ),
    pytest.param(
        minimal("  a: {task: m:f}\n  b: !custom thing\n"),
        "4: stages.b: unsupported YAML tag; write plain data",
        id="custom-tag",
    ),
    pytest.param(
        "name: t\nstages: {}\n",
        "2: stages: must be a mapping of stage names to stages (at least one), got a mapping",
        id="no-stages",
    ),
    pytest.param(
        minimal("  a:\n    task: m:f\n    after: [b\n  b: {task: m:f}\n"),
        "6: YAML syntax error: ",
        id="yaml-syntax",
    ),
    pytest.param(
        "", "1: a template is a mapping with name and stages; the file is empty", id="empty"
    ),
    pytest.param(
        "- a\n- b\n", '1: a template is a mapping with name and stages; got ["a", "b"]', id="list"
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_each_mistake_is_named_by_file_line_and_path(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    messages = validate_files([path])
    assert any(m.startswith(f"{path}:{expected}") for m in messages), messages
    with pytest.raises(TemplateError) as info:
        load_template(path)
    assert f"{path}:{expected}" in str(info.value)


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    assert validate_files([missing]) == [
        f"{missing}:1: cannot read the file: No such file or directory"
    ]
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: t\ndescription: caf\xe9\nstages: {}\n")
    assert validate_files([latin]) == [f"{latin}:2: the file is not UTF-8 text"]


def test_all_errors_of_a_file_together_sorted_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        name: demo
        stages:
          ingest:
            task: m:f
            timeout: soon
          calibrate:
            after: [ingest, nosuch]
            task: m:f
            retires: 3
            executor: slurm
            retry:
              max_attempts: three
        """,
    )
    messages = validate_files([path])
    lines = [int(m.split(":")[1]) for m in messages]
    assert lines == [5, 7, 9, 10, 12]
    assert lines == sorted(lines)
    with pytest.raises(TemplateError) as info:
        load_template(path)
    assert str(info.value).splitlines() == messages


def test_longer_cycle_is_named_in_running_order(tmp_path: Path) -> None:
    text = minimal(
        "  start: {task: m:f}\n"
        "  a: {task: m:f, after: [start, c]}\n"
        "  b: {task: m:f, after: a}\n"
        "  c: {task: m:f, after: b}\n"
    )
    path = write(tmp_path, text)
    assert validate_files([path]) == [
        f"{path}:4: stages.a.after: dependency cycle: a -> b -> c -> a (each runs before the next)"
    ]


def test_after_naming_an_ill_formed_stage_is_not_unknown(tmp_path: Path) -> None:
    path = write(tmp_path, minimal("  a: [task]\n  b: {task: m:f, after: a}\n"))
    assert validate_files([path]) == [
        f"{path}:3: stages.a: must be a mapping of stage settings (task or argv, after, ...), "
        'got ["task"]'
    ]


def test_stages_do_not_share_default_params(tmp_path: Path) -> None:
    head = "name: t\ndefaults:\n  params: {flags: {a: 1}}\n"
    t = load_template(write(tmp_path, minimal("  a: {task: m:f}\n  b: {task: m:f}\n", head)))
    t.stage("a").params["flags"]["a"] = 2
    assert t.stage("b").params == {"flags": {"a": 1}}


# --- folders, names, shipped pipelines ------------------------------------------------------


def test_folder_skips_yaml_that_is_not_a_template(tmp_path: Path) -> None:
    write(tmp_path, minimal(head="name: one\n"), "one.yaml")
    write(tmp_path, minimal(head="name: two\n"), "two.yml")
    write(tmp_path, "rules:\n  - match: {DETECTOR: WFC}\n    file: bias.fits\n", "refrules.yaml")
    write(tmp_path, "rules: [unclosed\n", "broken_rules.yaml")
    write(tmp_path, "not yaml at all", "notes.txt")
    templates = load_templates([tmp_path])
    assert [t.name for t in templates] == ["one", "two"]
    assert validate_files([tmp_path]) == []


def test_folder_reports_template_with_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, "name: one\nstages:\n  a: {task: m:f\n", "one.yaml")
    messages = validate_files([tmp_path])
    assert len(messages) == 1
    assert messages[0].startswith(f"{path}:4: YAML syntax error")


def test_explicit_file_must_be_a_template(tmp_path: Path) -> None:
    path = write(tmp_path, "rules: []\n")
    assert validate_files([path]) == [
        f"{path}:1: missing required key 'name'",
        f"{path}:1: missing required key 'stages'",
        f"{path}:1: unknown key 'rules'; allowed keys: name, version, description, match, "
        "ingest, defaults, limits, scan, stages",
    ]


def test_two_templates_with_one_name(tmp_path: Path) -> None:
    first = write(tmp_path, minimal(head="name: same\n"), "a.yaml")
    second = write(tmp_path, "# again\n" + minimal(head="name: same\n"), "b.yaml")
    assert validate_files([tmp_path]) == [
        f"{second}:2: name: template name 'same' is already used by {first}:1"
    ]
    with pytest.raises(TemplateError, match="already used"):
        load_templates([first, second])


def test_find_template(tmp_path: Path) -> None:
    write(tmp_path, minimal(head="name: one\n"), "one.yaml")
    write(tmp_path, "name: broken\nstages: [\n", "broken.yaml")
    assert find_template("one", [tmp_path]).name == "one"
    with pytest.raises(TemplateError) as info:
        find_template("nosuch", [tmp_path])
    text = str(info.value)
    assert "no template named 'nosuch'" in text and "templates found: one" in text
    assert f"{tmp_path / 'broken.yaml'}:3: YAML syntax error" in text


def test_find_template_reports_its_own_errors_only(tmp_path: Path) -> None:
    write(tmp_path, minimal(head="name: good\n"), "good.yaml")
    write(tmp_path, minimal("  a: {task: bad}\n", head="name: bad\n"), "bad.yaml")
    assert find_template("good", [tmp_path]).name == "good"
    with pytest.raises(TemplateError, match=r"bad\.yaml:3: stages\.a\.task"):
        find_template("bad", [tmp_path])


def test_shipped_pipelines_validate() -> None:
    shipped = sorted(pipelines_dir().glob("*.yaml"))
    assert {p.stem for p in shipped} >= {"demo", "noop"}
    assert validate_files([pipelines_dir()]) == []
    assert validate_files(shipped) == []


def test_demo_pipeline_shape() -> None:
    demo = find_template("demo")
    assert demo.match == {"INSTRUME": ("DEMO",)}
    assert demo.ingest == ("*_demo.fits",)
    assert demo.first_stages() == ("ingest_check",)
    assert demo.successors("calibrate") == ("measure_a", "measure_b")
    assert demo.stage("combine").after == ("measure_a", "measure_b")
    assert all(s.task == f"owl.demo_tasks:{s.name}" for s in demo.stages)
    assert all(s.retry.max_attempts == 3 and s.retry.base == 0.2 for s in demo.stages)


def test_noop_pipeline_shape() -> None:
    noop = find_template("noop")
    assert noop.stage_names == ("a", "b", "c")
    assert [s.after for s in noop.stages] == [(), ("a",), ("b",)]
    assert all(s.task == "owl.bench_tasks:noop" and s.retry.base == 0.1 for s in noop.stages)


def test_schema_is_valid_draft_2020_12() -> None:
    schema = json.loads(data_path("schemas", "template.schema.json").read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)


def test_data_path_names_what_is_missing() -> None:
    with pytest.raises(FileNotFoundError, match=r"schemas/nosuch\.json"):
        data_path("schemas", "nosuch.json")
