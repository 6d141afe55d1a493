"""The one way to get a wechatpy client for an account: ``wechat_client`` / ``mp_client``.

wechatpy 1.8.18 hard-codes several URLs (the token fetch, the ``wxa`` sub-API, OAuth), so
the subclasses here point every one of them at ``api_base()``: ``WECHAT_API_BASE`` when set,
else the in-process stub in the embedded default, else the real WeChat API.

Access tokens live in Django's cache (Redis in production, so every process and worker
shares one token; local memory in the embedded default). A token is refreshed by ONE
caller under concurrency: the refresher holds a short cache lock, the others wait for the
new token instead of each fetching one (every fetch invalidates the previous token on
WeChat's side, so a stampede would make callers invalidate each other's tokens).
"""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.core.cache import cache
from wechatpy import WeChatClient, WeChatOAuth
from wechatpy.session import SessionStorage

from wechat.models import WeChatAccount
from wechat.stub import WeChatStub

REAL_API_BASE = "https://api.weixin.qq.com/"
REAL_OAUTH_BASE = "https://open.weixin.qq.com/connect/"
# Refresh a token this long before WeChat expires it.
_TOKEN_MARGIN = 300
_LOCK_SECONDS = 10

_stub = None
_stub_lock = threading.Lock()


def api_base() -> str:
    """Base URL of the WeChat API for this deployment (ends with a slash)."""
    if settings.WECHAT_API_BASE:
        return settings.WECHAT_API_BASE.rstrip("/") + "/"
    if settings.WECHAT_STUB:
        return embedded_stub().base_url
    return REAL_API_BASE


def oauth_base() -> str:
    """Where the viewer's browser goes for the OAuth authorize page (ends with a slash)."""
    if settings.WECHAT_OAUTH_BASE:
        return settings.WECHAT_OAUTH_BASE.rstrip("/") + "/"
    base = api_base()
    return REAL_OAUTH_BASE if base == REAL_API_BASE else base + "connect/"


def embedded_stub():
    """The process-wide stub of the WeChat API, started on first use (embedded default)."""
    global _stub
    with _stub_lock:
        if _stub is None:
            _stub = WeChatStub().start()
            # The offline demo's official account has a couple of user tags to pick from.
            _stub.set_tag(2, [], name="星标组")
            _stub.set_tag(100, [], name="直播常客")
            # ...and msgSecCheck has something to refuse in the demo's mini-program chat.
            _stub.set_content_verdict("代开发票", "risky")
        return _stub


class CacheStorage(SessionStorage):
    """wechatpy session storage on Django's cache (Redis in production)."""

    def __init__(self, prefix: str):
        self.prefix = prefix

    def key_name(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def get(self, key, default=None):
        value = cache.get(self.key_name(key))
        return default if value is None else value

    def set(self, key, value, ttl=None):
        if value is None:
            return
        cache.set(self.key_name(key), value, timeout=ttl)

    def delete(self, key):
        cache.delete(self.key_name(key))


class QianmianWeChatClient(WeChatClient):
    """``WeChatClient`` pointed at ``api_base()`` with a shared, stampede-free token."""

    def __init__(self, appid: str, secret: str, *, base: str, storage: SessionStorage):
        self.API_BASE_URL = base + "cgi-bin/"
        super().__init__(appid, secret, session=storage, timeout=settings.WECHAT_HTTP_TIMEOUT)
        self.base = base
        # Sub-APIs with their own hard-coded base URL.
        for name in ("wxa", "cloud", "card", "shakearound"):
            getattr(self, name).API_BASE_URL = base

    @property
    def access_token(self):
        token = self.session.get(self.access_token_key)
        if token:
            return token
        self.fetch_access_token()
        return self.session.get(self.access_token_key)

    def fetch_access_token(self):
        """Fetch a new token unless another caller just did. On wechatpy's retry path
        ``_last_token`` is the token WeChat refused: any other stored token is already fresh."""
        stale = getattr(self, "_last_token", None)
        lock_key = self.session.key_name(f"{self.appid}_token_lock")
        deadline = time.monotonic() + _LOCK_SECONDS
        while True:
            current = self.session.get(self.access_token_key)
            if current and current != stale:
                return {"access_token": current}
            if cache.add(lock_key, 1, timeout=_LOCK_SECONDS):
                try:
                    current = self.session.get(self.access_token_key)
                    if current and current != stale:
                        return {"access_token": current}
                    result = self._fetch_access_token(
                        url=self.base + "cgi-bin/token",
                        params={
                            "grant_type": "client_credential",
                            "appid": self.appid,
                            "secret": self.secret,
                        },
                    )
                    # wechatpy stored it with WeChat's TTL: store again with our margin.
                    ttl = max(int(result.get("expires_in", 7200)) - _TOKEN_MARGIN, 60)
                    self.session.set(self.access_token_key, result["access_token"], ttl)
                    return result
                finally:
                    cache.delete(lock_key)
            if time.monotonic() > deadline:
                raise TimeoutError("WeChat access token refresh did not finish")
            time.sleep(0.05)

    def _handle_result(self, res, method=None, url=None, result_processor=None, **kwargs):
        # wechatpy's retry path calls fetch_access_token() with no hint of which token failed;
        # remember it so a concurrent refresher's fresh token is reused, not replaced.
        self._last_token = (kwargs.get("params") or {}).get("access_token")
        return super()._handle_result(res, method, url, result_processor, **kwargs)


def _storage() -> CacheStorage:
    return CacheStorage(settings.WECHAT_CACHE_PREFIX)


def client_for(appid: str, secret: str) -> QianmianWeChatClient:
    return QianmianWeChatClient(appid, secret, base=api_base(), storage=_storage())


def wechat_client(account: WeChatAccount) -> QianmianWeChatClient:
    """A wechatpy client for an official account (or a mini-program: same class)."""
    return client_for(account.appid, account.secret())


def mp_client(account: WeChatAccount) -> QianmianWeChatClient:
    """A wechatpy client for a mini-program; ``client.wxa`` is pointed at the same base."""
    return client_for(account.appid, account.secret())


class QianmianWeChatOAuth(WeChatOAuth):
    """``WeChatOAuth`` with both of its hard-coded bases pointed at this deployment's."""

    def __init__(self, account: WeChatAccount, *, redirect_uri: str, scope: str, state: str):
        self.API_BASE_URL = api_base()
        self.OAUTH_BASE_URL = oauth_base()
        super().__init__(account.appid, account.secret(), redirect_uri, scope=scope, state=state)

    def _request(self, method, url_or_endpoint, **kwargs):
        kwargs.setdefault("timeout", settings.WECHAT_HTTP_TIMEOUT)
        return super()._request(method, url_or_endpoint, **kwargs)


def wechat_oauth(
    account: WeChatAccount, *, redirect_uri: str = "", scope: str = "snsapi_base", state: str = ""
) -> QianmianWeChatOAuth:
    return QianmianWeChatOAuth(account, redirect_uri=redirect_uri, scope=scope, state=state)
