"""Journeys (filled in below)."""


def run_due() -> int:
    return 0


def connect() -> None:
    return None
