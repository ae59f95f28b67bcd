"""/metrics parsed back with prometheus_client's parser and compared with the board's
counters; event-fed counters and latency histograms; an agent's own exporter."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from redis import Redis
from starlette.testclient import TestClient
from web_fixtures import _free_port, populate

from owl import queries
from owl.board import Board
from owl.model import FailureClass
from owl.server import ensure_server
from owl.web.app import create_app


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _wait_for(client: TestClient, name: str, labels: dict[str, str], value: float) -> None:
    deadline = time.monotonic() + 10
    got: list[float] = []
    while time.monotonic() < deadline:
        got = [v for lab, v in _samples(client.get("/metrics").text).get(name, [])
               if all(lab.get(k) == w for k, w in labels.items())]
        if got == [value]:
            return
        time.sleep(0.1)
    raise AssertionError(f"{name}{labels}: {got}, expected {value}")


def test_metrics_match_the_board_counters(board: Board, client_ro: TestClient) -> None:
    populate(board)
    samples = _samples(client_ro.get("/metrics").text)
    items = {(lab["template"], lab["stage"], lab["state"]): v
             for lab, v in samples["owl_items"]}
    assert items == {k: float(v) for k, v in queries.counts(board).items()}
    oldest = {(lab["template"], lab["stage"]): v
              for lab, v in samples["owl_oldest_ready_seconds"]}
    assert set(oldest) == {("pipe", "measure")} and 0 <= oldest[("pipe", "measure")] < 60
    # the app followed the event streams before populate(): every transition was seen
    _wait_for(client_ro, "owl_failures_total", {"stage": "calib", "class": "error"}, 6)
    for stage, waits, runs in (("check", 30, 30), ("calib", 30, 24)):
        _wait_for(client_ro, "owl_ready_to_claimed_seconds_count", {"stage": stage}, waits)
        _wait_for(client_ro, "owl_claim_to_done_seconds_count", {"stage": stage}, runs)
        _wait_for(client_ro, "owl_completions_total", {"stage": stage, "template": "pipe"},
                  runs)
    claims = board.claim("agent-2", "pipe", ["measure"], 30, 3)
    for c in claims[:2]:
        assert board.complete(c, {}, "agent-2").ok
    board.fail(claims[2], FailureClass.TIMEOUT, "took too long", "", 0.0, "agent-2")
    _wait_for(client_ro, "owl_completions_total", {"stage": "measure", "template": "pipe"}, 2)
    _wait_for(client_ro, "owl_failures_total", {"stage": "measure", "class": "timeout"}, 1)
    _wait_for(client_ro, "owl_claim_to_done_seconds_count", {"stage": "measure"}, 2)
    _wait_for(client_ro, "owl_ready_to_claimed_seconds_count", {"stage": "measure"}, 3)
    samples = _samples(client_ro.get("/metrics").text)
    wait = [v for lab, v in samples["owl_ready_to_claimed_seconds_sum"]
            if lab["stage"] == "measure"]
    assert 0 <= wait[0] < 60
    inf = [v for lab, v in samples["owl_claim_to_done_seconds_bucket"]
           if lab["stage"] == "measure" and lab["le"] == "+Inf"]
    assert inf == [2.0]
    items = {(lab["template"], lab["stage"], lab["state"]): v
             for lab, v in samples["owl_items"]}
    assert items == {k: float(v) for k, v in queries.counts(board).items()}


def test_agent_metrics_port(embedded_home: Path, board_name: str, tmp_path: Path) -> None:
    """`owl agent --metrics-port` serves the board's gauges and its own workers (on the
    embedded board only: the exporter's board reads are the ones tested above)."""
    pipelines = tmp_path / "pipelines"
    pipelines.mkdir()
    (pipelines / "idle.yaml").write_text(
        "name: idle\nstages:\n  only:\n    task: owl_testtasks:record\n")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "OWL_REDIS_URL": ensure_server(embedded_home), "OWL_BOARD": board_name,
           "OWL_HOME": str(tmp_path / "home"), "OWL_PIPELINES": str(pipelines),
           "PYTHONPATH": os.pathsep.join([str(repo / "tests" / "helpers"), str(repo)])}
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "owl", "agent", "-t", "idle", "-c", "1",
                             "--metrics-port", str(port)], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                              timeout=2).read().decode()
                if "owl_workers{" in text and "owl_agent_heartbeat_age_seconds{" in text:
                    break
            except OSError:
                time.sleep(0.2)
        samples = _samples(text)
        workers = [v for lab, v in samples["owl_workers"]]
        assert workers == [1.0]  # the local executor's one worker process
        memory = [v for lab, v in samples["owl_worker_memory_bytes"]]
        assert len(memory) == 1 and memory[0] > 1e6
        assert "owl_condor_jobs" not in samples  # a local agent runs no pool jobs
        beats = [lab["agent"] for lab, _ in samples["owl_agent_heartbeat_age_seconds"]]
        assert len(beats) == 1
        # every exporter (owl web's too) shows each agent's workers from its heartbeat
        heartbeat_rss = [v for lab, v in samples["owl_agent_workers_memory_bytes"]]
        assert len(heartbeat_rss) == 1 and heartbeat_rss[0] > 1e6
        # ... and so does the agents page
        web_board = Board(Redis.from_url(env["OWL_REDIS_URL"], decode_responses=True),
                          board_name)
        with TestClient(create_app(web_board, follow=False)) as client:
            page = client.get("/agents").text
        assert beats[0] in page and " MB</td>" in page and ">serve</td>" in page
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
        Board(Redis.from_url(env["OWL_REDIS_URL"], decode_responses=True), board_name).destroy()


def test_owl_web_command_serves_the_board(embedded_home: Path, board_name: str,
                                          tmp_path: Path) -> None:
    """`owl web` as an operator runs it: read-only without a token, refuses a short one."""
    env = {**os.environ, "OWL_REDIS_URL": ensure_server(embedded_home), "OWL_BOARD": board_name,
           "OWL_HOME": str(tmp_path / "home")}
    env.pop("OWL_WEB_TOKEN", None)
    short = subprocess.run([sys.executable, "-m", "owl", "web"], env={**env,
                           "OWL_WEB_TOKEN": "short"}, capture_output=True, text=True,
                           timeout=60, check=False)
    assert short.returncode != 0 and "at least 16 characters" in short.stderr
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "owl", "web", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status is None:
            try:
                status = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status",
                                                timeout=2).read()
            except OSError:
                time.sleep(0.2)
        assert status == b"{}"
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/retry", method="POST",
                                         data=b'{"stages": ["x"]}')
        try:
            urllib.request.urlopen(request, timeout=5)
            raise AssertionError("a read-only server accepted an action")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
    finally:
        proc.terminate()
        proc.wait(30)
        assert proc.stderr is not None
        assert "read-only (OWL_WEB_TOKEN not set)" in proc.stderr.read()
        proc.stderr.close()
        Board(Redis.from_url(env["OWL_REDIS_URL"], decode_responses=True), board_name).destroy()
