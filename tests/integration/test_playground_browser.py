"""The playground end to end in headless Chromium against a real `shoprec serve`.

Pick a user, see history and recommendations with reasons, move the diversity knob, add an
event and watch the list change. Needs Debian's /usr/bin/chromium (`.ci/run` installs it).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from shoprec.serving.auth import hash_key, mint_key
from shoprec.storage import open_store
from tests.unit.serving.live import LiveServer, live_server
from tests.unit.serving.shop import fill_store, save_shop_artifact

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"PLAYGROUND BROWSER TEST SKIPPED: {CHROMIUM} is missing (apt-get install chromium)",
)


def rec_ids(page) -> list[str]:  # noqa: ANN001
    return page.eval_on_selector_all("#recs li", "els => els.map(e => e.dataset.item)")


@contextmanager
def playground(tmp_path: Path) -> Iterator[tuple[LiveServer, Page, str, list[str]]]:
    """A real `shoprec serve` on the synthetic shop, and a Chromium page on its playground.

    Yields the server, the page (already on /playground, first user preselected), a key with
    the read and write scopes, and the page's console errors so far."""
    from playwright.sync_api import expect, sync_playwright

    store = f"sqlite:///{tmp_path / 'shop.db'}"
    with open_store(store) as s:
        fill_store(s)
    save_shop_artifact(tmp_path / "artifacts")
    key = mint_key()
    (tmp_path / "keys").write_text(f"{hash_key(key)} read,write playground\n")
    with live_server(
        [
            "--artifacts",
            str(tmp_path / "artifacts"),
            "--store",
            store,
            "--keys-file",
            str(tmp_path / "keys"),
            "--playground-users",
            "u01,u02",
            "--reload-poll",
            "0",
        ],
        tmp_path / "server.log",
    ) as server:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                console_errors: list[str] = []
                page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
                page.goto(server.url + "/playground")
                # the operator's example users are offered; the first is preselected
                expect(page.locator("#user")).to_have_value("u01")
                yield server, page, key, console_errors
            finally:
                browser.close()


@pytest.mark.slow
def test_playground_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import expect

    shot = Path(os.environ.get("SHOPREC_PLAYGROUND_SCREENSHOT", tmp_path / "playground.png"))
    with playground(tmp_path) as (server, page, key, console_errors):
        options = page.eval_on_selector_all("#user-list option", "o => o.map(x => x.value)")
        assert options == ["u01", "u02"]

        # without a key: recommendations (open reads), but no personal history
        page.click("#load")
        expect(page.locator("#recs li")).to_have_count(10)
        expect(page.locator("#history li").first).to_contain_text("needs an API key")
        # with a key: a known shopper's history and recommendations with reasons
        page.fill("#apikey", key)
        page.click("#load")
        expect(page.locator("#recs li")).to_have_count(10)
        expect(page.locator("#history li").first).to_contain_text("Kettle 10")
        expect(page.locator("#recs li").first.locator(".why")).not_to_be_empty()
        focused = rec_ids(page)

        # the diversity knob changes the list
        page.focus("#diversity")
        page.keyboard.press("End")
        expect(page.locator("#diversity-value")).to_have_text("1.0")
        page.wait_for_function(
            "before => [...document.querySelectorAll('#recs li')]"
            ".map(e => e.dataset.item).join() !== before",
            arg=",".join(focused),
        )
        assert rec_ids(page) != focused
        page.keyboard.press("Home")
        page.wait_for_function(
            "before => [...document.querySelectorAll('#recs li')]"
            ".map(e => e.dataset.item).join() === before",
            arg=",".join(focused),
        )

        # a brand-new shopper: cold start, then one event changes the list at once
        page.fill("#user", "playground-newcomer")
        page.click("#load")
        expect(page.locator("#history li").first).to_have_text("no events yet (cold start)")
        expect(page.locator("#recs li").first).to_have_attribute("data-item", "i10")
        cold = rec_ids(page)
        page.fill("#event-item", "i00")
        page.select_option("#event-type", "view")
        page.click("#send-event")
        expect(page.locator("#recs li").first).to_have_attribute("data-item", "i01")
        expect(page.locator("#recs li").first).to_contain_text("Kettle 0")  # the reason
        expect(page.locator("#history li").first).to_contain_text("Kettle 0")
        expect(page.locator("#status")).to_contain_text("Event sent")
        assert rec_ids(page) != cold
        assert page.locator("#recs li.new").count() >= 1  # new items are highlighted

        # without a key the write is refused and the page says so
        page.fill("#apikey", "")
        page.click("#send-event")
        expect(page.locator("#status")).to_contain_text("401")
        page.screenshot(path=str(shot), full_page=True)
        assert [e for e in console_errors if "401" not in e] == []
        log = server.log()
    assert "playground-newcomer" not in log and key not in log


@pytest.mark.slow
def test_a_slow_older_answer_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    """Load (diversity 0) is held back by the network; the knob moves to 1 and its answer is
    shown; when the older answer finally arrives, the page keeps showing the newer one."""
    import httpx
    from playwright.sync_api import Route

    with playground(tmp_path) as (server, page, _key, _errors):
        plain = httpx.get(server.url + "/v1/recommendations?user_id=u01&k=10&diversity=0").json()
        varied = httpx.get(server.url + "/v1/recommendations?user_id=u01&k=10&diversity=1").json()
        plain_ids = [x["item_id"] for x in plain["items"]]
        varied_ids = [x["item_id"] for x in varied["items"]]
        assert plain_ids != varied_ids  # otherwise the test could not tell them apart

        held: list[Route] = []

        def hold_the_first_plain_load(route: Route) -> None:
            if "diversity=0" in route.request.url and not held:
                held.append(route)  # answered later, by the test
            else:
                route.continue_()

        page.route("**/v1/recommendations?*", hold_the_first_plain_load)
        page.click("#load")
        for _ in range(200):  # let the click's request reach the route (events run in waits)
            if held:
                break
            page.wait_for_timeout(25)
        assert len(held) == 1
        page.focus("#diversity")
        page.keyboard.press("End")
        page.wait_for_function(
            "want => [...document.querySelectorAll('#recs li')]"
            ".map(e => e.dataset.item).join() === want",
            arg=",".join(varied_ids),
        )
        with page.expect_response(lambda r: "/v1/items?ids=" in r.url):
            held[0].continue_()  # the older answer arrives, then fetches its titles
        started = time.monotonic()
        while time.monotonic() - started < 1.0:  # give the stale answer time to (not) render
            assert rec_ids(page) == varied_ids
            page.wait_for_timeout(50)
