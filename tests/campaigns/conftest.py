import pytest
import time_machine

from tests.campaigns.factories import beijing


@pytest.fixture
def daytime():
    """Beijing 10:00 (inside the marketing window), with the clock ticking."""
    with time_machine.travel(beijing(10), tick=True) as traveller:
        yield traveller


from tests.wechat.conftest import wechat_stub  # noqa: E402,F401 - the WeChat API stub fixture
