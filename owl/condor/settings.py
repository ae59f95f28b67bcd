"""The condor executor's one settings object."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import owl
from owl.errors import ConfigError


def _default_pythonpath() -> tuple[str, ...]:
    # The job runs ``python -m owl.condor.job`` on another machine: owl itself (a checkout
    # works too) and whatever PYTHONPATH the agent runs with (task modules) must import there.
    owl_root = str(Path(owl.__file__).resolve().parent.parent)
    extra = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return tuple(dict.fromkeys([owl_root, *extra]))


@dataclass(frozen=True)
class CondorSettings:
    """How a :class:`~owl.condor.executor.CondorExecutor` submits and tracks jobs.

    Parameters
    ----------
    board : str
        Name of the blackboard; every job carries it (``OwlBoard``).
    agent_id : str
        The agent that owns the jobs (``OwlAgent``); it names the event log, so an agent
        that restarts under the same id resumes reading where it stopped.
    spool_dir : Path
        Directory for spec/result files and event logs. In shared-filesystem mode it must
        be visible at the same path on every execute point.
    transfer_files : bool
        False (default): shared filesystem, ``should_transfer_files = NO``. True: HTCondor
        transfers the spec file in and the result file back; the task's ``output_dir``
        must still be reachable from the execute point.
    reconcile_interval : float
        Seconds between reconciliations of the tracked jobs with a schedd query and
        history, which catches whatever the event log missed.
    poll_interval : float
        Seconds between looks at the event logs while jobs are out (the agent polls at
        that pace). A look that finds nothing costs well under a millisecond, while the
        time between a job's end and the agent seeing it is time the next item's job is
        not yet in the queue (it matters when the agent holds few more items than the
        pool has slots).
    max_batch : int
        Most items per submit transaction (one cluster). ``Schedd.submit`` builds its
        submit text by repeated string concatenation, quadratic in the item count: 2,000
        items take milliseconds, 20,000 take seconds, so bigger batches are split.
    inline_spec : int
        Shared-filesystem mode: a TaskSpec whose JSON has at most this many bytes travels
        in the job's arguments (base64) instead of a spec file, saving a file written on
        the shared disk and read by the job per item; 0 always writes spec files.
    submit_window : float
        Seconds a submitted job may wait for others before its transaction goes to the
        schedd: items that become ready within the window (one completion after another)
        share one transaction instead of one to four each. Only while at least as many
        of the executor's jobs are idle in the queue as run: otherwise a job goes at once
        (a slot that comes free finds it and keeps its claim instead of waiting for the
        next negotiation cycle). 0 submits at once.
    adopt_window : float
        How far back (seconds) :meth:`adopt` looks in the schedd history for jobs that
        finished while no agent was watching.
    python : str
        Interpreter that runs the job on the execute point (the agent's by default; not
        transferred, so it must exist at that path there, or inside ``container``).
    pythonpath : tuple of str
        ``PYTHONPATH`` given to the job (owl's own root plus the agent's PYTHONPATH).
    container : str or None
        Run jobs in the container universe with this image (owl and the task code
        installed in it, or on ``pythonpath`` paths the container sees).
    wheels : tuple of str
        Wheel files sent with every job (file-transfer mode only) and put first on its
        ``PYTHONPATH``: owl's own wheel, and the task code's, for execute points that have
        the interpreter and the libraries but not owl.
    collector : str or None
        Collector host used to locate the schedd; None: the local pool from CONDOR_CONFIG.
    schedd_name : str or None
        Name of the schedd to use; None: the local schedd.
    """

    board: str
    agent_id: str
    spool_dir: Path
    transfer_files: bool = False
    reconcile_interval: float = 60.0
    poll_interval: float = 0.2
    max_batch: int = 2000
    inline_spec: int = 2048
    submit_window: float = 0.5
    adopt_window: float = 86400.0
    python: str = sys.executable
    pythonpath: tuple[str, ...] = field(default_factory=_default_pythonpath)
    collector: str | None = None
    schedd_name: str | None = None
    container: str | None = None
    wheels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.wheels and not self.transfer_files:
            raise ConfigError(
                "OWL_CONDOR_WHEELS needs file-transfer mode (OWL_CONDOR_TRANSFER=1): the "
                "wheels travel with each job"
            )
        for wheel in self.wheels:
            if not Path(wheel).is_absolute() or not wheel.endswith(".whl"):
                raise ConfigError(f"OWL_CONDOR_WHEELS: {wheel!r} is not an absolute path "
                                  "to a .whl file")
            if any(c in wheel for c in " \t,'\"$"):  # written into transfer_input_files
                raise ConfigError(f"OWL_CONDOR_WHEELS: {wheel!r} contains whitespace, a "
                                  "comma, a quote or '$'; use a plain path")

    def job_pythonpath(self) -> tuple[str, ...]:
        """The job's ``PYTHONPATH``: the transferred wheels (by file name, in the job's
        scratch directory) before ``pythonpath``."""
        return (*(Path(w).name for w in self.wheels), *self.pythonpath)

    @classmethod
    def from_env(cls, board: str, agent_id: str, home: Path) -> CondorSettings:
        """Settings for ``board``/``agent_id`` from the environment.

        ``OWL_CONDOR_SPOOL`` (default ``HOME/condor``, made absolute),
        ``OWL_CONDOR_TRANSFER`` (``1``: file-transfer mode), ``OWL_CONDOR_COLLECTOR``,
        ``OWL_CONDOR_SCHEDD``, ``OWL_CONDOR_RECONCILE`` and ``OWL_CONDOR_SUBMIT_WINDOW``
        (seconds); how jobs find Python and owl on the execute points:
        ``OWL_CONDOR_PYTHON`` (interpreter; default the agent's, ``/usr/bin/python3`` in
        a container), ``OWL_CONDOR_PYTHONPATH`` (``:``-separated; default owl's root and
        the agent's PYTHONPATH, none in a container), ``OWL_CONDOR_CONTAINER`` (image of
        the container universe), ``OWL_CONDOR_WHEELS`` (``:``-separated wheel files sent
        with each job; needs ``OWL_CONDOR_TRANSFER=1``).
        """
        env = os.environ
        reconcile = _seconds(env, "OWL_CONDOR_RECONCILE", 60.0)
        window = _seconds(env, "OWL_CONDOR_SUBMIT_WINDOW", 0.5)
        container = env.get("OWL_CONDOR_CONTAINER") or None
        python = env.get("OWL_CONDOR_PYTHON") or ("/usr/bin/python3" if container
                                                  else sys.executable)
        if "OWL_CONDOR_PYTHONPATH" in env:
            pythonpath = tuple(p for p in env["OWL_CONDOR_PYTHONPATH"].split(os.pathsep) if p)
        else:
            pythonpath = () if container else _default_pythonpath()
        wheels = tuple(w for w in env.get("OWL_CONDOR_WHEELS", "").split(os.pathsep) if w)
        return cls(
            board=board,
            agent_id=agent_id,
            spool_dir=Path(env.get("OWL_CONDOR_SPOOL") or home / "condor").resolve(),
            transfer_files=env.get("OWL_CONDOR_TRANSFER", "0").lower() in ("1", "true", "yes"),
            reconcile_interval=reconcile,
            submit_window=window,
            collector=env.get("OWL_CONDOR_COLLECTOR") or None,
            schedd_name=env.get("OWL_CONDOR_SCHEDD") or None,
            python=python,
            pythonpath=pythonpath,
            container=container,
            wheels=wheels,
        )


def _seconds(env: os._Environ[str], name: str, default: float) -> float:
    try:
        value = float(env.get(name) or default)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number of seconds: {exc}") from exc
    if value < 0:
        raise ConfigError(f"{name} must not be negative, got {value}")
    return value


def refuse_root(euid: int) -> None:
    """Refuse to submit as root: a schedd never lets root own a job.

    The jobs belong to the account that runs the agent (HTCondor's ``Owner``), and they
    write the spool and output files as that account on the execute points.

    Raises
    ------
    ConfigError
        When ``euid`` is 0.
    """
    if euid == 0:
        raise ConfigError(
            "a condor agent cannot run as root: a schedd never lets root own a job. Run "
            "the agent as the account that should own the jobs and can write OWL_HOME and "
            "the condor spool (for example: sudo -u owl owl agent ...)"
        )
