"""Pinned templates: the copy of each template version the board's datasets were
registered with.

A version is pinned with its **content digest**, a hash of everything that decides what a
stage runs (stage graph, task, argv, params, resources, retry, executor, timeouts) and not of
where the file lives. A template edited without a new ``version:`` therefore cannot be
registered, and an agent whose file differs from the board's copy of its version refuses to
start: datasets registered before an edit never silently run the edited task. The index hash
``B:templates`` lists every pinned (name, version) with its digest, so operator commands
know the board's template and stage names without scanning the keyspace.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from owl.errors import BoardError
from owl.scripts import Client
from owl.template import Template, template_from_json, template_to_json


def content(template: Template) -> dict[str, Any]:
    """What the digest covers: the template as JSON without its version and file place."""
    data = template_to_json(template)
    data.pop("version")
    data.pop("source")
    data["stages"] = [{k: v for k, v in s.items() if k != "line"} for s in data["stages"]]
    return data


def content_digest(template: Template) -> str:
    """16 hex digits of SHA-256 over :func:`content` (canonical JSON)."""
    text = json.dumps(content(template), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Pinned:
    """One template version as the board keeps it."""

    name: str
    version: str
    digest: str


def conflict_text(template: Template) -> str:
    where = template.source or "this one"
    return (f"template {template.name!r} version {template.version!r} is already on the board "
            f"with different content (stages, task, argv or params) than {where}; "
            "give the changed template a new 'version:' (or drop 'version:' to use its content "
            "hash) and move in-flight datasets with 'owl template migrate'")


def pin(redis: Client, keys: Any, template: Template) -> str:
    """Store the template under its version once and return its digest; different content
    under a version already pinned is refused."""
    digest = content_digest(template)
    key = keys.template_source(template.name, template.version)
    record = json.dumps({**template_to_json(template), "digest": digest})
    pipe = redis.pipeline(transaction=False)
    pipe.set(key, record, nx=True)
    pipe.get(key)
    _, raw = pipe.execute()
    stored = json.loads(raw or "{}")
    if stored.get("digest") != digest:
        raise BoardError(conflict_text(template))
    redis.hset(keys.templates, f"{template.name}|{template.version}", digest)
    return digest


def pinned(redis: Client, keys: Any) -> list[Pinned]:
    """Every pinned template version of the board, by name then version."""
    out = []
    for field, digest in redis.hgetall(keys.templates).items():
        name, _, version = field.partition("|")
        out.append(Pinned(name, version, digest))
    return sorted(out, key=lambda p: (p.name, p.version))


def stored(redis: Client, keys: Any, board: str, name: str, version: str) -> tuple[Template, str]:
    """The pinned copy of a version and its digest."""
    raw = redis.get(keys.template_source(name, version))
    if raw is None:
        raise BoardError(f"template {name!r} version {version!r} is not on board {board!r}")
    data = json.loads(raw)
    template = template_from_json(data)
    return template, str(data.get("digest") or content_digest(template))
