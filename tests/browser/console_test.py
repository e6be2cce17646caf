"""The web console in a real browser: headless Debian chromium driven by Playwright.

Run by tests/integration/console_browser.rs against the real router and fake providers:
    console_test.py <router url> <admin key> <screenshot dir>
It asks the Rust side to act on the fakes with lines on stdout ("@@ down <id>",
"@@ cancelled <id>") and reads one answer line from stdin for each. Every check raises on failure.
"""

import json
import os
import re
import sys
import tempfile
import time

from playwright.sync_api import expect, sync_playwright

URL, KEY, SHOTS = sys.argv[1], sys.argv[2], sys.argv[3]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# A valid PESEL (checksum), a Polish IBAN and an e-mail.
PESEL = "85010112345"
TEXT = f"Pan Jan Kowalski, PESEL {PESEL}, e-mail jan.kowalski@example.pl, tel. +48 600 123 456."


def ask(command):
    print("@@ " + command, flush=True)
    answer = sys.stdin.readline().strip()
    if not answer:
        raise SystemExit(f"no answer to {command!r}")
    return answer


def step(name):
    print(f"--- {name}", flush=True)


def shot(page, name):
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, name + ".png"))


def wait_until(what, f, within=60.0):
    end = time.monotonic() + within
    while time.monotonic() < end:
        if f():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


# Generous bounds: the test machine may be busy (they bound waits on conditions, never sleeps).
expect.set_options(timeout=60000)


def main():
    with sync_playwright() as p, tempfile.TemporaryDirectory() as profile:
        ctx = p.chromium.launch_persistent_context(
            profile, executable_path="/usr/bin/chromium", args=ARGS, headless=True,
            viewport={"width": 1280, "height": 800}, locale="en-US")
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.set_default_timeout(60000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Script errors, and any console file missing; the 401/400 refusals asked for below are
        # expected (the browser logs those as "Failed to load resource").
        page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
                and errors.append(m.text))
        page.on("response", lambda r: r.status == 404 and errors.append("404 " + r.url))

        step("log in")
        page.goto(URL + "/ui")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#login-h")).to_have_text("Logowanie")  # Polish by default
        page.fill("#login-key", "sk-wrong")
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text("unknown")
        page.fill("#login-key", KEY)
        page.keyboard.press("Enter")
        expect(page.locator("#page-status")).to_be_visible()
        cookies = {c["name"]: c for c in ctx.cookies()}
        assert cookies["llmr_session"]["httpOnly"], cookies
        assert cookies["llmr_session"]["sameSite"] == "Strict", cookies
        assert page.evaluate("document.cookie").find("llmr_session") < 0, "HttpOnly: not readable"
        untranslated = ("Array.from(document.querySelectorAll('[data-i18n]'))"
                        ".filter(e => e.textContent === e.getAttribute('data-i18n'))"
                        ".map(e => e.getAttribute('data-i18n'))")
        assert not page.evaluate(untranslated), page.evaluate(untranslated)
        expect(page.locator("#tab-chat")).to_have_text("Czat")
        page.select_option("#lang", "en")
        expect(page.locator("#tab-chat")).to_have_text("Chat")
        assert not page.evaluate(untranslated), page.evaluate(untranslated)

        step("status follows a provider going down")
        row = page.locator('#status-table tr[data-provider="demo-b"]')
        expect(row).to_have_attribute("data-health", "healthy")
        expect(page.locator('#status-table tr[data-provider="demo-a"]')).to_be_visible()
        assert ask("down demo-b") == "ok"
        expect(row).to_have_attribute("data-health", "open")
        expect(row.locator(".badge")).to_have_text("down")
        shot(page, "status")

        step("chat: anonymized, streamed, restored")
        page.click("#tab-chat")
        expect(page.locator("#chat-model option")).to_have_count(2)
        page.select_option("#chat-model", "demo")
        expect(page.locator("#chat-warning")).to_be_hidden()
        page.fill("#chat-system", "You are a helpful assistant.")
        page.fill("#chat-input", f"Mój PESEL to {PESEL}")
        page.click("#chat-send")
        sent = page.locator("[data-sent]").last
        expect(sent).to_contain_text("{PESEL")
        assert PESEL not in sent.inner_text()
        answer = page.locator(".msg.assistant .body").last
        expect(page.locator("#chat-state")).to_have_text("Done")
        # The fake echoes what it got (the masked text); the page shows it restored.
        expect(answer).to_contain_text(PESEL)
        page.uncheck("#chat-anon")
        expect(page.locator("#chat-warning")).to_be_visible()
        page.check("#chat-anon")

        step("chat: stop cancels upstream")
        page.select_option("#chat-model", "slow")
        page.fill("#chat-input", "Tell me a long story")
        page.click("#chat-send")
        answer = page.locator(".msg.assistant .body").last
        wait_until("streamed text", lambda: len(answer.inner_text()) > 10)
        expect(page.locator("#chat-stop")).to_be_enabled()
        page.uncheck("#chat-anon")
        shot(page, "chat")
        page.check("#chat-anon")
        page.click("#chat-stop")
        expect(page.locator("#chat-state")).to_have_text("Stopped")
        wait_until("the provider saw the cancel", lambda: int(ask("cancelled slow-1")) >= 1)

        step("anonymizer")
        page.click("#tab-anonymizer")
        page.fill("#anon-input", TEXT)
        page.select_option("#anon-algo", "fast")
        page.click("#anon-run")
        expect(page.locator('#anon-output mark[data-type^="PESEL"]')).to_have_count(1)
        expect(page.locator('#anon-output mark[data-type="EMAIL"]')).to_have_count(1)
        out = page.locator("#anon-output").inner_text()
        assert PESEL not in out and "jan.kowalski@example.pl" not in out, out
        rows = page.locator("#anon-map tbody tr")
        expect(rows.filter(has_text=PESEL)).to_have_count(1)
        page.click("#anon-restore")
        expect(page.locator("#anon-restored")).to_have_text(TEXT)
        shot(page, "anonymizer")

        step("config: edit, new model listed, restore")
        page.click("#tab-config")
        text = page.locator("#config-text")
        expect(text).to_have_value(re.compile("demo-a"))
        doc = json.loads(text.input_value())
        assert "sk-demo-upstream" not in text.input_value(), "a token reached the browser"
        group = next(g for g in doc if g != "active_models")
        added = json.loads(json.dumps(doc[group]["demo"]))
        # A new provider: its token is typed (a placeholder stands only for a stored one).
        added["providers"] = [dict(added["providers"][0], id="added-a", api_token="")]
        doc[group]["added"] = added
        text.fill(json.dumps(doc, indent=2))
        text.dispatch_event("change")
        box = page.locator('#config-models input[data-model="added"]')
        expect(box).not_to_be_checked()
        box.check()
        page.click("#config-apply")
        expect(page.locator("#config-error")).to_have_text("")
        expect(page.locator("#config-ok")).to_contain_text("version 2")
        models = page.evaluate("fetch('/v1/models').then(r => r.json())")
        assert "added" in [m["id"] for m in models["data"]], models
        expect(page.locator("#config-history tbody tr")).to_have_count(2)
        page.locator('#config-history tr[data-version="1"] .diff-btn').click()
        expect(page.locator("#config-diff .add").first).to_be_visible()
        expect(page.locator("#config-diff")).to_contain_text("added")
        shot(page, "config")
        # A bad edit is refused with the problem named; the running config stays.
        bad = json.loads(text.input_value())
        del bad[group]["demo"]["providers"][0]["api_host"]
        text.fill(json.dumps(bad))
        page.click("#config-apply")
        expect(page.locator("#config-error")).to_contain_text("api_host")
        page.locator('#config-history tr[data-version="1"] .restore-btn').click()
        expect(page.locator("#config-ok")).to_contain_text("version 3")
        models = page.evaluate("fetch('/v1/models').then(r => r.json())")
        assert "added" not in [m["id"] for m in models["data"]], models

        step("theme")
        page.click("#theme")
        theme = page.evaluate("document.documentElement.getAttribute('data-theme')")
        page.click("#tab-status")
        shot(page, "status-" + theme)
        assert not errors, errors
        ctx.close()
    print("browser checks passed", flush=True)


main()
