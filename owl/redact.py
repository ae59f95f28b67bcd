"""Passwords never leave owl in print: one redaction function for every output.

Redis URLs carry their credentials (``redis://user:secret@host:6379/0``,
``rediss://:secret@host``, ``redis://host?password=secret``). Anything owl prints, logs or
puts on a command line passes through :func:`redact` first: ``owl board status``, errors
about an unreachable server, log events, and the argv of agents started by ``owl demo``
(which get the URL through the environment instead, since argv is world-readable in
``ps``).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

#: ``scheme://user:password@`` - the password is everything between the first ':' after
#: the scheme and the last '@' before the host (a password may itself contain '@' or ':').
_USERINFO = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s/:@]*:)(?P<secret>[^\s/]*)@",
                       re.IGNORECASE)
#: ``?password=...`` / ``&password=...`` query parameters (redis-py accepts them).
_QUERY = re.compile(r"(?P<head>[?&](?:password|pass|pwd)=)(?P<secret>[^&\s#]*)", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by ``***``.

    Parameters
    ----------
    text : str
        Any text: a URL, an error message quoting one, a log line.

    Returns
    -------
    str
        The same text; user names, hosts, ports and databases are kept so the message still
        says which server was meant.

    Examples
    --------
    >>> redact("cannot reach Redis at redis://owl:hunter2@db:6379/3")
    'cannot reach Redis at redis://owl:***@db:6379/3'
    >>> redact("rediss://:s3cr@t@db?password=x&db=2")
    'rediss://:***@db?password=***&db=2'
    """
    if "://" not in text and "pass" not in text.lower() and "pwd" not in text.lower():
        return text
    text = _USERINFO.sub(lambda m: m["head"] + (MASK if m["secret"] else "") + "@", text)
    return _QUERY.sub(lambda m: m["head"] + MASK, text)


def redact_value(value: Any) -> Any:
    """:func:`redact` applied to every string inside `value` (dicts, lists, tuples)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value
