"""The claim backends' own PostgreSQL pool (psycopg ``AsyncConnectionPool``, one per event
loop): the ``pg`` backend's statement and the Redis backend's claim write run on it
without a Django thread per request. It connects to the database Django uses."""

from __future__ import annotations

import asyncio

from django.conf import settings
from psycopg.conninfo import make_conninfo
from psycopg_pool import AsyncConnectionPool

from livecommerce.services.coupons import caches

# Keys of a database's OPTIONS that Django itself consumes: not libpq connection parameters.
_DJANGO_OPTIONS = {
    "pool",
    "isolation_level",
    "assume_role",
    "server_side_binding",
    "cursor_factory",
    "prepare_threshold",
    "context",
}


def pg_conninfo(alias: str = "default") -> str:
    """The libpq connection string of a Django database (``settings.DATABASES[alias]``):
    the same database, user, password, host, port and libpq options (``sslmode``, …) as
    Django's own connections, quoted by psycopg. An empty HOST or PORT is left to libpq's
    defaults, as Django leaves it."""
    db = settings.DATABASES[alias]
    params = {k: v for k, v in db.get("OPTIONS", {}).items() if k not in _DJANGO_OPTIONS}
    params["dbname"] = db["NAME"]
    for key, param in (
        ("USER", "user"),
        ("PASSWORD", "password"),
        ("HOST", "host"),
        ("PORT", "port"),
    ):
        if db.get(key):
            params[param] = db[key]
    return make_conninfo(**params)


async def pg_pool() -> AsyncConnectionPool:
    """This loop's pool, opened on first use (closed by ``caches.close_loop``)."""
    loop = asyncio.get_running_loop()
    pool = caches.pg_pools.get(id(loop))
    if pool is None:
        pool = AsyncConnectionPool(
            pg_conninfo(),
            min_size=2,
            max_size=settings.COUPON_PG_POOL_MAX,
            # Same reason as the request pool's check (qianmian/settings/base.py): after a
            # PostgreSQL restart a borrowed connection is tested and replaced, not failed.
            check=AsyncConnectionPool.check_connection,
            open=False,
            kwargs={"autocommit": True},
        )
        await pool.open()
        caches.pg_pools[id(loop)] = pool
    return pool
