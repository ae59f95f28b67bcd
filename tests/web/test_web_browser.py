"""The web board in a real Chromium (the system's, driven by playwright): sign in, click
from the overview to a dead dataset, then bulk-retry the dead letters with the dry run
first, confirm, and check the board changed. Screenshots are written for a person."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from web_fixtures import TOKEN, Served, dead_ids, populate

from owl import queries

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).is_file()), None)


def _calib_states(served: Served) -> dict[str, str]:
    return {ds.dataset: next(i.state for i in ds.items if i.stage == "calib")
            for ds in queries.datasets(served.board)}


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable (Debian: apt-get "
                    "install chromium; .ci/run installs it)")
def test_overview_dataset_bulk_retry_in_chromium(served: Served, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    populate(served.board)
    dead = dead_ids()
    before = _calib_states(served)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.goto(f"{served.url}/login")
            page.fill("input[name=name]", "alice")
            page.fill("input[name=token]", TOKEN)
            page.click("#sign-in")
            # the overview: counts from the board's counters, live dot on once SSE is open
            expect(page.locator("header")).to_contain_text("signed in as alice")
            dead_cell = page.locator("table.counts tr[data-stage=calib] td[data-state=dead]")
            expect(dead_cell).to_have_text(str(len(dead)))
            expect(page.locator("#live")).to_have_class("on")
            page.screenshot(path=str(shots / "1-overview.png"), full_page=True)
            # overview -> the grid of dead calib items -> a dataset
            dead_cell.locator("a").click()
            expect(page.locator("table.grid a.ds")).to_have_count(len(dead))
            page.click(f"text={dead[1]}")
            expect(page.locator("#dataset-id")).to_have_text(dead[1])
            row = page.locator("table.items tr[data-stage=calib]")
            expect(row.locator("td.state")).to_have_text("dead")
            row.locator("details.failure summary").click()
            expect(row.locator("details.failure pre")).to_contain_text("ValueError: bad bias")
            page.screenshot(path=str(shots / "2-dataset.png"), full_page=True)
            # dead letters -> dry run (nothing changes) -> confirm
            page.click("#nav-dead")
            page.fill("#retry-filter input[name=stage]", "calib")
            page.click("#dry-run")
            expect(page.locator("#plan-summary")).to_contain_text(
                f"{len(dead)} item(s) would change")
            expect(page.locator("table.plan tbody tr")).to_have_count(len(dead))
            page.screenshot(path=str(shots / "3-dry-run.png"), full_page=True)
            assert _calib_states(served) == before  # the dry run changed nothing
            page.click("#confirm")
            expect(page.locator("#result-summary")).to_contain_text(
                f"{len(dead)} of {len(dead)} item(s) changed")
            after = _calib_states(served)
            assert {d: after[d] for d in dead} == dict.fromkeys(dead, "ready")
            assert {d: s for d, s in after.items() if d not in dead} == {
                d: s for d, s in before.items() if d not in dead}
            retried = [e for e in queries.events(served.board, count=1000)
                       if e["fr"] == "dead" and e["to"] == "ready"]
            assert sorted(e["ds"] for e in retried) == dead
            assert {e["by"] for e in retried} == {"web:alice"}
            # back on the overview, a transition made elsewhere arrives by SSE
            page.click("#nav-overview")
            expect(page.locator("#live")).to_have_class("on")
            claim = served.board.claim("agent-9", "pipe", ["calib"], 30, 1)[0]
            assert served.board.complete(claim, {}, "agent-9").ok
            expect(page.locator("#events li").first).to_contain_text("by agent-9")
            expect(page.locator("table.counts tr[data-stage=calib] td[data-state=ready]")
                   ).to_have_text(str(len(dead) - 1))
            page.screenshot(path=str(shots / "4-overview-after.png"), full_page=True)
        finally:
            browser.close()
    print(f"\nweb board screenshots: {shots}")
    copy = os.environ.get("OWL_WEB_SCREENSHOT")
    if copy:
        shutil.copy(shots / "4-overview-after.png", copy)
