"""Fixtures shared by the crm tests."""

import pytest

from crm.services.scoring import grades


@pytest.fixture
def announced():
    """Every grade change the listeners hear, in order: (contact id, old grade, new grade)."""
    heard: list[tuple[int, str, str]] = []

    def listener(contact, old_grade, new_grade):
        heard.append((contact.pk, old_grade, new_grade))

    grades.on_grade_changed(listener)
    yield heard
    grades._grade_listeners.remove(listener)
