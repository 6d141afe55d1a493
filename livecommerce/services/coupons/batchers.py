"""Micro-batching of claims: the claims that arrive in one event-loop iteration are decided
together, with one call per coupon (a Redis script call, a PostgreSQL statement). The
per-claim cost in Python drops to a few tuple appends, which is what lets one ASGI process
answer a burst of thousands per second. What a batch does is the backend's ``decide``."""

from __future__ import annotations

import asyncio


class ClaimBatcher:
    """Gathers claims per ``(org, coupon)`` and runs ``decide`` on chunks of ``MAX_BATCH``.

    ``decide(org_id, coupon_id, requests)`` gets ``(contact_id, code, clip_id)`` per claim in
    arrival order and returns one outcome per request: a result for the claim's waiter, or
    an exception raised to that waiter alone. An exception raised by ``decide`` reaches
    every waiter of the chunk."""

    MAX_BATCH = 256

    def __init__(self) -> None:
        self.pending: dict[tuple[int, int], list] = {}
        self.scheduled = False

    async def decide(self, org_id: int, coupon_id: int, requests: list[tuple]) -> list:
        raise NotImplementedError

    def submit(self, org_id: int, coupon_id: int, contact_id: int, code: str, clip_id: int):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self.pending.setdefault((org_id, coupon_id), []).append((contact_id, code, clip_id, future))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self.scheduled = False
        batches, self.pending = self.pending, {}
        for (org_id, coupon_id), items in batches.items():
            for start in range(0, len(items), self.MAX_BATCH):
                chunk = items[start : start + self.MAX_BATCH]
                asyncio.ensure_future(self._run(org_id, coupon_id, chunk))

    async def _run(self, org_id: int, coupon_id: int, items: list) -> None:
        try:
            outcomes = await self.decide(org_id, coupon_id, [item[:3] for item in items])
        except Exception as exc:  # noqa: BLE001 - every waiter learns of the failure
            for item in items:
                if not item[-1].done():
                    item[-1].set_exception(exc)
            return
        for (*_, future), outcome in zip(items, outcomes, strict=True):
            if future.done():
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
