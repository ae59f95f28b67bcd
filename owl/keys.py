"""Every Redis key name owl uses, built in one place.

Layout (``B`` is the board name, default ``owl``; ``n`` a shard number)::

    B:meta                       hash   board settings: shards, created, format, demo
    B:tplsrc:NAME:VERSION        string template as JSON (what was registered)
    B:templates                  hash   "NAME|VERSION" -> content digest of every pinned version
    B:agents                     zset   agent id -> last heartbeat (ms)
    B:agent:ID                   string agent record as JSON, expires without heartbeat
    B:notify:TEMPLATE            pub/sub channel: "work of TEMPLATE may be ready" (a hint)
    B:{sN}:wake:TEMPLATE         shard channel, the same on a Redis 7 cluster (SPUBLISH)
    B:{sN}:ds:DATASET            hash   the dataset record and its items (fields below)
    B:{sN}:tpl:NAME:VERSION      hash   stage -> graph/retry JSON, for the Lua scripts
    B:{sN}:ready:CAMPAIGN:NAME:STAGE  zset  ready items "DATASET" by (priority, dataset age)
    B:{sN}:ctl                   hash   this shard's copy of the control state (pauses,
                                        campaign states) that the claim script checks
    B:{sN}:ccounts               hash   "CAMPAIGN|TEMPLATE|STAGE|STATE" -> number of items
    B:{sN}:gen:DATASET           list   archived generations of a dataset (JSON each)
    B:{sN}:cds:CAMPAIGN          zset   datasets of a campaign in this shard, by time
    B:{sN}:parked:CAMPAIGN       zset   "DATASET|STAGE" ready items a draining campaign parked
    B:{sN}:delayed               zset   "DATASET|STAGE" in retry backoff, by due time
    B:{sN}:leases                zset   "DATASET|STAGE" running, by lease deadline
    B:{sN}:dead                  zset   "DATASET|STAGE" dead, by time of death
    B:{sN}:held                  zset   "DATASET|STAGE" held, by time of hold
    B:{sN}:datasets              zset   dataset ids by registration time
    B:{sN}:ix:TPL:STAGE:STATE    zset   waiting / ready items "DATASET" by registration time
    B:{sN}:counts                hash   "TEMPLATE|STAGE|STATE" -> number of items
    B:{sN}:events                stream capped audit trail of every transition (t: us)
    B:{sN}:tokens                string last fencing token issued (they follow the clock:
                                        new_token in owl/lua/_lib.lua)
    B:{sN}:err:DATASET|STAGE     list   JSON failure records (reason, traceback), kept
    B:{sN}:hist:DATASET          list   the dataset's own history, one entry per transition
                                        (owl.history), capped per dataset, not per shard
    B:{sN}:pvenv                 hash   provenance environment id -> JSON (owl.provenance)
    B:{sN}:refsel:TEMPLATE:CFG   zset   "DATASET" (or "DATASET#N", the Nth member) -> its
                                        exposure start (epoch s), for datasets whose header
                                        keywords the reference rules select on are config
                                        CFG (owl.refs); the dataset's own list is its 'sel'
    B:{sN}:selcfg                hash   "TEMPLATE|CFG" -> JSON of those keywords
    B:{sN}:refuse                hash   "TEMPLATE|STAGE|REFNAME" -> first use (ms)
    B:refs                       hash   reference rules versions: "current" -> id, id -> JSON

Control slot (board-wide control state; see docs/control.md)::

    B:{ctl}:campaigns            hash   campaign -> definition JSON
    B:{ctl}:cstate               hash   campaign -> active|paused|draining|drained|cancelled
    B:{ctl}:vtime                hash   campaign -> virtual time (stride scheduling)
    B:{ctl}:served               hash   campaign -> when last served or seen idle (ms)
    B:{ctl}:pauses               hash   "KIND:NAME" -> {by, why, t}
    B:{ctl}:limits               hash   limit name -> N, set live (owl limit set)
    B:{ctl}:tlimits              hash   limit name -> N, declared by templates
    B:{ctl}:permits:LIMIT        zset   permits held: "DATASET|STAGE|TOKEN" or reservations
    B:{ctl}:powners              hash   "DATASET|STAGE|TOKEN" -> limit names it holds
    B:{ctl}:cron                 hash   schedule -> last fired tick (ms)
    B:{ctl}:events               stream operator actions and control changes (who, why)

The ``{sN}`` hash tag puts every key of one shard in one Redis Cluster slot, so each Lua
script touches a single slot. A dataset lives in shard ``crc32(id) % shards``; the number of
shards is fixed when the board is created. The Lua scripts build the ``ds:``, ``tpl:``,
``ready:`` and ``err:`` names from the shard prefix with the same patterns as below.

Dataset hash fields: ``t`` template, ``v`` version, ``p`` input path, ``c`` created (ms), and
per stage S: ``S.s`` state, ``S.a`` attempts, ``S.k`` token, ``S.o`` owner, ``S.u`` updated
(ms), ``S.d`` retry due (ms), ``S.out`` outputs (JSON), ``S.e`` last error, ``S.hp`` state
before a hold, ``S.pv`` provenance of the last completion (JSON, any generation: a rerun
keeps it until the next completion replaces it, for skip-if-done), ``S.pe`` the id of its
environment in ``pvenv``; ``rf`` reference overrides (JSON name -> file, ``owl refs apply``);
``sel`` its reference selection entries ``CFG|EPOCH;...`` (one per member).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

#: Dataset ids and stage names appear inside key names and "DATASET|STAGE" members.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name))


@dataclass(frozen=True)
class Keys:
    """Key names of one board."""

    board: str

    @property
    def meta(self) -> str:
        return f"{self.board}:meta"

    @property
    def agents(self) -> str:
        return f"{self.board}:agents"

    @property
    def notify(self) -> str:
        """Prefix of the plain wake-up channels (the template name follows)."""
        return f"{self.board}:notify:"

    def wake(self, shard: int) -> str:
        """Prefix of a shard's wake-up channels, in the shard's slot (template follows)."""
        return f"{self.prefix(shard)}wake:"

    def agent(self, agent_id: str) -> str:
        return f"{self.board}:agent:{agent_id}"

    @property
    def templates(self) -> str:
        return f"{self.board}:templates"

    def template_source(self, name: str, version: str) -> str:
        return f"{self.board}:tplsrc:{name}:{version}"

    def prefix(self, shard: int) -> str:
        return f"{self.board}:{{s{shard}}}:"

    def dataset(self, shard: int, dataset: str) -> str:
        return f"{self.prefix(shard)}ds:{dataset}"

    def template(self, shard: int, name: str, version: str) -> str:
        return f"{self.prefix(shard)}tpl:{name}:{version}"

    def ready(self, shard: int, campaign: str, template: str, stage: str) -> str:
        return f"{self.prefix(shard)}ready:{campaign}:{template}:{stage}"

    def shard_ctl(self, shard: int) -> str:
        return f"{self.prefix(shard)}ctl"

    def campaign_counts(self, shard: int) -> str:
        return f"{self.prefix(shard)}ccounts"

    def generations(self, shard: int, dataset: str) -> str:
        return f"{self.prefix(shard)}gen:{dataset}"

    def campaign_datasets(self, shard: int, campaign: str) -> str:
        return f"{self.prefix(shard)}cds:{campaign}"

    def parked(self, shard: int, campaign: str) -> str:
        return f"{self.prefix(shard)}parked:{campaign}"

    # -- the control slot -------------------------------------------------------------------

    @property
    def ctl(self) -> str:
        return f"{self.board}:{{ctl}}:"

    def ctl_key(self, name: str) -> str:
        """``campaigns``, ``cstate``, ``vtime``, ``served``, ``pauses``, ``limits``,
        ``tlimits``, ``powners``, ``cron`` or ``events`` of the control slot."""
        return f"{self.ctl}{name}"

    def permits(self, limit: str) -> str:
        return f"{self.ctl}permits:{limit}"

    def errors(self, shard: int, dataset: str, stage: str) -> str:
        return f"{self.prefix(shard)}err:{dataset}|{stage}"

    def history(self, shard: int, dataset: str) -> str:
        return f"{self.prefix(shard)}hist:{dataset}"

    def pvenv(self, shard: int) -> str:
        return f"{self.prefix(shard)}pvenv"

    def refsel(self, shard: int, template: str, config: str) -> str:
        return f"{self.prefix(shard)}refsel:{template}:{config}"

    def selcfg(self, shard: int) -> str:
        return f"{self.prefix(shard)}selcfg"

    def refuse(self, shard: int) -> str:
        return f"{self.prefix(shard)}refuse"

    @property
    def refs(self) -> str:
        return f"{self.board}:refs"

    def delayed(self, shard: int) -> str:
        return f"{self.prefix(shard)}delayed"

    def leases(self, shard: int) -> str:
        return f"{self.prefix(shard)}leases"

    def dead(self, shard: int) -> str:
        return f"{self.prefix(shard)}dead"

    def held(self, shard: int) -> str:
        return f"{self.prefix(shard)}held"

    def index(self, shard: int, template: str, stage: str, state: str) -> str:
        return f"{self.prefix(shard)}ix:{template}:{stage}:{state}"

    def datasets(self, shard: int) -> str:
        return f"{self.prefix(shard)}datasets"

    def counts(self, shard: int) -> str:
        return f"{self.prefix(shard)}counts"

    def events(self, shard: int) -> str:
        return f"{self.prefix(shard)}events"

    def tokens(self, shard: int) -> str:
        return f"{self.prefix(shard)}tokens"

    def all_keys(self) -> str:
        """SCAN pattern matching every key of this board."""
        return f"{self.board}:*"


def shard_of(dataset: str, shards: int) -> int:
    """The shard a dataset lives in: stable across processes and Python versions."""
    return zlib.crc32(dataset.encode()) % shards


def member(dataset: str, stage: str) -> str:
    return f"{dataset}|{stage}"


def split_member(value: str) -> tuple[str, str]:
    dataset, _, stage = value.rpartition("|")
    return dataset, stage
