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
