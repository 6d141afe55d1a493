import pytest
from django.core.cache import cache

from tests.wechat.factories import mini_program, official_account
from wechat.stub import WeChatStub


@pytest.fixture
def wechat_stub(settings):
    """A fresh stub of the WeChat API; every wechatpy client of the test talks to it."""
    with WeChatStub() as stub:
        settings.WECHAT_API_BASE = stub.base_url
        settings.WECHAT_OAUTH_BASE = ""
        cache.clear()
        yield stub
    cache.clear()


@pytest.fixture
def oa(acme):
    return official_account(acme)


@pytest.fixture
def mp(acme):
    return mini_program(acme)
