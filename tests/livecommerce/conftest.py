import uuid

import pytest

from livecommerce import events


@pytest.fixture(autouse=True)
def _claims_on_the_database_path(settings):
    """API tests use the database claim path; the Redis/PostgreSQL fast paths have their
    own integration tests (tests/integration/test_coupon_burst.py)."""
    settings.COUPON_CLAIM_BACKEND = "db"
    settings.COUPON_REDIS_PREFIX = f"qmtest-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def published():
    seen = []

    def record(room_id, event):
        seen.append((room_id, event))

    events.register_publisher(record)
    yield seen
    events._publishers.remove(record)
