"""Fixtures shared by the crm tests."""

import pytest

from crm.services import scoring


@pytest.fixture
def announced():
    """Every grade change the listeners hear, in order: (contact id, old grade, new grade)."""
    heard: list[tuple[int, str, str]] = []

    def listener(contact, old_grade, new_grade):
        heard.append((contact.pk, old_grade, new_grade))

    scoring.on_grade_changed(listener)
    yield heard
    scoring._grade_listeners.remove(listener)
