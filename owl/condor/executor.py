"""The condor executor: owl work items as HTCondor jobs.

:class:`CondorExecutor` implements :class:`owl.executor.Executor`. ``submit`` sends each
stage's jobs as one transaction; ``poll`` reads the agent's job event log (resuming where
a previous run of the same agent stopped) and, every ``reconcile_interval`` seconds,
checks the tracked jobs against the schedd queue and history, so an event the log missed
delays an outcome but never loses it. Jobs carry their board, agent, dataset, stage and
token as job attributes: an agent that restarts calls :meth:`adopt` and re-attaches to its
jobs instead of submitting them again. The agent owns every board write; this class only
reports :class:`~owl.model.Outcome` values.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import structlog

from owl.condor import attrs
from owl.condor.adopt import AdoptedJob, adopted_job, finished_jobs
from owl.condor.events import EventFollower
from owl.condor.info import job_info as job_info  # owl show and the web import it here
from owl.condor.outcome import outcome_of
from owl.condor.schedd import Action, CondorError, HTCondorSchedd, ScheddClient
from owl.condor.settings import CondorSettings, refuse_root
from owl.condor.spool import Spool, item_files
from owl.condor.submit import build_batch, group_jobs
from owl.condor.tracker import Ending, TrackedJob, Tracker
from owl.condor.window import SubmitWindow, key_of
from owl.config import Settings
from owl.errors import ConfigError
from owl.executor import Job
from owl.model import Outcome

log = structlog.get_logger("owl.condor")

_LIVE = f"JobStatus =?= {attrs.IDLE} || JobStatus =?= {attrs.RUNNING} || JobStatus =?= {attrs.HELD}"


class CondorExecutor:
    """Runs jobs on an HTCondor pool and reports their outcomes.

    Parameters
    ----------
    settings : CondorSettings
        Board, agent id, spool directory, intervals, transfer mode, schedd location.
    schedd : ScheddClient, optional
        The schedd to talk to; by default :class:`~owl.condor.schedd.HTCondorSchedd`
        built from the settings (it locates the schedd on first use).
    clock, sleep : callable, optional
        Monotonic clock and sleep function (``time.monotonic``/``time.sleep``).
    """

    name = "condor"

    def __init__(
        self,
        settings: CondorSettings,
        schedd: ScheddClient | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.spool = Spool(settings.spool_dir.resolve())  # paths go to other machines
        self.schedd: ScheddClient = schedd or HTCondorSchedd(
            settings.collector, settings.schedd_name
        )
        self._clock, self._sleep = clock, sleep
        self._tracker = Tracker()
        self._followers: dict[Path, EventFollower] = {}
        self._follow(self.spool.event_log(settings.agent_id))
        self._pending: list[Outcome] = []  # outcomes found outside poll (adopt)
        self._finished: list[Path] = []  # item files to delete at the next commit
        self._next_reconcile = clock() + settings.reconcile_interval
        self._window = SubmitWindow(settings.submit_window, settings.max_batch, clock)
        self._next_look = clock()  # when poll should next read the event logs

    @classmethod
    def from_settings(cls, settings: Settings, agent_id: str) -> CondorExecutor:
        """The executor of an agent, configured from owl's settings and the environment.

        See :meth:`CondorSettings.from_env` for the ``OWL_CONDOR_*`` variables.

        Raises
        ------
        ConfigError
            The agent runs as root (see :func:`refuse_root`).
        """
        refuse_root(os.geteuid())
        return cls(CondorSettings.from_env(settings.board, agent_id, settings.home))

    def submit(self, jobs: Sequence[Job]) -> None:
        """Submit ``jobs``: one transaction per stage (and distinct cpus/disk/timeout/extra
        attributes), split every ``max_batch`` items.

        While at least as many of the executor's jobs wait in the queue for a slot as run,
        new jobs wait up to ``submit_window`` seconds for more, so that items becoming
        ready one after another share a transaction; :meth:`poll` (or :meth:`flush`) sends
        them. Otherwise they go at once: a slot that comes free and finds nothing of ours
        to run goes back to the negotiator (seconds).
        An item whose (dataset, stage, token) is already tracked (say, adopted) is not
        submitted again.

        Raises
        ------
        CondorError
            The schedd refused or could not be reached; nothing of that batch runs.
        ConfigError
            A job's extra submit attributes try to override one owl manages.
        """
        fresh = []
        for job in jobs:
            key = key_of(job)
            if key in self._window or self._tracker.find(*key):
                log.warning("condor.already_submitted", dataset=key[0], stage=key[1],
                            token=key[2])
            else:
                fresh.append(job)
        if self._window.add(fresh) or not self._tracker.queue_covers_slots():
            self.flush()

    def flush(self) -> None:
        """Send the jobs waiting for the submit window now.

        Raises
        ------
        CondorError, ConfigError
            As :meth:`submit`.
        """
        for group in group_jobs(self._window.take(), self.settings.max_batch):
            self._submit_batch(group)

    def due(self) -> float | None:
        """When :meth:`poll` should be called next (the agent's clock): the end of the
        submit window, or the next look at the event logs while jobs are out."""
        times = [self._window.due] if self._window.due is not None else []
        if self._tracker.ids():
            times.append(self._next_look)
        return min(times) if times else None

    def _submit_batch(self, group: Sequence[Job]) -> None:
        batch = build_batch(group, self.settings, self.spool)
        try:
            info = self.schedd.submit(batch.description, batch.itemdata)
        except CondorError:
            for item in batch.items:
                _delete_files(item.base)
            raise
        if info.count != len(batch.items):
            raise CondorError(
                f"condor cluster {info.cluster}: schedd created {info.count} jobs for "
                f"{len(batch.items)} items of stage {group[0].spec.stage!r}"
            )
        for proc, item in enumerate(batch.items):
            self._tracker.add(TrackedJob(info.cluster, proc, item.dataset, item.stage,
                                         item.token, item.attempt, item.base))
        log.info(
            "condor.submitted", stage=group[0].spec.stage, cluster=info.cluster, jobs=info.count
        )

    def poll(self, timeout: float) -> list[Outcome]:
        """Outcomes of jobs that ended since the last call.

        Waits at most ``timeout`` seconds for the first one. Calling ``poll`` also
        confirms that the previous call's outcomes were handled: only then is the
        event-log position saved and their spool files deleted (delivery is at least
        once across an agent crash).
        """
        self._commit()
        deadline = self._clock() + max(0.0, timeout)
        outcomes, self._pending = self._pending, []
        while True:
            self._next_look = self._clock() + self.settings.poll_interval
            endings = [e for f in list(self._followers.values()) for e in self._apply(f)]
            if self._clock() >= self._next_reconcile:
                endings += self._reconcile()
            if self._window.expired() or (
                    self._window and not self._tracker.queue_covers_slots()):
                self.flush()  # the window ended, or the queue no longer covers the slots
            outcomes += self._finish(endings)
            remaining = deadline - self._clock()
            if outcomes or remaining <= 0:
                return outcomes
            self._sleep(min(self.settings.poll_interval, remaining))

    def cancel(self, dataset: str, stage: str, token: int) -> None:
        """Remove the job of a fenced attempt; its outcome is never reported.

        A schedd that cannot be reached is logged, not raised: the attempt is fenced on
        the board already, so a job left running can only produce discarded output.
        """
        if self._window.drop((dataset, stage, token)):  # never submitted: nothing to remove
            return
        jobs = self._tracker.find(dataset, stage, token)
        for job in jobs:
            self._tracker.cancel(job)
            self._finished.append(job.base)
        try:
            names = [j.name for j in jobs] or self._queued_names(
                f"{attrs.item_constraint(self.settings.board, dataset, stage)} && "
                f"{attrs.TOKEN} == {int(token)}"
            )
            self.schedd.act(Action.REMOVE, names, f"owl: token {token} of {dataset}/{stage} fenced")
        except CondorError as exc:
            log.warning(
                "condor.cancel_failed", dataset=dataset, stage=stage, token=token, error=str(exc)
            )

    def active(self) -> int:
        """Number of jobs submitted or adopted whose outcome is still to come."""
        return len(self._window) + sum(1 for i in self._tracker.ids() if not self._cancelled(i))

    def job_states(self) -> dict[str, int]:
        """Jobs whose outcome is still to come, by state (idle, running, held, evicted)."""
        out: dict[str, int] = {}
        for i in self._tracker.ids():
            job = self._tracker.get(i)
            if job is not None and not self._cancelled(i):
                out[job.state] = out.get(job.state, 0) + 1
        return out

    def waitables(self) -> list[Any]:
        """Nothing to wait on: the agent polls a condor executor on its timer."""
        return []

    def close(self) -> None:
        """Send the jobs still waiting for the submit window, save the event-log position
        and stop reading; the jobs keep running (a restart adopts them)."""
        try:
            self.flush()
        except (CondorError, ConfigError) as exc:  # their items are given back at restart
            log.error("condor.submit_failed", error=str(exc))
        self._commit()
        for follower in self._followers.values():
            follower.close()

    def adopt(
        self, board: str, agent_id: str, held: Collection[tuple[str, str, int]] = ()
    ) -> list[AdoptedJob]:
        """Re-attach to the jobs an agent left on the schedd (after a restart).

        Queued jobs of ``board``/``agent_id`` are tracked from now on (their event log is
        followed too); the agent removes those whose token it no longer holds. The history
        is read only for the items in ``held`` that have no queued job (within
        ``adopt_window`` seconds): their jobs finished while no agent watched, and their
        outcomes come from the next :meth:`poll`. Finished jobs of items the board no
        longer gives this agent are not looked at.

        Parameters
        ----------
        board, agent_id : str
            Whose jobs to adopt (the agent's previous id, when it changed).
        held : collection of (dataset, stage, token)
            The items the board says this agent holds.

        Returns
        -------
        list of AdoptedJob
            Every queued job, and the finished jobs of held items; held items not listed
            have no job and must be submitted again.
        """
        constraint = attrs.owner_constraint(board, agent_id)
        adopted: list[AdoptedJob] = []
        for ad in self.schedd.query(constraint, attrs.STATUS_PROJECTION):
            job = self._tracked_from_ad(ad)
            if ad.get("UserLog"):
                self._follow(Path(str(ad["UserLog"])))
            adopted.append(
                adopted_job(job, attrs.STATUS_NAMES.get(ad.get("JobStatus") or 0, "unknown"))
            )
        queued = {(a.dataset, a.stage, a.token) for a in adopted}
        missing = {item for item in held if item not in queued}
        finished = finished_jobs(self.schedd, constraint, missing, self.settings.adopt_window)
        for ad in finished:
            job = self._tracked_from_ad(ad)
            state = "completed" if ad.get("JobStatus") == attrs.COMPLETED else "removed"
            adopted.append(adopted_job(job, state))
        self._pending += self._finish(
            self._tracker.check_history(
                [(int(a["ClusterId"]), int(a["ProcId"])) for a in finished], finished
            )
        )
        log.info("condor.adopted", board=board, agent=agent_id, jobs=len(adopted))
        return adopted

    def outlives_agent(self, stage: str) -> bool:
        """Jobs run on in the pool while their agent restarts (and are adopted)."""
        return True

    def pause(self, dataset: str, stage: str, token: int) -> None:
        """An operator held the item: hold its job (a pause, not a failure)."""
        self.flush()  # a job still waiting to be submitted must exist to be held
        self.hold(dataset, stage)

    def resume(self, dataset: str, stage: str, token: int) -> None:
        """The operator released the item: release its job."""
        self.release(dataset, stage)

    def hold(self, dataset: str, stage: str, reason: str = "held by an owl operator") -> int:
        """Hold the job of a work item (an operator pause; not reported as a failure).

        Returns
        -------
        int
            How many jobs were held.
        """
        return self.schedd.act(Action.HOLD, self._item_names(dataset, stage), reason)

    def release(self, dataset: str, stage: str) -> int:
        """Release the held job of a work item; returns how many jobs were released."""
        return self.schedd.act(
            Action.RELEASE, self._item_names(dataset, stage), "released by an owl operator"
        )

    def job_info(self, dataset: str, stage: str) -> dict[str, Any]:
        """What condor knows of the latest job of a work item (see :func:`job_info`)."""
        return job_info(self.schedd, self.settings.board, dataset, stage)

    def _follow(self, path: Path) -> None:
        if path not in self._followers:
            self._followers[path] = EventFollower(path, Spool.offset_file(path))

    def _apply(self, follower: EventFollower) -> list[Ending]:
        endings = []
        for event in follower.read():
            ending = self._tracker.apply(event)
            if ending is not None:
                endings.append(ending)
        return endings

    def _reconcile(self) -> list[Ending]:
        self._next_reconcile = self._clock() + self.settings.reconcile_interval
        ids = self._tracker.ids()
        if not ids:
            return []
        board = f"{attrs.BOARD} == {attrs.classad_string(self.settings.board)}"
        try:
            queue = self.schedd.query(
                f"{board} && {attrs.ids_constraint(ids)}", attrs.STATUS_PROJECTION
            )
            endings, missing = self._tracker.check_queue(queue)
            if missing:
                history = self.schedd.history(
                    f"{board} && {attrs.ids_constraint(missing)}",
                    attrs.STATUS_PROJECTION,
                    len(missing),
                )
                endings += self._tracker.check_history(missing, history)
        except CondorError as exc:
            log.warning("condor.reconcile_failed", error=str(exc))
            return []
        return endings

    def _finish(self, endings: list[Ending]) -> list[Outcome]:
        to_remove = [e.job.name for e in endings if e.remove]
        if to_remove:
            try:
                self.schedd.act(Action.REMOVE, to_remove, "owl: attempt failed, job held")
            except CondorError as exc:
                log.warning("condor.remove_failed", jobs=to_remove, error=str(exc))
        outcomes = []
        for ending in endings:
            outcome = outcome_of(ending)
            log.debug("condor.ended", dataset=outcome.dataset, stage=outcome.stage,
                      token=outcome.token, job=ending.job.name, ok=outcome.ok,
                      failure=outcome.failure)
            outcomes.append(outcome)
            self._finished.append(ending.job.base)
        return outcomes

    def _commit(self) -> None:
        for follower in self._followers.values():
            follower.commit()
        for base in self._finished:
            _delete_files(base)
        self._finished = []

    def _cancelled(self, job_id: tuple[int, int]) -> bool:
        job = self._tracker.get(job_id)
        return job is None or job.cancelled

    def _item_names(self, dataset: str, stage: str) -> list[str]:
        tracked = [j.name for j in self._tracker.find(dataset, stage) if not j.cancelled]
        return tracked or self._queued_names(
            attrs.item_constraint(self.settings.board, dataset, stage)
        )

    def _queued_names(self, constraint: str) -> list[str]:
        ads = self.schedd.query(f"({constraint}) && ({_LIVE})", ["ClusterId", "ProcId"])
        return [f"{ad['ClusterId']}.{ad['ProcId']}" for ad in ads]

    def _tracked_from_ad(self, ad: dict[str, Any]) -> TrackedJob:
        job_id = (int(ad["ClusterId"]), int(ad["ProcId"]))
        job = self._tracker.get(job_id)
        if job is None:
            job = TrackedJob(job_id[0], job_id[1], str(ad[attrs.DATASET]), str(ad[attrs.STAGE]),
                             int(ad[attrs.TOKEN]), int(ad.get(attrs.ATTEMPT) or 0),
                             Path(str(ad[attrs.ITEM])))
            self._tracker.add(job)
        return job


def _delete_files(base: Path) -> None:
    for path in item_files(base):
        path.unlink(missing_ok=True)
