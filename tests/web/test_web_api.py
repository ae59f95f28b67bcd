"""The web board's JSON API and pages on a real Redis (Starlette's TestClient): the CLI's
--json shapes, server-side grid paging, refusal of actions without token or CSRF."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
from starlette.testclient import TestClient
from web_fixtures import PIPE, TOKEN, dead_ids, populate

from owl import queries
from owl.board import Board
from owl.resources import data_path
from owl.web import data


def _openapi() -> dict[str, object]:
    doc: dict[str, object] = json.loads(data_path("schemas", "web-api.json").read_text())
    return doc


def _check(payload: object, name: str) -> None:
    """Validate against a schema of schemas/web-api.json (refs resolved inside it)."""
    doc = _openapi()
    schema = {"$ref": f"#/components/schemas/{name}", **{"components": doc["components"]}}
    jsonschema.validate(payload, schema)


def test_status_and_show_mirror_the_cli(board: Board, client_ro: TestClient) -> None:
    populate(board)
    status = client_ro.get("/api/status").json()
    assert status == data.status(board)
    assert status["pipe"]["calib"] == {"done": 24, "dead": 6}
    _check(status, "Status")
    shown = client_ro.get("/api/datasets/obs0005").json()
    _check(shown, "Dataset")
    calib = next(i for i in shown["items"] if i["stage"] == "calib")
    assert calib["state"] == "dead"
    assert "ValueError: bad bias level" in shown["failures"]["calib"][0]["traceback"]
    calib_history = [e for e in shown["history"] if e["st"] == "calib"]
    assert [(e["fr"], e["to"]) for e in calib_history][-2:] == [("ready", "running"),
                                                                ("running", "dead")]
    missing = client_ro.get("/api/datasets/nosuch")
    assert missing.status_code == 404 and "not on board" in missing.json()["error"]
    dead = client_ro.get("/api/dead").json()
    _check(dead, "Dead")
    assert sorted(r["dataset"] for r in dead) == dead_ids()
    assert client_ro.get("/api/dead", params={"stage": "check"}).json() == []
    _check(client_ro.get("/api/agents").json(), "Agents")
    _check(client_ro.get("/api/events", params={"count": 5}).json(), "Events")


def test_grid_pages_cover_every_dataset_once_in_order(board: Board,
                                                      client_ro: TestClient) -> None:
    ids = populate(board, n=130, dead_every=7)
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = client_ro.get("/api/grid", params={"limit": 40, "cursor": cursor}).json()
        _check(page, "GridPage")
        assert page["total"] == 130
        seen += [r["dataset"] for r in page["rows"]]
        pages += 1
        cursor = page["next"]
        if not cursor:
            break
    assert pages == 4 and sorted(seen) == ids  # every dataset once
    created = [queries.dataset(board, d).created_ms for d in seen]
    assert created == sorted(created)  # in registration order across shards
    row = page["rows"][-1]
    assert list(row["stages"]) == ["check", "calib", "measure"]
    dead = client_ro.get("/api/grid", params={"state": "dead", "limit": 100}).json()
    assert sorted(r["dataset"] for r in dead["rows"]) == dead_ids(130, 7)
    assert dead["total"] == len(dead_ids(130, 7)) and dead["next"] == ""
    named = client_ro.get("/api/grid", params={"name": "obs01[01]?", "stage": "measure",
                                               "state": "ready"}).json()
    assert sorted(r["dataset"] for r in named["rows"]) == [
        d for d in ids if re.fullmatch(r"obs01[01]\d", d) and d not in dead_ids(130, 7)]
    found: list[str] = []
    cursor = ""
    while True:  # a name pattern is matched by ZSCAN inside Redis, resumed across pages
        page = client_ro.get("/api/grid", params={"name": "obs00[2-9]*", "limit": 7,
                                                  "cursor": cursor}).json()
        assert len(page["rows"]) <= 7
        found += [r["dataset"] for r in page["rows"]]
        cursor = page["next"]
        if not cursor:
            break
    assert sorted(found) == [d for d in ids if re.fullmatch(r"obs00[2-9]\d", d)]
    exact = client_ro.get("/api/grid", params={"name": "obs0042"}).json()
    assert [r["dataset"] for r in exact["rows"]] == ["obs0042"] and exact["examined"] == 1
    bad = client_ro.get("/api/grid", params={"state": "lost"})
    assert bad.status_code == 400 and "not one of" in bad.json()["error"]
    html = client_ro.get("/grid", params={"state": "dead"}).text
    assert "obs0007" in html and "obs0008" not in html


def _item_states(board: Board, stage: str) -> dict[str, str]:
    return {ds.dataset: next(i.state for i in ds.items if i.stage == stage)
            for ds in queries.datasets(board)}


def _signed_in(client: TestClient) -> str:
    """Sign in; the CSRF value of the session's forms."""
    page = client.post("/login", data={"name": "alice", "token": TOKEN},
                       headers={"Origin": "http://127.0.0.1"}, follow_redirects=True)
    assert "signed in as" in page.text
    found = re.search(r'name=csrf value="([^"]+)"',
                      client.get("/dead/retry", params={"stage": "calib"}).text)
    assert found
    return found.group(1)


def test_actions_refused_without_token_csrf_or_origin(board: Board, client_ro: TestClient,
                                                      client_rw: TestClient) -> None:
    populate(board)
    before = _item_states(board, "calib")
    items = "\n".join(f"{d}|calib" for d in dead_ids())
    read_only = client_ro.post("/dead/retry", data={"items": items, "csrf": "x"},
                               headers={"Origin": "http://127.0.0.1"})
    assert read_only.status_code == 403 and "read-only" in read_only.text
    assert client_ro.post("/api/retry", json={"stages": ["calib"]}).status_code == 403
    anonymous = client_rw.post("/dead/retry", data={"items": items},
                               headers={"Origin": "http://127.0.0.1"})
    assert anonymous.status_code == 401
    wrong = client_rw.post("/api/retry", json={"stages": ["calib"]},
                           headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    csrf = _signed_in(client_rw)
    no_csrf = client_rw.post("/dead/retry", data={"items": items},
                             headers={"Origin": "http://127.0.0.1"})
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.text
    forged = client_rw.post("/dead/retry", data={"items": items, "csrf": csrf},
                            headers={"Origin": "http://evil.example"})
    assert forged.status_code == 403 and "Origin" in forged.text
    no_origin = client_rw.post("/dead/retry", data={"items": items, "csrf": csrf})
    assert no_origin.status_code == 403
    assert _item_states(board, "calib") == before  # nothing changed
    dry = client_rw.post("/api/retry", json={"stages": ["calib"], "dry_run": True}).json()
    assert sorted(p["dataset"] for p in dry) == dead_ids()
    assert {(p["before"], p["after"]) for p in dry} == {("dead", "ready")}
    assert _item_states(board, "calib") == before  # a dry run changes nothing
    done = client_rw.post("/dead/retry", data={"items": items, "csrf": csrf},
                          headers={"Origin": "http://127.0.0.1"})
    assert done.status_code == 200 and f"{len(dead_ids())}</b> of" in done.text
    after = _item_states(board, "calib")
    assert all(after[d] == "ready" for d in dead_ids())
    events = [e for e in queries.events(board, count=500) if e["fr"] == "dead"]
    assert {e["by"] for e in events} == {"web:alice"} and len(events) == len(dead_ids())


def test_bearer_token_actions_are_audited(board: Board, client_rw: TestClient) -> None:
    populate(board)
    res = client_rw.post("/api/hold", json={"datasets": ["obs0001"], "stages": ["measure"]},
                         headers={"Authorization": f"Bearer {TOKEN}", "X-Owl-User": "cron"})
    assert res.status_code == 200
    assert res.json() == [{"dataset": "obs0001", "stage": "measure", "changed": True,
                           "before": "ready", "after": "held"}]
    last = queries.events(board, dataset_id="obs0001", count=1)[-1]
    assert (last["to"], last["by"]) == ("held", "web:cron")
    nothing = client_rw.post("/api/hold", json={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert nothing.status_code == 400 and "needs a filter" in nothing.json()["error"]


def test_pages_render(board: Board, client_ro: TestClient) -> None:
    populate(board)
    for path in ("/", "/grid", "/agents", "/dead", "/dataset/obs0005", "/login",
                 "/grid?campaign=production&state=ready"):
        page = client_ro.get(path)
        assert page.status_code == 200, (path, page.text)
        assert "<html" in page.text and "board " + board.name in page.text
    assert "template pipe" in client_ro.get("/fragment/overview").text


def test_dataset_page_shows_a_preview_of_a_fits_output(board: Board, client_ro: TestClient,
                                                       tmp_path: Path) -> None:
    import numpy as np
    from astropy.io import fits  # type: ignore[import-untyped, unused-ignore]  # no py.typed

    from owl.calib.fitsio import Frame, Imset, write_frame

    shape = (64, 128)
    imsets = []
    for extver, chip in ((1, 2), (2, 1)):
        sci = np.full(shape, 100.0 * chip, np.float32)
        sci[:, :10] += 500.0
        header = fits.Header([("CCDCHIP", chip)])
        imsets.append(Imset(sci=sci, err=np.ones(shape, np.float32),
                            dq=np.zeros(shape, np.int16), sci_header=header,
                            err_header=header.copy(), dq_header=header.copy(), extver=extver))
    flt = tmp_path / "obs9_flt.fits"
    write_frame(Frame(primary=fits.Header([("INSTRUME", "ACS"), ("DETECTOR", "WFC")]),
                      imsets=imsets, path=None), flt)
    board.register(PIPE, "obs9")
    claim = board.claim("agent-1", "pipe", ["check"], 30, 1)[0]
    assert board.complete(claim, {"files": {"flt": [str(flt)]}}, "agent-1").ok
    html = client_ro.get("/dataset/obs9").text
    assert '/dataset/obs9/preview/check/0.png' in html
    png = client_ro.get("/dataset/obs9/preview/check/0.png")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client_ro.get("/dataset/obs9/preview/check/1.png").status_code == 404
    assert client_ro.get("/dataset/obs9/preview/calib/0.png").status_code == 404
