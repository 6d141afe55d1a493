"""Launching Debian's Chromium through Playwright (never `playwright install`: no downloads here)."""

CHROMIUM_PATH = "/usr/bin/chromium"
# Flags that work as root on this machine kind; without the background-networking ones
# Chromium's own connections are refused by the closed network, many at a time.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)


def campaigns_page_signed_in(browser, live_server, viewport=None):
    """The campaigns workspace on a phone-sized page (or ``viewport``) in Chinese, signed in
    as sales_bob (the factories' password); with the list of page errors seen (a test
    asserts it stays empty)."""
    page = browser.new_page(viewport=viewport or {"width": 390, "height": 844}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/workspace/campaigns/")
    page.fill("input[name=username]", "bob")
    page.fill("input[name=password]", "pw-123456")
    page.click("#login-form button")
    page.wait_for_selector("#app:not([hidden])")
    return page, errors
