"""A condor agent process on a real board with the file-backed schedd model.

``python condor_agent_proc.py REDIS_URL BOARD SCHEDD_FILE HOME TASK_DIR AGENT_ID LEASE``

It starts as ``owl agent --id AGENT_ID`` does (the same id check, the same Agent loop and
signal handling); only the schedd is the model of :mod:`condor_fileschedd`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import redis
from condor_fileschedd import FileSchedd

from owl import queries
from owl.agent import Agent
from owl.board import Board
from owl.condor.executor import CondorExecutor
from owl.condor.settings import CondorSettings
from owl.config import Settings
from owl.errors import ConfigError
from owl.executor import Resources
from owl.liveness import check_agent_id
from owl.template import Stage, Template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = Template(name="heavy", version="1", stages=(
    Stage("calib", task="owltask_condor:slow", executor="condor",
          resources=Resources(memory_mb=512)),
))


def main(argv: list[str]) -> int:
    url, name, schedd_file, home, task_dir, agent_id, lease = argv
    board = Board(redis.Redis.from_url(url, decode_responses=True), name, shards=4)
    try:
        note = check_agent_id(queries.agents(board), agent_id, board.name)
    except ConfigError as exc:
        print(f"owl agent: {exc}", file=sys.stderr)
        return 1
    if note is not None:
        print(f"owl agent: {note}", file=sys.stderr)
    cs = CondorSettings(board=name, agent_id=agent_id, spool_dir=Path(home) / "spool",
                        pythonpath=(str(REPO), task_dir), poll_interval=0.1,
                        reconcile_interval=5.0)
    agent = Agent(board, TEMPLATE, executor=CondorExecutor(cs, FileSchedd(Path(schedd_file))),
                  concurrency=6, settings=Settings(home=Path(home), board=name,
                                                   lease=float(lease), rescan=0.5),
                  agent_id=agent_id)
    agent.install_signal_handlers()
    return agent.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
