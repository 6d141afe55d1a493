"""How services hand work to the background, whatever runs it.

Services call ``enqueue(task, *args)`` with the task's registered name (``"crm.org_rescore"``)
— services never import a tasks module, since tasks modules import the services they wrap;
a task object works too, for code above the services. It fires after the surrounding transaction commits
(a rolled-back write enqueues nothing). Then, by ``TASK_RUNNER``:

- ``celery``: ``apply_async`` to the broker (production workers + beat);
- ``inprocess``: a small thread pool inside the ASGI process, plus an in-process beat that
  runs ``CELERY_BEAT_SCHEDULE`` — the embedded default, so a reminder due in 2 minutes fires
  while ``make run`` is up, with no broker;
- ``eager``: at commit, in the caller's thread (tests).

Periodic work is declared once with ``periodic(name, task, seconds)``: it lands in Celery
beat's schedule and in the in-process beat alike. Due work is a database row with a
``due_at`` swept by a periodic task — never a long countdown (a SIGKILLed worker loses those).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction

from qianmian.celery import app as celery_app

log = logging.getLogger(__name__)

_PERIODIC: dict[str, tuple[object, float]] = {}


def periodic(name: str, task, seconds: float) -> None:
    """Register a periodic task for Celery beat and the in-process beat (``PERIODIC_SECONDS``
    may override the interval by name)."""
    seconds = getattr(settings, "PERIODIC_SECONDS", {}).get(name, seconds)
    _PERIODIC[name] = (task, seconds)
    settings.CELERY_BEAT_SCHEDULE[name] = {
        "task": task.name,
        "schedule": timedelta(seconds=seconds),
    }


def enqueue(task, *args, **kwargs) -> None:
    """Run ``task(*args, **kwargs)`` in the background once the current transaction commits.
    ``task`` is a Celery task or its registered name (looked up when it is dispatched)."""
    transaction.on_commit(lambda: dispatch(task, *args, **kwargs))


def task_named(name: str):
    """The task registered as ``name``: every app's tasks module is imported by its
    ``AppConfig.ready``, so the registry is complete once Django is set up."""
    return celery_app.tasks[name]


def dispatch(task, *args, **kwargs) -> None:
    if isinstance(task, str):
        task = task_named(task)
    mode = settings.TASK_RUNNER
    if mode == "celery":
        task.apply_async(args=args, kwargs=kwargs)
    elif mode == "eager":
        task.apply(args=args, kwargs=kwargs, throw=True)
    else:
        get_runner().submit(task, args, kwargs)


class InProcessRunner:
    """Thread pool + beat thread living inside the embedded ASGI process."""

    def __init__(self, threads: int):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qm-task")
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def submit(self, task, args, kwargs) -> None:
        self.pool.submit(self._run, task, args, kwargs)

    @staticmethod
    def _run(task, args, kwargs) -> None:
        close_old_connections()
        try:
            task.apply(args=args, kwargs=kwargs, throw=True)
        except Exception:
            log.exception("background task %s failed", task.name)
        finally:
            close_old_connections()

    def start_beat(self) -> None:
        if self._beat is None:
            self._beat = threading.Thread(target=self._beat_loop, name="qm-beat", daemon=True)
            self._beat.start()

    def _beat_loop(self) -> None:
        next_due = {
            name: time.monotonic() + seconds for name, (_task, seconds) in _PERIODIC.items()
        }
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for name, (task, seconds) in list(_PERIODIC.items()):
                due = next_due.setdefault(name, now + seconds)
                if now >= due:
                    next_due[name] = now + seconds
                    self.submit(task, (), {})

    def stop(self) -> None:
        self._stop.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


_runner: InProcessRunner | None = None
_runner_lock = threading.Lock()


def get_runner() -> InProcessRunner:
    global _runner
    with _runner_lock:
        if _runner is None:
            _runner = InProcessRunner(settings.TASK_RUNNER_THREADS)
        return _runner


def start_embedded_runner() -> None:
    """Called at ASGI start-up: in the embedded default, start the in-process beat."""
    if settings.TASK_RUNNER == "inprocess":
        get_runner().start_beat()
        log.info("in-process task runner started with %d periodic tasks", len(_PERIODIC))


def stop_embedded_runner() -> None:
    global _runner
    with _runner_lock:
        if _runner is not None:
            _runner.stop()
            _runner = None
