"""Debian-installed programs the optional targets run (nginx for `make prod` and
`make stream-demo`). The fast tier and `make run` need none of them; callers turn a missing
program into a clear message with the command that installs it (deploy/need-debian.sh)."""

from __future__ import annotations

import shutil
from pathlib import Path

NGINX_INSTALL = "apt-get install -y nginx"
# What a caller says when ``nginx_binary()`` finds none.
NGINX_MISSING = f"nginx is not installed: run `{NGINX_INSTALL}` (as root), then retry"


def nginx_binary() -> str:
    """Path of nginx, or "" when it is not installed. Debian puts it in /usr/sbin, which is
    not on an unprivileged user's PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    sbin = Path("/usr/sbin/nginx")
    return str(sbin) if sbin.exists() else ""
