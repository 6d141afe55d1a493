"""``make prod``: the production layout on one machine, in the foreground.

nginx (Debian's, ``daemon off``) on ``HOST:PORT`` in front of ``ASGI_PROCS`` uvicorn
processes on Unix sockets, a Celery worker and Celery beat, all children of supervisord
(PyPI ``supervisor``), which starts again any child that dies and stops every one of them
on Ctrl-C / SIGTERM. Before that: migrations, the demo seed when ``SEED=1``, collectstatic,
and the nginx and supervisord configurations rendered from ``deploy/`` into
``$VAR_DIR/prod/``.

Environment (defaults in brackets): ``DATABASE_URL`` (PostgreSQL, required), ``REDIS_URL``
(required), ``HOST`` [127.0.0.1], ``PORT`` [8080], ``ASGI_PROCS`` [2, at least 2],
``WORKER_CONCURRENCY`` [8], ``CELERY_LOG_LEVEL`` [WARNING], ``SEED`` [0], ``SECRET_KEY`` / ``SECRET_KEY_FILE`` [a random key
kept in ``$VAR_DIR/prod/secret_key``]. Everything else is the production settings' own
environment (docs/deploy.md); this only fills in what one plain-HTTP machine needs.

Run as ``python -m core.prod``; ``--render-only`` writes the configurations and stops (with
``ASGI_UPSTREAMS=host:port,…`` nginx's upstream lists those servers instead of the local
sockets: deploy/compose.yaml and the systemd units use it).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from core.debian import NGINX_MISSING, nginx_binary

BASE_DIR = Path(__file__).resolve().parent.parent
DEPLOY = BASE_DIR / "deploy"


class ProdError(Exception):
    """A start-up problem the operator must fix; printed without a traceback."""


def _int(name: str, default: int, *, minimum: int) -> int:
    raw = os.environ.get(name) or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise ProdError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ProdError(f"{name} must be at least {minimum} (got {value})")
    return value


def site_url(host: str, port: int) -> str:
    """SITE_URL as the Makefile builds it for ``make run`` from HOST/PORT (0.0.0.0 / :: listen
    everywhere; loopback reaches them). ``make prod`` exports it already; this is for a
    runner started directly."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "[::]", "") else host  # noqa: S104
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}"


def prepare_environment(env: dict) -> dict:
    """Fill in what the one-machine layout needs; every value the operator set wins."""
    nginx = nginx_binary()
    if not nginx:
        raise ProdError(NGINX_MISSING)
    for name in ("DATABASE_URL", "REDIS_URL"):
        if not env.get(name):
            raise ProdError(f"{name} is required (PostgreSQL and Redis; see docs/deploy.md)")
    if not env["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
        raise ProdError("DATABASE_URL must point at PostgreSQL")
    host = env.get("HOST") or "127.0.0.1"
    port = _int("PORT", 8080, minimum=1)
    var_dir = Path(env.get("VAR_DIR") or BASE_DIR / "var").resolve()
    run = var_dir / "prod"
    run.mkdir(parents=True, exist_ok=True)
    url = env.get("SITE_URL") or site_url(host, port)
    defaults = {
        "DJANGO_SETTINGS_MODULE": "qianmian.settings",
        "DJANGO_ENV": "production",
        "VAR_DIR": str(var_dir),
        "SITE_URL": url,
        "ALLOWED_HOSTS": ",".join(dict.fromkeys([host, "127.0.0.1", "localhost", "[::1]"])),
        "CSRF_TRUSTED_ORIGINS": url,
        # nginx is the one proxy in front of the ASGI processes: it appends the peer's
        # address to X-Forwarded-For, and core.http.client_ip reads exactly that entry.
        "TRUSTED_PROXY_COUNT": "1",
        # One machine speaks plain HTTP; put TLS in front (or in this nginx) and set both.
        "SECURE_SSL_REDIRECT": "false" if url.startswith("http://") else "true",
        "SECURE_COOKIES": "false" if url.startswith("http://") else "true",
        "SERVE_FILES": "false",
        "TASK_RUNNER": "celery",
        "MEDIA_HLS_URL": f"{url}/hls",
        "MEDIA_RECORD_URL": f"{url}/rec",
        "PYTHONUNBUFFERED": "1",
        # Every process of the layout writes its metrics here; a scrape sums them.
        "PROMETHEUS_MULTIPROC_DIR": str(run / "metrics"),
    }
    out = dict(env)
    for key, value in defaults.items():
        if not out.get(key):
            out[key] = value
    if not out.get("SECRET_KEY") and not out.get("SECRET_KEY_FILE"):
        key_file = run / "secret_key"
        if not key_file.exists():
            key_file.write_text(secrets.token_urlsafe(64))
            key_file.chmod(0o600)
        out["SECRET_KEY_FILE"] = str(key_file)
    out["_QM_NGINX"] = nginx
    out["_QM_LISTEN"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return out


def ensure_database(url: str) -> None:
    """Create the database named in DATABASE_URL when the server has none by that name (a
    fresh machine's PostgreSQL); any other connection problem stops the start."""
    # local import: launcher code run before Django is set up (make prod)
    from urllib.parse import urlsplit, urlunsplit

    import psycopg
    from psycopg import sql

    try:
        psycopg.connect(url, connect_timeout=5).close()
        return
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise ProdError(f"PostgreSQL is unreachable at DATABASE_URL: {exc}") from None
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, connect_timeout=5, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    print(f"make prod: created database {name!r}", flush=True)


def _render(template: Path, target: Path, values: dict[str, str]) -> Path:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        raise ProdError(f"{template.name}: a placeholder was left unfilled")
    target.write_text(text)
    return target


def render(env: dict) -> Path:
    """Write nginx.conf and supervisord.conf under $VAR_DIR/prod; returns supervisord's."""
    # local import: launcher code run before Django is set up (make prod)
    from django.conf import settings

    run = Path(env["VAR_DIR"]) / "prod"
    procs = _int("ASGI_PROCS", 2, minimum=2)
    nginx_prefix = run / "nginx"
    for sub in ("tmp", "logs"):
        (nginx_prefix / sub).mkdir(parents=True, exist_ok=True)
    media_server = Path(settings.VAR_DIR) / "media-server"
    for sub in ("hls", "rec"):
        (media_server / sub).mkdir(parents=True, exist_ok=True)
    Path(settings.MEDIA_ROOT).mkdir(parents=True, exist_ok=True)
    # ASGI processes elsewhere (containers, other machines): "host:port,host:port".
    remote = [a.strip() for a in env.get("ASGI_UPSTREAMS", "").split(",") if a.strip()]
    servers = remote or [f"unix:{run}/asgi-{n}.sock" for n in range(1, procs + 1)]
    upstreams = "\n".join(f"        server {server} max_fails=0;" for server in servers)
    nginx_conf = _render(
        DEPLOY / "nginx" / "qianmian.conf.template",
        nginx_prefix / "nginx.conf",
        {
            "PREFIX": str(nginx_prefix),
            "LISTEN": env["_QM_LISTEN"],
            "UPSTREAMS": upstreams,
            "STATIC_ROOT": str(settings.STATIC_ROOT),
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "HLS_DIR": str(media_server / "hls"),
            "REC_DIR": str(media_server / "rec"),
            "USER_LINE": "user root;" if os.geteuid() == 0 else "",
        },
    )
    check = subprocess.run(  # noqa: S603 - fixed argv
        [
            env["_QM_NGINX"],
            "-t",
            "-q",
            "-p",
            str(nginx_prefix),
            "-c",
            str(nginx_conf),
            "-e",
            "stderr",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise ProdError(f"nginx rejected {nginx_conf}:\n{check.stderr}")
    return _render(
        DEPLOY / "supervisord.conf.template",
        run / "supervisord.conf",
        {
            "RUN": str(run),
            "BASE": str(BASE_DIR),
            "BIN": str(Path(sys.executable).parent),
            "NGINX": env["_QM_NGINX"],
            "NGINX_PREFIX": str(nginx_prefix),
            "NGINX_CONF": str(nginx_conf),
            "ASGI_PROCS": str(procs),
            "WORKER_CONCURRENCY": str(_int("WORKER_CONCURRENCY", 8, minimum=1)),
            # Beat publishes a coupon reconcile every second: INFO would log each one.
            "CELERY_LOG_LEVEL": env.get("CELERY_LOG_LEVEL") or "WARNING",
        },
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        env = prepare_environment(dict(os.environ))
    except ProdError as exc:
        print(f"make prod: {exc}", file=sys.stderr)
        return 2
    os.environ.clear()
    os.environ.update({k: v for k, v in env.items() if not k.startswith("_QM_")})
    # local import: launcher code run before Django is set up (make prod)
    import django
    from django.core.management import call_command

    django.setup()
    try:
        conf = render(env)
    except ProdError as exc:
        print(f"make prod: {exc}", file=sys.stderr)
        return 2
    if "--render-only" in argv:
        print(conf)
        return 0
    try:
        ensure_database(os.environ["DATABASE_URL"])
    except ProdError as exc:
        print(f"make prod: {exc}", file=sys.stderr)
        return 2
    call_command("migrate", verbosity=0)
    if os.environ.get("SEED", "0") not in ("", "0", "false", "no"):
        call_command("seed_demo")
    call_command("collectstatic", interactive=False, verbosity=0)
    # local import: launcher code run before Django is set up (make prod)
    from django.db import connections

    connections.close_all()
    # Samples of a previous run's processes would be summed with this run's.
    metrics_dir = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    print(
        f"Qianmian (production layout) on {os.environ['SITE_URL']}/ : nginx + "
        f"{_int('ASGI_PROCS', 2, minimum=2)} ASGI processes + Celery worker + beat "
        f"(Ctrl-C stops them all)",
        flush=True,
    )
    supervisord = Path(sys.executable).parent / "supervisord"
    # exec: supervisord takes this PID, so a SIGTERM sent to the runner reaches it.
    os.execv(supervisord, [str(supervisord), "-n", "-c", str(conf)])  # noqa: S606
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
