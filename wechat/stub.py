"""A local HTTP stub of the WeChat API, for tests and the offline demo.

It speaks the endpoints wechatpy 1.8.18 calls (paths relative to the API base):

- ``GET  cgi-bin/token`` — client-credential access token
- ``POST cgi-bin/qrcode/create``, ``GET cgi-bin/showqrcode?ticket=`` (a PNG)
- ``GET  cgi-bin/user/info``
- ``GET  cgi-bin/ticket/getticket?type=jsapi``
- ``POST cgi-bin/message/template/send``, ``cgi-bin/message/custom/send``,
  ``cgi-bin/message/mass/send``, ``cgi-bin/message/mass/sendall`` (by tag: ``filter.tag_id``;
  the legacy ``group_id`` is refused; a repeated ``clientmsgid`` answers 45065),
  ``cgi-bin/message/subscribe/send``
- ``POST cgi-bin/user/tag/get`` — a tag's followers (``stub.set_tag``), paged by
  ``next_openid``
- ``GET  cgi-bin/tags/get`` — the account's user tags (``{"tags": [{"id", "name",
  "count"}]}``, from ``stub.set_tag(..., name=)``)
- ``GET  connect/oauth2/authorize`` (the page WeChat shows; the stub "agrees" at once and
  redirects back with a code), ``GET sns/oauth2/access_token``, ``GET sns/userinfo``
- ``GET  sns/jscode2session``
- ``GET  wxaapi/newtmpl/gettemplate`` — the mini-program's own subscribe templates
  (``stub.state.mp_templates``; unset: 48001 api unauthorized, so callers fall back)
- ``POST wxa/getwxacodeunlimit`` — a PNG (a QR of ``wxacode:<page>?<scene>``); a page with
  a leading slash or outside ``stub.mp_pages`` (when set) answers 41030 like WeChat
- ``POST wxa/msg_sec_check`` (version 2) — ``risky`` / ``review`` when the content holds a
  word given to ``stub.set_content_verdict``, else ``pass``
- ``POST wxa/business/getuserphonenumber`` — a getPhoneNumber code's phone
  (``stub.register_phone_code``; else a stable 139… number per code)

Everything it receives is recorded (``stub.requests``); errors are injected per path with
``stub.fail(path, errcode, errmsg, times=1)``. Codes map to users deterministically
(``openid_for_code``) unless registered with ``register_code``, so a test knows the openid
a code will yield. Access tokens are checked: a call with an unknown token answers 40001,
which is how wechatpy's refresh-and-retry is exercised.

Run standalone: ``python -m wechat.stub [port]``.
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlparse

import qrcode

TOKEN_PATHS = ("cgi-bin/token",)
# Paths that need a valid client-credential access token.
_AUTHED_PREFIXES = ("cgi-bin/", "wxa/", "wxaapi/")


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict
    body: bytes
    headers: dict
    at: float = field(default_factory=time.time)  # arrival (wall clock), for QPS checks

    def json(self) -> dict:
        return json.loads(self.body.decode("utf-8")) if self.body else {}


@dataclass
class StubUser:
    openid: str
    unionid: str = ""
    nickname: str = ""
    sex: int = 0
    province: str = ""
    city: str = ""
    headimgurl: str = ""
    subscribe: int = 1


@dataclass
class _Failure:
    errcode: int
    errmsg: str
    times: int
    http_status: int = 200
    delay: float = 0.0


@dataclass
class WeChatStubState:
    requests: list[RecordedRequest] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> appid
    codes: dict[str, StubUser] = field(default_factory=dict)
    code_scopes: dict[str, str] = field(default_factory=dict)  # OAuth code -> scope granted
    oauth_tokens: dict[str, StubUser] = field(default_factory=dict)
    users: dict[str, StubUser] = field(default_factory=dict)  # openid -> user
    secrets: dict[str, str] = field(default_factory=dict)  # appid -> secret (checked if set)
    failures: dict[str, list[_Failure]] = field(default_factory=dict)
    token_fetches: int = 0
    token_delay: float = 0.0
    msgid: int = 1000
    tags: dict[int, list[str]] = field(default_factory=dict)  # tag id -> openids
    tag_names: dict[int, str] = field(default_factory=dict)  # tag id -> name
    clientmsgids: set[str] = field(default_factory=set)  # mass sends already taken
    mass_reached: list[str] = field(default_factory=list)  # one openid per mass delivery
    phone_codes: dict[str, str] = field(default_factory=dict)  # getPhoneNumber code -> phone
    used_phone_codes: set[str] = field(default_factory=set)
    content_verdicts: dict[str, str] = field(default_factory=dict)  # word -> review|risky
    mp_pages: set[str] = field(default_factory=set)  # published pages (empty: any)
    mp_templates: list[str] | None = None  # the mini-program's 我的模板 (None: API unauthorized)


def openid_for_code(appid: str, code: str, *, prefix: str = "o") -> str:
    """The openid the stub answers for an unregistered code (stable per appid + code)."""
    return prefix + hashlib.sha1(f"{appid}:{code}".encode()).hexdigest()[:27]  # noqa: S324


class _Server(ThreadingHTTPServer):
    # Many senders' connections open at once: socketserver's default backlog of 5 drops
    # SYNs, which the client retries a second later (a stall WeChat's API does not have).
    request_queue_size = 128


class WeChatStub:
    """A threaded HTTP server on 127.0.0.1 speaking the WeChat API. Use as a context manager
    or call ``start()`` / ``stop()``. ``base_url`` ends with a slash."""

    def __init__(self, port: int = 0):
        self.state = WeChatStubState()
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"stub": self})
        self.server = _Server(("127.0.0.1", port), handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- lifecycle ---
    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> WeChatStub:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="wechat-stub", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> WeChatStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- test controls ---
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self.state.requests)

    def received(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        with self._lock:
            self.state = WeChatStubState()

    def fail(
        self,
        path: str,
        errcode: int,
        errmsg: str = "injected",
        *,
        times: int = 1,
        http_status: int = 200,
        delay: float = 0.0,
    ) -> None:
        """The next ``times`` calls of ``path`` answer this error (or HTTP status / delay)."""
        with self._lock:
            self.state.failures.setdefault(path, []).append(
                _Failure(errcode, errmsg, times, http_status, delay)
            )

    def register_code(self, code: str, user: StubUser) -> None:
        """An OAuth / jscode2session code that resolves to this user."""
        with self._lock:
            self.state.codes[code] = user
            self.state.users[user.openid] = user

    def set_content_verdict(self, word: str, suggest: str) -> None:
        """msgSecCheck answers ``suggest`` (review / risky) for content containing ``word``."""
        with self._lock:
            self.state.content_verdicts[word] = suggest

    def register_phone_code(self, code: str, phone: str) -> None:
        """A getPhoneNumber code that resolves to ``phone`` (11 digits, or +country…)."""
        with self._lock:
            self.state.phone_codes[code] = phone

    def set_tag(self, tag_id: int, openids: list[str], *, name: str | None = None) -> None:
        """The followers WeChat holds under a user tag (what ``user/tag/get`` answers) and
        the tag's name (``tags/get``; default ``标签<id>``)."""
        with self._lock:
            self.state.tags[tag_id] = list(openids)
            self.state.tag_names[tag_id] = (
                name or self.state.tag_names.get(tag_id) or f"标签{tag_id}"
            )

    def mass_reached(self) -> list[str]:
        """Every openid a mass send (by list or by tag) reached, once per delivery."""
        with self._lock:
            return list(self.state.mass_reached)

    def register_user(self, user: StubUser) -> None:
        with self._lock:
            self.state.users[user.openid] = user

    def expire_tokens(self) -> None:
        """Forget every issued access token (the next call answers 40001)."""
        with self._lock:
            self.state.tokens.clear()

    # --- internals used by the handler ---
    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            queue = self.state.failures.get(path)
            if not queue:
                return None
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
            return failure

    def _user_for_code(self, appid: str, code: str, *, prefix: str) -> StubUser:
        with self._lock:
            user = self.state.codes.get(code)
            if user is None:
                openid = openid_for_code(appid, code, prefix=prefix)
                user = self.state.users.get(openid) or StubUser(
                    openid=openid, nickname=f"微信用户{openid[-4:]}"
                )
                self.state.users[openid] = user
            return user

    def _next_msgid(self) -> int:
        with self._lock:
            self.state.msgid += 1
            return self.state.msgid


class _Handler(BaseHTTPRequestHandler):
    stub: WeChatStub
    protocol_version = "HTTP/1.1"  # keep-alive: requests.Session reuses the connection
    # Headers and body leave in two writes: with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms) on a kept-alive connection, which no real provider's server does.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):  # noqa: A002 - quiet stub
        return

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    # --- plumbing ---
    def _dispatch(self, method: str) -> None:
        parsed = urlparse(self.path)
        path = parsed.path.lstrip("/")
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(method, path, query, body, dict(self.headers.items()))
        with self.stub._lock:
            self.stub.state.requests.append(request)
        failure = self.stub._take_failure(path)
        if failure is not None:
            if failure.delay:
                time.sleep(failure.delay)
            if failure.http_status != 200:
                return self._send(failure.http_status, b"stub failure", "text/plain")
            return self._json({"errcode": failure.errcode, "errmsg": failure.errmsg})
        if path.startswith(_AUTHED_PREFIXES) and path not in TOKEN_PATHS + ("cgi-bin/showqrcode",):
            with self.stub._lock:
                appid = self.stub.state.tokens.get(query.get("access_token", ""))
            if appid is None:
                return self._json({"errcode": 40001, "errmsg": "invalid credential"})
            query["_appid"] = appid
        route = _ROUTES.get(path)
        if route is None:
            return self._json({"errcode": 404, "errmsg": f"stub has no {path}"}, status=404)
        return route(self, request, query)

    def _send(self, status: int, payload: bytes, content_type: str, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _json(self, data: dict, status: int = 200):
        return self._send(status, json.dumps(data, ensure_ascii=False).encode(), "application/json")

    # --- endpoints ---
    def token(self, request, query):
        state = self.stub.state
        appid, secret = query.get("appid", ""), query.get("secret", "")
        if not appid or not secret:
            return self._json({"errcode": 41002, "errmsg": "appid missing"})
        expected = state.secrets.get(appid)
        if expected is not None and expected != secret:
            return self._json({"errcode": 40125, "errmsg": "invalid appsecret"})
        if state.token_delay:
            time.sleep(state.token_delay)
        token = "stub-at-" + secrets.token_hex(12)
        with self.stub._lock:
            state.tokens[token] = appid
            state.token_fetches += 1
        return self._json({"access_token": token, "expires_in": 7200})

    def qrcode_create(self, request, query):
        data = request.json()
        ticket = "stub-ticket-" + secrets.token_urlsafe(16)
        scene = data.get("action_info", {}).get("scene", {})
        key = scene.get("scene_str") or scene.get("scene_id")
        result = {"ticket": ticket, "url": f"http://weixin.qq.com/q/stub-{key}-{ticket[-6:]}"}
        if data.get("action_name", "").startswith("QR_") and "LIMIT" not in data["action_name"]:
            result["expire_seconds"] = int(data.get("expire_seconds") or 60)
        return self._json(result)

    def showqrcode(self, request, query):
        image = qrcode.make(f"http://weixin.qq.com/q/{query.get('ticket', '')}")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return self._send(200, buffer.getvalue(), "image/png")

    def user_info(self, request, query):
        openid = query.get("openid", "")
        with self.stub._lock:
            user = self.stub.state.users.get(openid)
        if user is None:
            return self._json({"subscribe": 0, "openid": openid})
        return self._json(
            {
                "subscribe": user.subscribe,
                "openid": user.openid,
                "nickname": user.nickname,
                "sex": user.sex,
                "province": user.province,
                "city": user.city,
                "language": "zh_CN",
                "headimgurl": user.headimgurl,
                **({"unionid": user.unionid} if user.unionid else {}),
            }
        )

    def getticket(self, request, query):
        return self._json(
            {
                "errcode": 0,
                "errmsg": "ok",
                "ticket": "stub-jsapi-" + query["_appid"],
                "expires_in": 7200,
            }
        )

    def send_ok(self, request, query):
        msgid = self.stub._next_msgid()
        return self._json({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    # User tags are pageable like the real API (10,000 openids a page; tests shrink it).
    TAG_PAGE = 10000

    def tag_users(self, request, query):
        data = request.json()
        openids = self.stub.state.tags.get(int(data.get("tagid", 0)), [])
        start = openids.index(data["next_openid"]) + 1 if data.get("next_openid") else 0
        page = openids[start : start + self.TAG_PAGE]
        return self._json(
            {"count": len(page), "data": {"openid": page},
             "next_openid": page[-1] if page else ""}
        )  # fmt: skip

    def tags_get(self, request, query):
        with self.stub._lock:
            tags = [
                {"id": tag_id, "name": self.stub.state.tag_names.get(tag_id, f"标签{tag_id}"),
                 "count": len(openids)}
                for tag_id, openids in sorted(self.stub.state.tags.items())
            ]  # fmt: skip
        return self._json({"tags": tags})

    def mass_send(self, request, query):
        data = request.json()
        client_msg_id = data.get("clientmsgid")
        if request.path.endswith("sendall"):
            filt = data.get("filter") or {}
            if "group_id" in filt or "tag_id" not in filt or filt.get("is_to_all"):
                return self._json({"errcode": 40003, "errmsg": "filter needs tag_id"})
            reached = self.stub.state.tags.get(int(filt["tag_id"]), [])
        else:
            reached = list(data.get("touser") or [])
        with self.stub._lock:
            if client_msg_id and client_msg_id in self.stub.state.clientmsgids:
                return self._json({"errcode": 45065, "errmsg": "clientmsgid exist"})
            if client_msg_id:
                self.stub.state.clientmsgids.add(client_msg_id)
            self.stub.state.mass_reached.extend(reached)
        msgid = self.stub._next_msgid()
        return self._json(
            {"errcode": 0, "errmsg": "send job submission success", "msg_id": msgid,
             "msg_data_id": msgid * 10}
        )  # fmt: skip

    def oauth_authorize(self, request, query):
        # The real page asks the user (snsapi_userinfo) or not (snsapi_base); the stub agrees.
        redirect = query.get("redirect_uri", "")
        if not redirect.startswith(("http://", "https://")):
            return self._json({"errcode": 10003, "errmsg": "redirect_uri invalid"}, status=400)
        code = "stubcode" + secrets.token_hex(8)
        appid = query.get("appid", "")
        # A stable user per browser: the stub keys it on a cookie it sets itself.
        cookie = self.headers.get("Cookie", "")
        browser = next(
            (c.split("=", 1)[1] for c in cookie.split("; ") if c.startswith("stubwx=")), None
        )
        browser = browser or secrets.token_hex(8)
        user = self.stub._user_for_code(appid, browser, prefix="o")
        with self.stub._lock:
            self.stub.state.codes[code] = user
            self.stub.state.code_scopes[code] = query.get("scope", "snsapi_base")
        params = {"code": code, "state": query.get("state", "")}
        sep = "&" if "?" in redirect else "?"
        return self._send(
            302,
            b"",
            "text/plain",
            {
                "Location": f"{redirect}{sep}{urlencode(params)}",
                "Set-Cookie": f"stubwx={browser}; Path=/; HttpOnly; SameSite=Lax",
            },
        )

    def oauth_access_token(self, request, query):
        code = query.get("code", "")
        if not code or query.get("grant_type") != "authorization_code":
            return self._json({"errcode": 40029, "errmsg": "invalid code"})
        user = self.stub._user_for_code(query.get("appid", ""), code, prefix="o")
        token = "stub-oauth-" + secrets.token_hex(10)
        with self.stub._lock:
            self.stub.state.oauth_tokens[token] = user
        result = {
            "access_token": token,
            "expires_in": 7200,
            "refresh_token": "stub-refresh-" + secrets.token_hex(6),
            "openid": user.openid,
            "scope": self.stub.state.code_scopes.get(code, "snsapi_userinfo"),
        }
        if user.unionid:
            result["unionid"] = user.unionid
        return self._json(result)

    def oauth_userinfo(self, request, query):
        with self.stub._lock:
            user = self.stub.state.oauth_tokens.get(query.get("access_token", ""))
        if user is None or user.openid != query.get("openid"):
            return self._json({"errcode": 40001, "errmsg": "invalid credential"})
        return self._json(
            {
                "openid": user.openid,
                "nickname": user.nickname,
                "sex": user.sex,
                "province": user.province,
                "city": user.city,
                "country": "中国",
                "headimgurl": user.headimgurl,
                "privilege": [],
                **({"unionid": user.unionid} if user.unionid else {}),
            }
        )

    def jscode2session(self, request, query):
        code = query.get("js_code", "")
        if not code or query.get("grant_type") != "authorization_code":
            return self._json({"errcode": 40029, "errmsg": "invalid code"})
        appid = query.get("appid", "")
        expected = self.stub.state.secrets.get(appid)
        if expected is not None and expected != query.get("secret"):
            return self._json({"errcode": 40125, "errmsg": "invalid appsecret"})
        user = self.stub._user_for_code(appid, code, prefix="m")
        result = {"openid": user.openid, "session_key": secrets.token_urlsafe(16)}
        if user.unionid:
            result["unionid"] = user.unionid
        return self._json(result)

    def newtmpl_gettemplate(self, request, query):
        with self.stub._lock:
            templates = self.stub.state.mp_templates
        if templates is None:
            return self._json({"errcode": 48001, "errmsg": "api unauthorized"})
        data = [
            {"priTmplId": t, "title": "开播提醒", "content": "{{thing1.DATA}}", "type": 2}
            for t in templates
        ]
        return self._json({"errcode": 0, "errmsg": "ok", "data": data})

    def wxacode_unlimited(self, request, query):
        body = request.json()
        scene, page = str(body.get("scene", "")), str(body.get("page", ""))
        with self.stub._lock:
            pages = set(self.stub.state.mp_pages)
        if not scene or len(scene) > 32:
            return self._json({"errcode": 40169, "errmsg": "invalid length for scene"})
        if page.startswith("/") or (pages and page not in pages):
            return self._json({"errcode": 41030, "errmsg": "invalid page rid"})
        image = qrcode.make(f"wxacode:{page}?{scene}")
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return self._send(200, buffer.getvalue(), "image/png")

    def msg_sec_check(self, request, query):
        body = request.json()
        if body.get("version") != 2 or not body.get("openid") or not body.get("content"):
            return self._json({"errcode": 40003, "errmsg": "invalid openid or content"})
        with self.stub._lock:
            verdicts = dict(self.stub.state.content_verdicts)
        suggest, label = "pass", 100
        for word, verdict in verdicts.items():
            if word in body["content"]:
                suggest, label = verdict, 20006  # 违法犯罪
                if verdict == "risky":
                    break
        return self._json(
            {
                "errcode": 0,
                "errmsg": "ok",
                "result": {"suggest": suggest, "label": label},
                "detail": [{"strategy": "content_model", "errcode": 0, "suggest": suggest}],
                "trace_id": secrets.token_hex(8),
            }
        )

    def getuserphonenumber(self, request, query):
        code = str(request.json().get("code", ""))
        state = self.stub.state
        with self.stub._lock:
            if not code or code in state.used_phone_codes:
                return self._json({"errcode": 40029, "errmsg": "invalid code"})
            state.used_phone_codes.add(code)  # single use, like WeChat's
            phone = state.phone_codes.get(code)
        if phone is None:
            digits = int(hashlib.sha1(code.encode()).hexdigest()[:12], 16) % 10**8  # noqa: S324
            phone = f"139{digits:08d}"
        country, pure = ("86", phone) if not phone.startswith("+") else phone[1:].split(" ", 1)
        return self._json(
            {
                "errcode": 0,
                "errmsg": "ok",
                "phone_info": {
                    "phoneNumber": phone,
                    "purePhoneNumber": pure,
                    "countryCode": country,
                    "watermark": {"timestamp": int(time.time()), "appid": ""},
                },
            }
        )


_ROUTES = {
    "cgi-bin/token": _Handler.token,
    "cgi-bin/qrcode/create": _Handler.qrcode_create,
    "cgi-bin/showqrcode": _Handler.showqrcode,
    "cgi-bin/user/info": _Handler.user_info,
    "cgi-bin/ticket/getticket": _Handler.getticket,
    "cgi-bin/message/template/send": _Handler.send_ok,
    "cgi-bin/message/custom/send": _Handler.send_ok,
    "cgi-bin/message/subscribe/send": _Handler.send_ok,
    "cgi-bin/message/mass/send": _Handler.mass_send,
    "cgi-bin/message/mass/sendall": _Handler.mass_send,
    "cgi-bin/user/tag/get": _Handler.tag_users,
    "cgi-bin/tags/get": _Handler.tags_get,
    "connect/oauth2/authorize": _Handler.oauth_authorize,
    "sns/oauth2/access_token": _Handler.oauth_access_token,
    "sns/userinfo": _Handler.oauth_userinfo,
    "sns/jscode2session": _Handler.jscode2session,
    "wxa/business/getuserphonenumber": _Handler.getuserphonenumber,
    "wxa/msg_sec_check": _Handler.msg_sec_check,
    "wxa/getwxacodeunlimit": _Handler.wxacode_unlimited,
    "wxaapi/newtmpl/gettemplate": _Handler.newtmpl_gettemplate,
}


if __name__ == "__main__":  # pragma: no cover - manual use
    import sys

    stub = WeChatStub(int(sys.argv[1]) if len(sys.argv) > 1 else 0).start()
    print(f"WeChat stub on {stub.base_url}", flush=True)  # noqa: T201
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        stub.stop()
