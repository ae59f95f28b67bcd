"""Template directories: OWL_PIPELINES replaces the default, earlier folders shadow later
ones, and the README's recipe for the demo's heavy stage on Condor works as written (the
parts that need no pool: loading, routing, ingest)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from owl import queries
from owl.board import Board
from owl.cli.main import build_cli
from owl.cli.run import make_executor
from owl.condor.executor import CondorExecutor
from owl.config import Settings
from owl.demo_tasks import make_demo_frames
from owl.errors import ConfigError
from owl.local import LocalExecutor
from owl.resources import pipelines_dir
from owl.routing import RoutingExecutor
from owl.template_loader import find_template, load_valid_templates

REPO = Path(__file__).resolve().parents[1]


def _template_file(folder: Path, name: str, match: str = "DEMO") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\nmatch: {{INSTRUME: {match}}}\ningest: ['*_{name}.fits']\n"
                    "stages:\n  only: {task: owl.bench_tasks:noop}\n")
    return path


def test_owl_pipelines_replaces_the_shipped_templates(tmp_path: Path) -> None:
    _template_file(tmp_path / "mine", "mine")
    dirs = Settings(pipelines=(tmp_path / "mine",)).template_dirs()
    assert dirs == (tmp_path / "mine",)
    found, problems = load_valid_templates(dirs)
    assert [t.name for t in found] == ["mine"] and problems == []


def test_the_shipped_templates_are_named_with_at_shipped(tmp_path: Path) -> None:
    _template_file(tmp_path / "mine", "mine")
    dirs = Settings(pipelines=(tmp_path / "mine", Path("@shipped"))).template_dirs()
    assert dirs == (tmp_path / "mine", pipelines_dir())


def test_default_is_local_pipelines_then_shipped(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings().template_dirs() == (pipelines_dir(),)
    (tmp_path / "pipelines").mkdir()
    assert Settings().template_dirs() == (Path("pipelines"), pipelines_dir())


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"OWL_PIPELINES names .*nosuch, which is not a dir"):
        Settings(pipelines=(tmp_path / "nosuch",)).template_dirs()


def test_an_earlier_directory_shadows_a_later_one_with_a_note(tmp_path: Path) -> None:
    first = _template_file(tmp_path / "a", "demo")
    later = _template_file(tmp_path / "b", "demo")
    notes: list[str] = []
    found, problems = load_valid_templates([tmp_path / "a", tmp_path / "b"], notes)
    assert [t.source for t in found] == [str(first)] and problems == []
    assert notes == [f"{later}:1: template 'demo' is shadowed by {first}:1 (an earlier "
                     "template directory)"]


def test_one_name_twice_in_one_directory_is_still_an_error(tmp_path: Path) -> None:
    _template_file(tmp_path / "a", "demo")
    (tmp_path / "a" / "copy.yaml").write_text((tmp_path / "a" / "demo.yaml").read_text())
    found, problems = load_valid_templates([tmp_path / "a"])
    assert len(found) == 1 and len(problems) == 1 and "is already used by" in problems[0]


def _readme_recipe() -> list[str]:
    text = (REPO / "README.md").read_text()
    block = text.split("The demo's heavy stage on Condor, everything else local:", 1)[1]
    body = re.search(r"```sh\n(.*?)```", block, re.S)
    assert body is not None
    return body[1].replace("\\\n", " ").splitlines()


@pytest.mark.parametrize("extra", [[], ["@shipped"]], ids=["replace", "shadow"])
def test_readme_demo_heavy_stage_on_condor_recipe(tmp_path: Path, owl_env: dict[str, str],
                                                  board: Board, extra: list[str]) -> None:
    mkdir_sed, export = _readme_recipe()[:2]
    assert mkdir_sed.startswith("mkdir -p mypipes && sed ") and "OWL_PIPELINES" in export
    checkout = tmp_path / "checkout"  # the recipe runs in a checkout: pipelines/demo.yaml
    checkout.mkdir()
    (checkout / "pipelines").symlink_to(pipelines_dir())
    subprocess.run(["sh", "-c", mkdir_sed], cwd=checkout, check=True, timeout=30)
    mypipes = checkout / "mypipes"
    env = {**owl_env, "OWL_PIPELINES": os.pathsep.join([str(mypipes), *extra])}

    settings = Settings(pipelines=tuple(Path(p) for p in env["OWL_PIPELINES"].split(":")))
    demo = find_template("demo", settings.template_dirs())
    assert demo.source == str(mypipes / "demo.yaml")
    assert {s.name: s.executor for s in demo.stages}["calibrate"] == "condor"
    assert {s.executor for s in demo.stages if s.name != "calibrate"} == {"local"}
    if os.geteuid() == 0:  # the agent would refuse: a schedd never lets root own a job
        with pytest.raises(ConfigError, match="cannot run as root"):
            make_executor("auto", demo, (), 2, settings, False, "ap1-demo-condor")
    else:
        routing = make_executor("auto", demo, (), 2, settings, False, "ap1-demo-condor")
        try:
            assert isinstance(routing, RoutingExecutor)
            assert isinstance(routing.executors["condor"], CondorExecutor)
            assert isinstance(routing.executors["local"], LocalExecutor)
        finally:
            routing.close()

    frames = make_demo_frames(tmp_path / "incoming", 2)
    result = CliRunner().invoke(build_cli(), ["ingest", str(frames[0].parent)], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.count("registered demo") == 2
    assert "already used" not in result.output and "matches" not in result.output
    assert ("is shadowed by" in result.output) == bool(extra)
    item = queries.dataset(board, "demo0001")
    assert item.version == demo.version  # the copy with the condor stage, not the shipped
