"""One small hook type: how a lower layer calls code of the apps above it without importing
them (the apps depend on core, never the reverse; see docs/architecture.md).

A hook is declared once, in the module of the layer that calls it::

    staff_publisher: Hook[Callable[[str], None]] = Hook("core.staff_publisher", single=True)

and the app that implements it registers in its ``AppConfig.ready``::

    staff_publisher.register(get_transport().publish_staff)

``single=True`` hooks have at most one implementation (registering another replaces it, so a
test can swap it); the others call every registered function in registration order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

F = TypeVar("F", bound=Callable)


class HookNotRegistered(RuntimeError):
    pass


class Hook(Generic[F]):
    def __init__(self, name: str, *, single: bool = False) -> None:
        self.name = name
        self.single = single
        self._fns: list[F] = []

    def register(self, fn: F) -> F:
        """Add ``fn`` (or, for a single hook, make it the implementation). Usable as a
        decorator; registering the same function twice keeps one."""
        if self.single:
            self._fns = [fn]
        elif fn not in self._fns:
            self._fns.append(fn)
        return fn

    def unregister(self, fn: F) -> None:
        if fn in self._fns:
            self._fns.remove(fn)

    def __iter__(self) -> Iterator[F]:
        return iter(list(self._fns))

    def __bool__(self) -> bool:
        return bool(self._fns)

    def get(self) -> F:
        """The implementation of a single hook; HookNotRegistered when no app provides it."""
        if not self._fns:
            raise HookNotRegistered(f"no implementation registered for hook {self.name}")
        return self._fns[-1]

    def __repr__(self) -> str:
        return f"<Hook {self.name}: {len(self._fns)} registered>"
