"""Commands that do work: agent, ingest, demo."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import structlog

from owl import queries
from owl.agent import Agent, new_agent_id
from owl.cli.main import settings_of
from owl.cli.ops import print_counts, print_grid
from owl.cli.output import emit_line
from owl.config import SHIPPED_PIPELINES, Settings
from owl.connect import open_board, wait_for_board
from owl.errors import ConfigError
from owl.executor import Executor
from owl.liveness import check_agent_id
from owl.local import LocalExecutor
from owl.model import State
from owl.redact import redact
from owl.resources import pipelines_dir
from owl.routing import RoutingExecutor
from owl.server import ensure_server
from owl.template import Template
from owl.template_loader import find_template, load_templates, load_valid_templates


def templates_of(settings: Settings) -> list[Template]:
    """Every template in the template directories; the first of a name wins."""
    seen: dict[str, Template] = {}
    for t in load_templates(settings.template_dirs()):
        seen.setdefault(t.name, t)
    return list(seen.values())


def make_executor(kind: str, template: Template, stages: Sequence[str], concurrency: int,
                  settings: Settings, log_json: bool, agent_id: str,
                  prefetch: int = 0) -> Executor:
    """The executor of an agent: ``local`` or ``condor`` for every stage, or ``auto``: each
    stage on the executor its template names (one agent serves a hybrid template)."""
    served = stages or template.stage_names
    by_stage = {s: (kind if kind != "auto" else template.stage(s).executor) for s in served}
    wanted = sorted(set(by_stage.values()))
    if prefetch and wanted != ["local"]:
        on_condor = sorted(s for s, name in by_stage.items() if name != "local")
        raise ConfigError(f"--prefetch queues items in local workers; stage(s) "
                          f"{', '.join(on_condor)} of template {template.name!r} run on condor "
                          "(serve them with another agent, or leave --prefetch out)")
    made: dict[str, Executor] = {}
    for name in wanted:
        if name == "local":
            made[name] = LocalExecutor(concurrency, log_json=log_json,
                                       capture_root=settings.work_dir / ".capture",
                                       prefetch=prefetch)
        elif name == "condor":
            from owl.condor.executor import CondorExecutor

            made[name] = CondorExecutor.from_settings(settings, agent_id=agent_id)
        else:
            raise ConfigError(f"unknown executor {name!r}: use 'local' or 'condor'")
    if len(made) == 1:
        return made[wanted[0]]
    return RoutingExecutor(made, by_stage)


def _checked_start(board: Any, template: Template, stages: Sequence[str], executor_kind: str,
                   settings: Settings, agent_id: str,
                   restart: Callable[[], object] | None) -> None:
    """The start-up checks of an agent (its id, its tasks); an outage during them is waited
    out as in the agent's loop, not an exit (the board may restart as the agent starts)."""
    from owl.faults import explain, passing

    while True:
        try:
            note = check_agent_id(queries.agents(board), agent_id, board.name)
            if note is not None:
                click.echo(f"owl agent: {note}", err=True)
            _preflight(board, template, stages, executor_kind, settings)
            return
        except Exception as exc:
            if not passing(exc):
                raise
            structlog.get_logger("owl.agent").error("board.unreachable", error=explain(exc),
                                                    detail="waiting for it")
            time.sleep(1.0)
            if restart is not None:
                with contextlib.suppress(Exception):  # it is tried again next time round
                    restart()


@click.command()
@click.option("--template", "-t", "template_name", required=True, help="Template to serve.")
@click.option("--stage", "-s", "stages", multiple=True,
              help="Stage to serve (repeatable; default: every stage).")
@click.option("--concurrency", "-c", default=2, show_default=True, help="Items run at once.")
@click.option("--prefetch", default=0, show_default=True, metavar="N",
              help="Items claimed beyond --concurrency, queued in the local workers so that "
                   "a worker starts its next task without waiting for the agent (for short "
                   "tasks: a queued item is leased to this agent until a worker takes it).")
@click.option("--executor", "executor_kind", type=click.Choice(["auto", "local", "condor"]),
              default="auto", show_default=True,
              help="auto: each stage on the executor its template names.")
@click.option("--burst", is_flag=True,
              help="Exit 0 once nothing served is ready, running or retrying.")
@click.option("--grace", default=30.0, show_default=True,
              help="Seconds running tasks may finish after SIGTERM before being given back.")
@click.option("--id", "agent_id", metavar="NAME",
              help="Agent id. A condor agent restarted under the same id adopts the jobs it "
                   "left in the pool (default for condor: HOST-TEMPLATE-condor; for local: "
                   "unique per process).")
@click.option("--metrics-port", type=int, metavar="N",
              help="Serve Prometheus /metrics on port N: the board's counters and latencies, "
                   "this agent's worker CPU/memory and pool jobs.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Address the /metrics server listens on.")
@click.pass_context
def agent(ctx: click.Context, template_name: str, stages: tuple[str, ...], concurrency: int,
          prefetch: int, executor_kind: str, burst: bool, grace: float, agent_id: str | None,
          metrics_port: int | None, metrics_host: str) -> None:
    """Claim and run the items of a template's stages."""
    settings = settings_of(ctx)
    if concurrency < 1:
        raise click.BadParameter("must be at least 1", param_hint="--concurrency")
    if prefetch < 0:
        raise click.BadParameter("must be 0 or more", param_hint="--prefetch")
    template = find_template(template_name, settings.template_dirs())
    unknown = [s for s in stages if s not in template.stage_names]
    if unknown:
        raise ConfigError(f"template {template.name!r} ({template.source}) has no stage "
                          f"{', '.join(map(repr, unknown))}; its stages are "
                          f"{', '.join(template.stage_names)}")
    board = wait_for_board(settings, lambda why: structlog.get_logger("owl.agent").error(
        "board.unreachable", error=why, detail="waiting for it"))
    uses_condor = executor_kind == "condor" or (executor_kind == "auto" and any(
        template.stage(s).executor == "condor" for s in (stages or template.stage_names)))
    if agent_id is None:
        agent_id = (f"{socket.gethostname()}-{template.name}-condor"
                    if uses_condor else new_agent_id())
    restart = None if settings.redis_url else (lambda: ensure_server(settings.home))
    _checked_start(board, template, stages, executor_kind, settings, agent_id, restart)
    executor = make_executor(executor_kind, template, stages, concurrency, settings,
                             ctx.obj["log_json"], agent_id, prefetch)
    a = Agent(board, template, executor=executor, concurrency=concurrency, settings=settings,
              prefetch=prefetch,
              stages=stages, burst=burst, grace=grace, agent_id=agent_id,
              on_unreachable=restart)
    a.install_signal_handlers()
    tail = None
    if metrics_port is not None:
        from owl.web.exporter import serve_agent_metrics

        tail = serve_agent_metrics(board, agent_id, executor, metrics_port, metrics_host)
    try:
        code = a.run()
    finally:
        if tail is not None:
            tail.stop()
    ctx.exit(code)


def _preflight(board: Any, template: Template, stages: Sequence[str], executor_kind: str,
               settings: Settings) -> None:
    """Refuse to start on what would fail every item (owl.preflight, owl.trust); warn about
    items this agent's file will not run."""
    from owl.preflight import check_agent
    from owl.trust import Trust, start_check

    served = stages or template.stage_names
    kinds = {s: executor_kind if executor_kind != "auto" else template.stage(s).executor
             for s in served}
    job_python = None
    if "condor" in kinds.values():
        from owl.condor.settings import CondorSettings

        cs = CondorSettings.from_env(settings.board, "preflight", settings.home)
        if cs.container is not None or not os.access(cs.python, os.X_OK):
            # The jobs' Python lives in an image or on the execute points only.
            click.echo(f"owl agent: note: condor task imports not checked here (jobs run "
                       f"{cs.python}{' in ' + cs.container if cs.container else ''})", err=True)
            kinds = {s: k for s, k in kinds.items() if k != "condor"}
        else:
            job_python = (cs.python, (*cs.wheels, *cs.pythonpath))
    check_agent(template, [s for s in served if s in kinds], kinds, settings.work_dir,
                job_python)
    for warning in start_check(board, Trust.of(template)):
        click.echo(f"owl agent: warning: {warning}", err=True)


def _print_result(r: Any, as_json: bool, say: Callable[[str], None] = click.echo) -> None:
    if as_json:
        emit_line(vars(r))
    elif r.status == "registered":
        say(f"registered {r.dataset} ({r.template}) from {r.path}")
    elif r.status == "exists":
        say(f"unchanged  {r.dataset}: {r.detail}")
    elif r.status in ("error", "conflict"):
        click.echo(f"{r.status:<10} {r.path}: {r.detail}", err=True)
    else:
        say(f"{r.status:<10} {r.path}: {r.detail}")


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--watch", "watching", is_flag=True,
              help="Keep watching for new files (taken once completely written).")
@click.option("--interval", default=2.0, show_default=True, help="Seconds between scans.")
@click.option("--stall", default=60.0, show_default=True,
              help="--watch: report a file still incomplete after this many unchanged seconds.")
@click.option("--json", "as_json", is_flag=True,
              help="JSON Lines: one object per file (schemas/cli/ingest.schema.json).")
@click.pass_context
def ingest(ctx: click.Context, paths: tuple[Path, ...], watching: bool, interval: float,
           stall: float, as_json: bool) -> None:
    """Register datasets from files (or directories of files)."""
    from owl.ingest import candidates, ingest_file, watch

    settings = settings_of(ctx)
    # A broken template file is reported and the others go on; the exit status says so.
    notes: list[str] = []
    found, problems = load_valid_templates(settings.template_dirs(), notes)
    templates = list({t.name: t for t in reversed(found)}.values())  # first of a name wins
    for note in notes:
        click.echo(f"owl: note: {note}", err=True)
    for problem in problems:
        click.echo(f"owl: template error: {problem}", err=True)
    if not templates:
        raise ConfigError(f"no valid templates in {[str(d) for d in settings.template_dirs()]}")
    missing = [str(p) for p in paths if not p.exists()]
    if missing and not watching:
        raise ConfigError(f"no such file or directory: {', '.join(missing)}")
    board = open_board(settings)
    if watching:
        click.echo(f"watching {', '.join(map(str, paths))} (Ctrl-C to stop)", err=True)
        try:
            watch(board, templates, list(paths), interval=interval, stall=stall,
                  report=lambda r: _print_result(r, as_json))
        except KeyboardInterrupt:
            return
        return
    from owl.cli.progress import progress

    errors = len(problems)
    files = list(candidates(paths, templates))
    with progress("ingest", len(files), enabled=not as_json) as (advance, say):
        for path in files:
            r = ingest_file(board, templates, path)
            errors += r.status in ("error", "conflict")
            _print_result(r, as_json, say)
            advance(1)
    ctx.exit(1 if errors else 0)


@click.command()
@click.option("--datasets", "-n", default=36, show_default=True, help="Datasets to generate.")
@click.option("--agents", "-a", "n_agents", default=2, show_default=True)
@click.option("--concurrency", "-c", default=2, show_default=True, help="Items per agent.")
@click.option("--timeout", default=600.0, show_default=True, help="Give up after seconds.")
@click.pass_context
def demo(ctx: click.Context, datasets: int, n_agents: int, concurrency: int,
         timeout: float) -> None:
    """Run the demo pipeline on generated datasets, with progress, then print the board."""
    from owl.demo_board import fresh_demo_board
    from owl.demo_tasks import make_demo_frames
    from owl.ingest import ingest_file

    base = settings_of(ctx)
    settings = base if ctx.parent and ctx.parent.params.get("board") else replace(
        base, board="demo")
    board = fresh_demo_board(settings)
    # The shipped demo unless a template directory has its own (OWL_PIPELINES may omit it).
    template = find_template("demo", [*settings.template_dirs(), pipelines_dir()])
    incoming = (settings.home / "demo" / "incoming").resolve()
    where = redact(settings.redis_url) if settings.redis_url else (
        "the embedded Redis in " + str(settings.home))
    click.echo(f"owl demo: board {settings.board!r} on {where}")
    frames = make_demo_frames(incoming, datasets)
    regs = [ingest_file(board, [template], p) for p in frames]
    bad = [r for r in regs if r.status != "registered"]
    if bad:
        raise ConfigError(f"demo ingest failed: {bad[0].path}: {bad[0].detail}")
    click.echo(f"registered {len(regs)} datasets from {incoming}")
    procs = _start_agents(settings, n_agents, concurrency, ctx.obj["log_json"])
    click.echo(f"started {n_agents} agents x {concurrency} workers "
               f"(logs in {settings.home / 'demo'})")
    total = datasets * len(template.stages)
    ok = _follow(board, procs, total, timeout)
    click.echo("")
    print_counts(board, "demo", as_json=False)
    print_grid(board, "demo", 12, as_json=False)
    done = queries.counts(board).get(("demo", template.stages[-1].name, State.DONE), 0)
    retried = sum(1 for e in queries.events(board, count=100000)
                  if e.get("to") == State.RETRY)
    click.echo(f"{done} of {datasets} datasets done; {retried} attempt(s) failed and were "
               f"retried; outputs under {settings.work_dir / 'demo'}")
    if not settings.redis_url:
        click.echo("the embedded Redis keeps running for other owl commands; "
                   "'owl board stop' stops it")
    ctx.exit(0 if ok and done == datasets else 1)


def _start_agents(settings: Settings, n: int, concurrency: int,
                  log_json: bool) -> list[subprocess.Popen[bytes]]:
    logdir = settings.home / "demo"
    logdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "owl", "--home", str(settings.home), "--board", settings.board]
    # The URL goes through the environment: argv is readable by every user (ps) and may
    # carry a password.
    env = {**os.environ, "OWL_REDIS_URL": settings.redis_url or ""}
    # The agents find the demo where the demo did: the template directories, then the
    # shipped templates even when OWL_PIPELINES leaves them out.
    env["OWL_PIPELINES"] = os.pathsep.join([*map(str, settings.template_dirs()),
                                            SHIPPED_PIPELINES])
    if log_json:
        cmd.append("--log-json")
    procs = []
    for i in range(n):
        with open(logdir / f"agent-{i + 1}.log", "wb") as logf:
            procs.append(subprocess.Popen(
                [*cmd, "agent", "-t", "demo", "-c", str(concurrency), "--burst"],
                stdout=logf, stderr=subprocess.STDOUT, env=env))
    return procs


def _follow(board: object, procs: list[subprocess.Popen[bytes]], total: int,
            timeout: float) -> bool:
    """Print progress until every agent has exited; False on timeout or agent failure."""
    from owl.board import Board

    assert isinstance(board, Board)
    start = time.monotonic()
    tty = sys.stdout.isatty()
    last_line = ""
    while True:
        c = queries.counts(board)
        by_state = {s: sum(n for (t, _, st), n in c.items() if t == "demo" and st == s)
                    for s in State}
        done = by_state[State.DONE]
        bar = "#" * int(30 * done / total) + "." * (30 - int(30 * done / total))
        line = (f"[{bar}] {done}/{total} items done  running {by_state[State.RUNNING]}  "
                f"ready {by_state[State.READY]}  retry {by_state[State.RETRY]}  "
                f"dead {by_state[State.DEAD]}  {time.monotonic() - start:5.1f}s")
        if tty:
            click.echo("\r" + line, nl=False)
        elif line.split("  ")[0] != last_line:
            click.echo(line)
            last_line = line.split("  ")[0]
        if all(p.poll() is not None for p in procs):
            if tty:
                click.echo("\r" + line)
            return all(p.returncode == 0 for p in procs)
        if time.monotonic() - start > timeout:
            for p in procs:
                p.terminate()
            click.echo(f"\ndemo: gave up after {timeout:g} s", err=True)
            return False
        time.sleep(0.3)


COMMANDS = [agent, ingest, demo]
