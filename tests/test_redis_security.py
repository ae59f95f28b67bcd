"""Redis users (ACL) and TLS against real redis-server processes started by the test.

The ACL lines are the ones the README recommends ("Redis users and TLS"): a read-only view
user, an agent user, and an operator (here the admin) who may also destroy boards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis
from redis.exceptions import NoPermissionError
from redis_servers import free_port, make_certs, redis_binary_or_skip, redis_server

from owl.board import Board
from owl.cli.main import build_cli
from owl.demo_tasks import make_demo_frames

pytestmark = pytest.mark.timeout(180)

BOARD = "secb"


def acl_lines(board: str) -> str:
    """The README's users (section "Redis users and TLS") for board ``board``, with the
    passwords viewpw, agentpw and opspw."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    users = [line for line in readme.splitlines() if line.startswith("user owl-")]
    assert len(users) == 3, users
    text = "\n".join(users).replace("~B:*", f"~{board}:*").replace("&B:*", f"&{board}:*")
    for role in ("VIEW", "AGENT", "OPS"):
        text = text.replace(f">{role}PW", f">{role.lower()}pw")
    return "user default off\n" + text


def owl(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(build_cli(), list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result.output


@pytest.fixture(scope="module")
def acl_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    binary = redis_binary_or_skip()
    port = free_port()
    with redis_server(binary, tmp_path_factory.mktemp("acl"),
                      f"port {port}\n{acl_lines(BOARD)}", port):
        yield port


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    """owl's environment without a board: each test names its own server."""
    return {**os.environ, "OWL_HOME": str(tmp_path / "home"), "OWL_PIPELINES": "@shipped",
            "PYTHONPATH": str(Path(__file__).parent.parent), "PYTHONUNBUFFERED": "1"}


def env_for(base: dict[str, str], url: str) -> dict[str, str]:
    return {**base, "OWL_REDIS_URL": url, "OWL_BOARD": BOARD, "OWL_RESCAN": "0.3"}


def test_acl_users_get_what_their_role_needs(acl_port: int, base_env: dict[str, str],
                                             tmp_path: Path) -> None:
    def url(user: str) -> str:
        return f"redis://{user}:{user.removeprefix('owl-')}pw@127.0.0.1:{acl_port}/0"

    ops = env_for(base_env, url("owl-ops"))
    agent = env_for(base_env, url("owl-agent"))
    view = env_for(base_env, url("owl-view"))
    frames = make_demo_frames(tmp_path / "in", 3)
    try:
        assert owl(ops, "ingest", str(frames[0].parent)).count("registered") == 3
        # the read-only view: reads work, every write is refused with one clear line
        assert "demo" in owl(view, "status")
        out = owl(view, "hold", "demo0001", "-s", "combine", code=1)
        assert "the Redis user may not do this" in out
        assert "no permissions to run the 'evalsha' command" in out
        assert "viewpw" not in out  # the password is never printed
        assert "no permissions to run" in owl(view, "ingest", str(frames[0]), code=1)
        # the agent user runs the pipeline to the end
        proc = subprocess.run([sys.executable, "-m", "owl", "agent", "-t", "demo", "--burst"],
                              env=agent, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        counts = json.loads(owl(view, "status", "--json"))
        assert counts["demo"]["combine"] == {"done": 3}
        # ... and may not destroy the board, nor flush the server
        out = owl(agent, "board", "destroy", "--yes", code=1)
        assert "no permissions to run the 'scan' command" in out
        agent_conn = Redis.from_url(url("owl-agent"))
        with pytest.raises(NoPermissionError, match="'flushdb'"):
            agent_conn.flushdb()
        with pytest.raises(NoPermissionError, match="access one of the keys"):
            agent_conn.get("otherboard:meta")
        agent_conn.close()
        assert "keys of board" in owl(ops, "board", "destroy", "--yes")  # operators may
    finally:
        CliRunner().invoke(build_cli(), ["board", "destroy", "--yes"], env=ops)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, Path]]]:
    binary = redis_binary_or_skip(tls=True)
    work = tmp_path_factory.mktemp("tls")
    certs = make_certs(work)
    port = free_port()
    config = (f"port 0\ntls-port {port}\ntls-cert-file {certs['server_cert']}\n"
              f"tls-key-file {certs['server_key']}\ntls-ca-cert-file {certs['ca_cert']}\n"
              "tls-auth-clients yes\n")
    with redis_server(binary, work, config, port):
        yield port, certs


def test_tls_with_ca_and_client_certificate(tls_server: tuple[int, dict[str, Path]],
                                            base_env: dict[str, str], tmp_path: Path) -> None:
    port, certs = tls_server
    url = f"rediss://127.0.0.1:{port}/0"
    env = {**env_for(base_env, url), "OWL_REDIS_CA": str(certs["ca_cert"]),
           "OWL_REDIS_CERT": str(certs["client_cert"]),
           "OWL_REDIS_KEY": str(certs["client_key"])}
    frames = make_demo_frames(tmp_path / "in", 1)
    try:
        assert "registered demo0001" in owl(env, "ingest", str(frames[0]))
        assert "demo" in owl(env, "status")
        no_cert = {k: v for k, v in env.items() if k not in ("OWL_REDIS_CERT", "OWL_REDIS_KEY")}
        out = owl(no_cert, "status", code=1)
        assert out.startswith("owl: error:") and "Traceback" not in out
        no_ca = {k: v for k, v in env.items() if k != "OWL_REDIS_CA"}
        assert "CERTIFICATE_VERIFY_FAILED" in owl(no_ca, "status", code=1)
        plain = {**env, "OWL_REDIS_URL": f"redis://127.0.0.1:{port}/0"}
        out = owl(plain, "status", code=1)
        assert "OWL_REDIS_CA, OWL_REDIS_CERT, OWL_REDIS_KEY set, but the Redis URL does not " \
               "use TLS" in out
        missing = {**env, "OWL_REDIS_CA": str(tmp_path / "nope.pem")}
        assert f"OWL_REDIS_CA={tmp_path / 'nope.pem'}: no such file" in owl(missing, "status",
                                                                            code=1)
    finally:
        conn = Redis.from_url(url, ssl_ca_certs=str(certs["ca_cert"]),
                              ssl_certfile=str(certs["client_cert"]),
                              ssl_keyfile=str(certs["client_key"]), decode_responses=True)
        Board(conn, BOARD).destroy()
        conn.close()
