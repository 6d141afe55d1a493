"""Per-process state of the claim backends, in one place.

Clients, pools and batchers are per event loop (``id(loop)``): an asyncio client or pool
must not be shared across loops, and a sync caller runs each claim on a private loop
(``claim.coroutine_run``) that ``close_loop`` cleans up. The rest are small memos.
"""

from __future__ import annotations

import asyncio
import threading

# Redis clients: one asyncio client per loop, and "sync" for the blocking one.
redis_clients: dict = {}
# Micro-batchers per loop (backends.redis / backends.pg).
redis_batchers: dict = {}
pg_batchers: dict = {}
# psycopg AsyncConnectionPool per loop (pool.pg_pool).
pg_pools: dict = {}

# coupon id → room id, learnt from loads and claims (stock announcements need the room).
room_ids: dict[int, int] = {}

# Loads of a coupon Redis does not know: the running one per (loop, coupon), and when the
# last one finished (time.monotonic()).
loads: dict[tuple[int, int], asyncio.Future] = {}
loaded_at: dict[int, float] = {}

# Stock announcements: when each coupon's last one went out (time.monotonic()).
last_stock: dict[int, float] = {}
stock_lock = threading.Lock()


async def close_loop(loop_id: int) -> None:
    """Forget and close what was opened for a loop that is about to end (no leaked
    PostgreSQL connections or Redis sockets per DRF request)."""
    redis_batchers.pop(loop_id, None)
    pg_batchers.pop(loop_id, None)
    pool = pg_pools.pop(loop_id, None)
    if pool is not None:
        await pool.close()
    client = redis_clients.pop(loop_id, None)
    if client is not None:
        await client.aclose()
