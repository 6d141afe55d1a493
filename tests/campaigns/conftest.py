import pytest
import time_machine

from campaigns.stubs.sms import AliyunSmsStub, TencentSmsStub
from tests.campaigns.factories import beijing


@pytest.fixture
def daytime():
    """Beijing 10:00 (inside the marketing window), with the clock ticking."""
    with time_machine.travel(beijing(10), tick=True) as traveller:
        yield traveller


# The SMS providers' stubs, shared by the campaigns tests (an injected `timeout` answers
# after 1.5 s instead of the stubs' default 3 s, to keep the tests short).
@pytest.fixture
def tencent_stub():
    with TencentSmsStub(delay=1.5) as stub:
        yield stub


@pytest.fixture
def aliyun_stub():
    with AliyunSmsStub(delay=1.5) as stub:
        yield stub


from tests.wechat.conftest import wechat_stub  # noqa: E402,F401 - the WeChat API stub fixture
