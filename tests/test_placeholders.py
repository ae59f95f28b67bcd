"""argv placeholders: the one list validation checks is the list the run expands, and the
shell-quoting form keeps file names from running as shell code."""

from __future__ import annotations

from pathlib import Path

import pytest

from owl.errors import PermanentError
from owl.model import TaskSpec
from owl.placeholders import PLACEHOLDERS, problems
from owl.task import expand_argv, run_task
from owl.template_loader import load_template

EVIL = "x;touch PWNED;_sh.fits"


def spec(tmp_path: Path, argv: tuple[str, ...], params: dict[str, object] | None = None,
         input_path: str = "/data/in.fits") -> TaskSpec:
    return TaskSpec(dataset="ds1", stage="calib", template="t", token=7, attempt=2, task=None,
                    argv=argv, input_path=input_path, inputs={},
                    output_dir=str(tmp_path / "out"), params=params or {})


def test_every_validated_name_expands_at_run_time(tmp_path: Path) -> None:
    argv = (*(f"{{{n}}}" for n in PLACEHOLDERS), "{param.msg}", "{param.n}", "{{x}}")
    assert all(not list(problems(a, ["msg", "n"])) for a in argv)
    got = expand_argv(spec(tmp_path, argv, {"msg": "hi there", "n": [1, 2]}))
    assert got == ["ds1", "calib", "t", "/data/in.fits", str(tmp_path / "out"), "7", "2",
                   "hi there", "[1, 2]", "{x}"]


def test_param_placeholder_validates_and_runs(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("name: t\nstages:\n  a:\n    argv: [echo, '{param.msg}', '{token}']\n"
                    "    params: {msg: hello}\n")
    stage = load_template(path).stage("a")
    assert stage.argv is not None
    out = run_task(spec(tmp_path, stage.argv, stage.params))
    assert out["files"] == []
    assert (tmp_path / "out" / ".owl").is_dir()


def test_unknown_placeholder_at_run_time_names_it(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=r"argv element '\{nope\}': unknown placeholder"):
        expand_argv(spec(tmp_path, ("{nope}",)))


def test_quoted_input_cannot_inject_shell_code(tmp_path: Path) -> None:
    evil = tmp_path / "in" / EVIL
    evil.parent.mkdir()
    evil.write_bytes(b"SIMPLE  =                    T")
    template = tmp_path / "t.yaml"
    template.write_text("name: t\nstages:\n  a:\n"
                        "    argv: [sh, -c, 'cp {input!q} {output_dir!q}/copy.fits']\n")
    argv = load_template(template).stage("a").argv
    assert argv is not None
    s = spec(tmp_path, argv, input_path=str(evil))
    assert run_task(s)["files"] == ["copy.fits"]
    assert not list(tmp_path.rglob("PWNED"))
    assert (tmp_path / "out" / "copy.fits").read_bytes() == evil.read_bytes()


def test_unquoted_input_in_a_shell_is_refused_by_validation(tmp_path: Path) -> None:
    template = tmp_path / "t.yaml"
    template.write_text("name: t\nstages:\n  a:\n    argv: [/bin/bash, -ec, 'cat {input}']\n")
    from owl.errors import TemplateError

    with pytest.raises(TemplateError, match=r"t.yaml:4: stages.a.argv\[2\]: \{input\} inside"):
        load_template(template)
