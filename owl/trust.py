"""What an agent agrees to run: only template content it loaded from its own files.

Agents take tasks (``module:function``, argv, params) from the template, and the board
holds a copy of every template version datasets were registered with. Whoever can write to
the board's Redis could store a version whose task is any command; an agent that ran the
board's copy would run it on its host. So an agent runs a pinned version only when the
version's **content digest** (:func:`owl.pins.content_digest`) equals that of the template
file the agent loaded itself, and then runs its own copy. Items of other versions are held
when claimed (with the reason: nothing is lost, nothing runs), and the agent warns about them
when it starts; ``owl template migrate`` moves such datasets to the agent's version.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from owl import pins
from owl.board import Board
from owl.errors import ConfigError
from owl.model import State
from owl.queries import counts
from owl.template import Template

#: Item states that still need an agent (an item in them of a stage nobody serves waits).
PENDING = (State.WAITING, State.READY, State.RETRY)


@dataclass(frozen=True)
class Trust:
    """An agent's own template and the digest of its content."""

    template: Template
    digest: str

    @classmethod
    def of(cls, template: Template) -> Trust:
        return cls(template, pins.content_digest(template))

    def runnable(self, board: Board, version: str) -> bool:
        """Whether items pinned to ``version`` may run here (their content is ours)."""
        if version == self.template.version:
            return True
        _, digest = pins.stored(board.redis, board.keys, board.name, self.template.name, version)
        return digest == self.digest

    def untrusted_reason(self, version: str) -> str:
        t = self.template
        return (f"template {t.name} version {version} differs from {t.source or 'the agent'}'s "
                f"version {t.version}: agents run only template files they loaded; move it "
                f"with 'owl template migrate --from-version {version} --to-version {t.version}'")


def start_check(board: Board, trust: Trust) -> list[str]:
    """Checks when an agent starts: raises ConfigError when the board's copy of the agent's
    own version has other content (the file was edited without a new ``version:``); returns
    warnings about pinned versions and stages this agent's file will not run."""
    t = trust.template
    where = t.source or "the template file"
    warnings: list[str] = []
    for p in pins.pinned(board.redis, board.keys):
        if p.name != t.name or p.digest == trust.digest:
            continue
        if p.version == t.version:
            raise ConfigError(
                f"{where}: template {t.name!r} version {t.version!r} on board {board.name!r} "
                "has different content (task, argv, params or stages): the file was edited "
                "without a new 'version:'. Give it a new version (then 'owl template migrate' "
                "moves in-flight datasets), or restore the file")
        warnings.append(
            f"datasets pinned to template {t.name} version {p.version} (other content than "
            f"{where}) will not run on this agent: their items are held when claimed; move "
            f"them with 'owl template migrate --from-version {p.version} --to-version "
            f"{t.version}'")
    warnings += orphan_stages(board, t, t.stage_names)
    return warnings


def orphan_stages(board: Board, template: Template, served: Sequence[str]) -> list[str]:
    """Warnings for pending items of stages the template no longer has (a rename)."""
    pending: dict[str, int] = {}
    for (tpl, stage, state), n in counts(board).items():
        if tpl == template.name and stage not in served and state in PENDING and n > 0:
            pending[stage] = pending.get(stage, 0) + n
    return [f"{n} item(s) of stage {stage!r} of template {template.name} are waiting, ready "
            f"or retrying, but {template.source or 'the template'} has no such stage: no agent "
            "of this file runs them; 'owl template migrate' moves their datasets to this "
            "version" for stage, n in sorted(pending.items())
            if stage not in template.stage_names]
