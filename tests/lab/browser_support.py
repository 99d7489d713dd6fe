"""Headless Chromium for the lab's login tests (runs in the probe namespace, as the client).

Only the standard library at import: Playwright is imported by the caller, inside the client.
"""

from __future__ import annotations

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium(playwright, profile: str):
    """Debian's chromium with a throwaway profile; a page waits up to 5 minutes (servers
    start slowly with other lab hosts busy). Certificates are not what these tests check:
    the lab's are self-signed or from its own CA."""
    return playwright.chromium.launch_persistent_context(
        profile, executable_path="/usr/bin/chromium", headless=True,
        ignore_https_errors=True, args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 800})


def run_one_plus_one(page) -> str:
    """In JupyterLab's launcher: open a notebook, run `1+1`, return the cell's output."""
    page.click(".jp-LauncherCard[data-category='Notebook']")
    # Type only once the kernel is up and the editor takes input: keystrokes sent earlier
    # can be lost, and Shift+Enter then runs an empty cell with no output.
    page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for()
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.keyboard.type("1+1")
    page.locator(".jp-Notebook .jp-Cell .cm-content", has_text="1+1").first.wait_for()
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-OutputArea-output").first
    output.wait_for()
    return output.inner_text().strip()
