# ruff: noqa: S608 - SQL here is the generator's own, over its own database.
"""Bench data generator (``make bench-data SCALE=1m``, docs/bench/scale.md): SCALE leads with
10 events each, loaded with COPY into a database of its own, for the 1M / 10M ladder of
issue 20.

- The database (``BENCH_DATA_URL``, default ``qm_bench_data``) is dropped, created and
  migrated, so the event log is the partitioned one ``make run`` on PostgreSQL gets.
- One organisation; leads with the attribute mix the scoring bench uses; events of the
  types a live room produces, spread uniformly over the last 12 months (12-13 monthly
  partitions), none in the default partition.
- COPY in text format from this process, one stream per table: Python builds the rows while
  the server parses and routes them to their month (two cores busy). Secondary indexes are
  dropped for the load and rebuilt after it, foreign-key triggers are skipped (the rows are
  consistent by construction), then ANALYZE.
- Reports, as JSON under var/bench/data-<scale>-<time>.json: seconds per phase and in
  all, rows per second, and the size on disk (tables, indexes, per partition, database).

The database is left in place for the read benchmarks to use; drop it when done.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/qm_bench_data"
SCALES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
EVENTS_PER_LEAD = 10
MONTHS = 12
CHUNK = 20_000  # leads per COPY write (their 200,000 events ≈ 20 MB of text)

# Weighted like a live room's activity (the scoring bench's mix).
TYPES = [
    "room.join",
    "room.leave",
    "room.leave",
    "chat",
    "chat",
    "like",
    "product.click",
    "coupon.claim",
    "share",
    "order",
    "coupon.redeem",
    "room.reserve",
]
GENDERS = ["female", "female", "female", "male", "male", "unknown"]
PROVINCES = ["上海", "浙江", "北京", "广东", "江苏", "四川"]
CITIES = ["上海", "杭州", "北京", "广州", "深圳", "南京", "成都", "武汉"]
INCOMES = ["low", "mid", "high", ""]
TAGS = ['["宝妈"]', '["护肤", "宝妈"]', '["彩妆"]', "[]", "[]"]

CONTACT_COLUMNS = (
    "id, created_at, updated_at, org_id, nickname, avatar_url, gender, birth_year, province, "
    "city, income_level, tags, source, source_detail, status, score, grade, score_breakdown, "
    "lifecycle, order_count, order_amount, rfm, attributes"
)
EVENT_COLUMNS = (
    "created_at, updated_at, org_id, contact_id, type, occurred_at, room_id, value, props"
)


def _admin_url(url: str) -> str:
    return urlunparse(urlparse(url)._replace(path="/postgres"))


def _database_reset(url: str, since: datetime) -> None:
    name = urlparse(url).path.lstrip("/")
    assert name.replace("_", "").isalnum(), name
    with psycopg.connect(_admin_url(url), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DJANGO_ENV": "test", "DATABASE_URL": url, "REDIS_URL": ""}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    # The months the events span exist before the load (none lands in the default partition).
    subprocess.run(
        [sys.executable, "manage.py", "event_partitions", f"--since={since:%Y-%m}"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _secondary_indexes(cur, table: str) -> list[tuple[str, str]]:
    cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s "
        "AND indexdef NOT LIKE 'CREATE UNIQUE%%'",
        [table],
    )
    return cur.fetchall()


def _contact_rows(first_id: int, count: int, org_id: int, now: str) -> str:
    lines = []
    for i in range(first_id, first_id + count):
        birth = "\\N" if i % 7 == 0 else str(1966 + (i * 13) % 40)
        lines.append(
            f"{i}\t{now}\t{now}\t{org_id}\t观众{i}\t\t{GENDERS[(i * 7) % 6]}\t{birth}\t"
            f"{PROVINCES[(i * 11) % 6]}\t{CITIES[(i * 5) % 8]}\t{INCOMES[(i * 3) % 4]}\t"
            f"{TAGS[i % 5]}\troom\t{{}}\tnew\t\\N\t\t{{}}\tprospect\t0\t0\t\t{{}}\n"
        )
    return "".join(lines)


def _event_rows(
    first_id: int, count: int, org_id: int, now: str, stamps: list[str], rng: random.Random
) -> str:
    lines = []
    bits = rng.getrandbits
    mask = len(stamps) - 1
    for contact_id in range(first_id, first_id + count):
        head = f"{now}\t{now}\t{org_id}\t{contact_id}\t"
        for _ in range(EVENTS_PER_LEAD):
            kind = TYPES[bits(16) % 12]
            if kind == "room.leave":
                value = str(bits(12) % 3600)
            elif kind == "order":
                value = str(50 + bits(10) % 800)
            else:
                value = "\\N"
            lines.append(
                f"{head}{kind}\t{stamps[bits(20) & mask]}\t{1 + bits(3) % 5}\t{value}\t{{}}\n"
            )
    return "".join(lines)


def _sizes(cur) -> dict:
    def one(sql: str, params=()) -> int:
        cur.execute(sql, params)
        return int(cur.fetchone()[0] or 0)

    partitions = []
    cur.execute(
        "SELECT c.relname, pg_total_relation_size(c.oid), "
        "(SELECT reltuples::bigint FROM pg_class WHERE oid = c.oid) "
        "FROM pg_partition_tree('crm_event') t JOIN pg_class c ON c.oid = t.relid "
        "WHERE t.isleaf ORDER BY c.relname"
    )
    for name, size, rows in cur.fetchall():
        partitions.append({"name": name, "bytes": size, "rows_estimate": max(rows, 0)})
    events_table = one(
        "SELECT sum(pg_table_size(relid)) FROM pg_partition_tree('crm_event') WHERE isleaf"
    )
    events_total = sum(p["bytes"] for p in partitions)
    return {
        "database_bytes": one("SELECT pg_database_size(current_database())"),
        "contacts_table_bytes": one("SELECT pg_table_size('crm_contact')"),
        "contacts_total_bytes": one("SELECT pg_total_relation_size('crm_contact')"),
        "events_table_bytes": events_table,
        "events_indexes_bytes": events_total - events_table,
        "events_total_bytes": events_total,
        "event_partitions": partitions,
    }


def generate(url: str, leads: int, seed: int = 20) -> dict:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    now_dt = datetime.now(UTC).replace(microsecond=0)
    now = now_dt.isoformat()
    span = int(timedelta(days=365).total_seconds())
    start = now_dt - timedelta(seconds=span)
    _database_reset(url, since=start)
    phases = {"create_and_migrate_s": time.perf_counter() - t0}
    # 2^20 instants over the last 12 months: a row picks one by index (formatting a
    # timestamp per row would cost more than the COPY itself).
    stamps = sorted(
        (start + timedelta(seconds=rng.randrange(span))).isoformat() for _ in range(1 << 20)
    )
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("SET synchronous_commit = off")
        cur.execute("SET maintenance_work_mem = '512MB'")
        cur.execute(
            "INSERT INTO core_organization (created_at, updated_at, slug, name, "
            "allow_guest_viewers, is_active) VALUES (now(), now(), 'bench-data', '压测数据', "
            "true, true) RETURNING id"
        )
        org_id = cur.fetchone()[0]
        cur.execute("SELECT coalesce(max(id), 0) + 1 FROM crm_contact")
        first = cur.fetchone()[0]
        indexes = _secondary_indexes(cur, "crm_contact") + _secondary_indexes(cur, "crm_event")
        for name, _definition in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        # The rows are consistent by construction: no per-row foreign-key trigger.
        cur.execute("SET session_replication_role = replica")

        t = time.perf_counter()
        with cur.copy(f"COPY crm_contact ({CONTACT_COLUMNS}) FROM STDIN") as copy:
            for lo in range(first, first + leads, CHUNK):
                copy.write(_contact_rows(lo, min(CHUNK, first + leads - lo), org_id, now))
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('crm_contact', 'id'), %s)",
            [first + leads - 1],
        )
        phases["copy_contacts_s"] = time.perf_counter() - t

        t = time.perf_counter()
        with cur.copy(f"COPY crm_event ({EVENT_COLUMNS}) FROM STDIN") as copy:
            for lo in range(first, first + leads, CHUNK):
                n = min(CHUNK, first + leads - lo)
                copy.write(_event_rows(lo, n, org_id, now, stamps, rng))
        phases["copy_events_s"] = time.perf_counter() - t
        cur.execute("SET session_replication_role = DEFAULT")

        t = time.perf_counter()
        for _name, definition in indexes:
            cur.execute(definition.replace(" ON ONLY ", " ON "))
        phases["build_indexes_s"] = time.perf_counter() - t
        t = time.perf_counter()
        cur.execute("VACUUM (ANALYZE) crm_contact")
        cur.execute("VACUUM (ANALYZE) crm_event")
        phases["vacuum_analyze_s"] = time.perf_counter() - t
        cur.execute("SELECT count(*) FROM crm_event_default")
        in_default = cur.fetchone()[0]
        sizes = _sizes(cur)
    elapsed = time.perf_counter() - t0
    events = leads * EVENTS_PER_LEAD
    load_s = phases["copy_contacts_s"] + phases["copy_events_s"]
    return {
        "leads": leads,
        "events": events,
        "events_in_default_partition": in_default,
        "elapsed_s": round(elapsed, 1),
        "phases_s": {k: round(v, 1) for k, v in phases.items()},
        "copy_rows_per_s": round((leads + events) / load_s),
        **sizes,
    }


def _box() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.strip()

    with psycopg.connect(_admin_url(os.environ.get("BENCH_DATA_URL", DEFAULT_URL))) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    return {
        "cores": os.cpu_count(),
        "loadavg_before": list(os.getloadavg()),
        "postgresql": server,
        "commit": git("rev-parse", "--short", "HEAD"),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="make bench-data")
    parser.add_argument("--scale", default="1m", help=f"one of {', '.join(SCALES)}")
    args = parser.parse_args(argv)
    if args.scale not in SCALES:
        parser.error(f"--scale: one of {', '.join(SCALES)}")
    url = os.environ.get("BENCH_DATA_URL", DEFAULT_URL)
    report = {
        "date": datetime.now(UTC).isoformat(),
        "command": f"make bench-data SCALE={args.scale}",
        "scale": args.scale,
        "database": urlparse(url).path.lstrip("/"),
        "box": _box(),
    }
    report.update(generate(url, SCALES[args.scale]))
    report["box"]["loadavg_after"] = list(os.getloadavg())
    out = ROOT / "var" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"data-{args.scale}-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "event_partitions"}, indent=2))
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
