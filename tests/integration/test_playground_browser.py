"""The playground end to end in headless Chromium against a real `shoprec serve`.

Pick a user, see history and recommendations with reasons, move the diversity knob, add an
event and watch the list change. Needs Debian's /usr/bin/chromium (`.ci/run` installs it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoprec.serving.auth import hash_key, mint_key
from shoprec.storage import open_store
from tests.unit.serving.live import live_server
from tests.unit.serving.shop import fill_store, save_shop_artifact

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


@pytest.mark.slow
def test_playground_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    store = f"sqlite:///{tmp_path / 'shop.db'}"
    with open_store(store) as s:
        fill_store(s)
    save_shop_artifact(tmp_path / "artifacts")
    key = mint_key()
    (tmp_path / "keys").write_text(f"{hash_key(key)} read,write playground\n")
    shot = Path(os.environ.get("SHOPREC_PLAYGROUND_SCREENSHOT", tmp_path / "playground.png"))

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
            finally:
                browser.close()
        log = server.log()
    assert "playground-newcomer" not in log and key not in log
