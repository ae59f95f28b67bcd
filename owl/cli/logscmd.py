"""``owl logs``: what a task printed, attempt by attempt (the files in OUTPUT_DIR/.owl/)."""

from __future__ import annotations

import click

from owl import queries
from owl.cli.main import settings_of
from owl.connect import open_board
from owl.errors import BoardError
from owl.tasklog import find_attempt_logs
from owl.template_checks import did_you_mean


@click.command()
@click.argument("dataset")
@click.argument("stage")
@click.option("--attempt", "-a", type=click.IntRange(min=1),
              help="Which attempt (default: the latest that left logs).")
@click.option("--generation", "-g", type=click.IntRange(min=1),
              help="Which generation (run) of the dataset (default: the latest).")
@click.option("--stream", type=click.Choice(["both", "stdout", "stderr"]), default="both",
              show_default=True, help="Which of the task's streams to print.")
@click.pass_context
def logs(ctx: click.Context, dataset: str, stage: str, attempt: int | None,
         generation: int | None, stream: str) -> None:
    """What a task printed (stdout/stderr of one attempt)."""
    settings = settings_of(ctx)
    ds = queries.dataset(open_board(settings, create=False), dataset)
    stages = [i.stage for i in ds.items]
    if stage not in stages:
        raise BoardError(f"dataset {dataset!r} (template {ds.template!r}) has no stage "
                         f"{stage!r}{did_you_mean(stage, stages)}; its stages are "
                         f"{', '.join(stages)}")
    root = settings.work_dir / ds.template / dataset
    found = find_attempt_logs(root, stage, attempt, generation)
    if found is None:
        which = f"attempt {attempt}" if attempt else "any attempt"
        if generation:
            which += f" of generation {generation}"
        raise BoardError(f"no log files of {which} of {dataset} {stage} under {root}: an "
                         "attempt that printed nothing keeps none, and logs are kept where "
                         "the agent ran its task (its OWL_WORK)")
    names = ["stdout", "stderr"] if stream == "both" else [stream]
    number = (found / "attempt").read_text().strip()
    for name in names:
        path = found / f"{name}.log"
        click.echo(f"==> {name} of attempt {number}, generation "
                   f"{found.parent.parent.name[1:]} ({path}) <==", err=True)
        if path.exists():
            with path.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 16), b""):
                    click.echo(chunk, nl=False)


COMMANDS = [logs]
