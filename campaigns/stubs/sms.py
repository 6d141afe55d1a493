"""Local HTTP stub servers speaking Tencent Cloud's and Alibaba Cloud's SMS wire formats.

The real SDK clients are pointed at them (``ProviderAccount.endpoint = "127.0.0.1:PORT"``).
They count what each phone received (the ground truth for "nobody got it twice"), keep the
arrival time of every request (to check the token bucket from the outside), produce
receipts in each provider's callback format, and inject faults:

- ``timeout``: the message IS taken (counted) but the answer comes after ``delay`` seconds —
  the case where a client cannot know whether it went out;
- ``5xx``: HTTP 500 before anything is taken;
- ``ratelimit``: the provider's own rate-limit error, nothing taken.

Send requests (not status queries) are timed apart in ``send_times`` for the QPS check.

Status queries (Tencent ``PullSmsSendStatusByPhoneNumber``, Alibaba ``QuerySendDetails``)
answer from what was recorded: delivered, or failed for phones in ``stub.failed_phones``;
nothing for a message the stub never took.

Faults are armed with ``stub.inject(kind, count=n)`` or a probability ``stub.fault_rate``;
over HTTP with ``POST /_stub/inject {"kind", "count"}`` and ``GET /_stub/counts``.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes: with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms) on a kept-alive connection, which no real provider's server does.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format, *args):  # noqa: A002 - silence per-request logging
        return

    def _reply(self, status: int, body: dict) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):  # noqa: N802
        stub = self.server.stub
        if self.path.startswith("/_stub/counts"):
            self._reply(200, stub.snapshot())
        else:
            self._reply(404, {"error": "not found"})

    def do_POST(self):  # noqa: N802
        stub = self.server.stub
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/_stub/inject"):
            data = json.loads(body or b"{}")
            stub.inject(data["kind"], count=int(data.get("count", 1)))
            self._reply(200, {"ok": True})
            return
        if self.path.startswith("/_stub/reset"):
            stub.reset()
            self._reply(200, {"ok": True})
            return
        action = self.headers.get("X-TC-Action") or self.headers.get("x-acs-action") or ""
        fault = stub.take_fault()
        stub.note_request(send=action in ("SendSms", "SendBatchSms"))
        if fault == "5xx":
            self._reply(500, stub.error_body("InternalError", "injected 5xx"))
            return
        if fault == "ratelimit":
            self._reply(*stub.ratelimit_reply())
            return
        status, reply = stub.handle(self, body)
        if fault == "timeout":
            time.sleep(stub.delay)
        try:
            self._reply(status, reply)
        except OSError:
            pass  # the client gave up waiting: exactly the ambiguous case we simulate


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Many senders' kept-alive connections open at once: socketserver's default backlog of 5
    # drops SYNs, which the client retries a second later (a stall no provider has).
    request_queue_size = 128
    stub: SmsStub


class SmsStub:
    provider = ""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay: float = 3.0):
        self.delay = delay
        self.fault_rate: dict[str, float] = {}
        self._lock = threading.Lock()
        self.reset()
        self.httpd = _Server((host, port), _Handler)
        self.httpd.stub = self
        self.thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> SmsStub:
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> SmsStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- bookkeeping -----------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.received: Counter[str] = Counter()
            self.messages: list[dict] = []
            self.request_times: list[float] = []
            self.send_times: list[float] = []  # send requests only (not status queries)
            self._faults: list[str] = []
            self.faults_served: Counter[str] = Counter()
            self.failed_phones: set[str] = set()  # status queries report these as failed

    def inject(self, kind: str, *, count: int = 1) -> None:
        if kind not in ("timeout", "5xx", "ratelimit"):
            raise ValueError(kind)
        with self._lock:
            self._faults.extend([kind] * count)

    def take_fault(self) -> str | None:
        with self._lock:
            if self._faults:
                kind = self._faults.pop(0)
                self.faults_served[kind] += 1
                return kind
        for kind, rate in self.fault_rate.items():
            if random.random() < rate:  # noqa: S311 - fault injection, not security
                with self._lock:
                    self.faults_served[kind] += 1
                return kind
        return None

    def note_request(self, *, send: bool = True) -> None:
        with self._lock:
            now = time.time()
            self.request_times.append(now)
            if send:
                self.send_times.append(now)

    def record(self, phone: str, *, batch_key: str, template: str, params) -> str:
        message_id = uuid.uuid4().hex[:20]
        phone = phone[-11:]
        with self._lock:
            self.received[phone] += 1
            self.messages.append(
                {
                    "phone": phone,
                    "id": message_id,
                    "batch_key": batch_key,
                    "template": template,
                    "params": params,
                }
            )
        return message_id

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "received": dict(self.received),
                "messages": len(self.messages),
                "requests": len(self.request_times),
                "request_times": list(self.request_times),
            }

    def duplicates(self) -> dict[str, int]:
        with self._lock:
            return {phone: n for phone, n in self.received.items() if n > 1}

    def max_requests_in_any_window(self, seconds: float = 1.0, *, sends_only: bool = False) -> int:
        times = sorted(self.send_times if sends_only else self.request_times)
        best, start = 0, 0
        for end, t in enumerate(times):
            while t - times[start] >= seconds:
                start += 1
            best = max(best, end - start + 1)
        return best


class TencentSmsStub(SmsStub):
    """``POST /`` with ``X-TC-Action: SendSms`` and a JSON body (API 2021-01-11)."""

    provider = "tencent"

    def error_body(self, code: str, message: str) -> dict:
        return {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": "stub"}}

    def ratelimit_reply(self) -> tuple[int, dict]:
        return 200, self.error_body("RequestLimitExceeded", "injected rate limit")

    def handle(self, handler, body: bytes) -> tuple[int, dict]:
        action = handler.headers.get("X-TC-Action")
        if action not in ("SendSms", "PullSmsSendStatusByPhoneNumber"):
            return 200, self.error_body("InvalidAction", "only SendSms and status pulls")
        if not handler.headers.get("Authorization", "").startswith("TC3-HMAC-SHA256"):
            return 200, self.error_body("AuthFailure.SignatureFailure", "unsigned")
        data = json.loads(body)
        if action == "PullSmsSendStatusByPhoneNumber":
            return 200, self.status_by_phone(data)
        phones = data.get("PhoneNumberSet") or []
        if len(phones) > 200:
            return 200, self.error_body("LimitExceeded.PhoneNumberCountLimit", "> 200 numbers")
        statuses = []
        for phone in phones:
            message_id = self.record(
                phone,
                batch_key=data.get("SessionContext", ""),
                template=data.get("TemplateId", ""),
                params=data.get("TemplateParamSet") or [],
            )
            statuses.append(
                {
                    "SerialNo": message_id,
                    "PhoneNumber": phone,
                    "Fee": 1,
                    "SessionContext": data.get("SessionContext", ""),
                    "Code": "Ok",
                    "Message": "send success",
                    "IsoCode": "CN",
                }
            )
        return 200, {"Response": {"SendStatusSet": statuses, "RequestId": uuid.uuid4().hex}}

    def status_by_phone(self, data: dict) -> dict:
        """``PullSmsSendStatusByPhoneNumber``: the status reports of one number since
        ``BeginTime`` (what the provider knows; nothing for a message it never took)."""
        phone = str(data.get("PhoneNumber", ""))[-11:]
        with self._lock:
            found = [m for m in self.messages if m["phone"] == phone]
            failed = phone in self.failed_phones
        offset, limit = int(data.get("Offset", 0)), int(data.get("Limit", 100))
        return {
            "Response": {
                "PullSmsSendStatusSet": [
                    {
                        "UserReceiveTime": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "CountryCode": "86",
                        "SubscriberNumber": m["phone"],
                        "PhoneNumber": f"+86{m['phone']}",
                        "SerialNo": m["id"],
                        "ReportStatus": "FAIL" if failed else "SUCCESS",
                        "Description": "stub report",
                        "SessionContext": m["batch_key"],
                    }
                    for m in found[offset : offset + limit]
                ],
                "RequestId": uuid.uuid4().hex,
            }
        }

    def receipts(self) -> list[dict]:
        """Status reports in Tencent's callback format (a JSON array)."""
        with self._lock:
            return [
                {
                    "user_receive_time": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "nationcode": "86",
                    "mobile": m["phone"],
                    "report_status": "SUCCESS",
                    "errmsg": "DELIVRD",
                    "description": "用户短信送达成功",
                    "sid": m["id"],
                    "ext": m["batch_key"],
                }
                for m in self.messages
            ]


class AliyunSmsStub(SmsStub):
    """``POST /`` with ``x-acs-action: SendSms|SendBatchSms``; parameters in the query string
    (SendSms) or the form body (SendBatchSms's JSON arrays)."""

    provider = "aliyun"

    def error_body(self, code: str, message: str) -> dict:
        return {"Code": code, "Message": message, "RequestId": "stub"}

    def ratelimit_reply(self) -> tuple[int, dict]:
        return 200, self.error_body("isv.BUSINESS_LIMIT_CONTROL", "injected rate limit")

    def handle(self, handler, body: bytes) -> tuple[int, dict]:
        action = handler.headers.get("x-acs-action")
        if not handler.headers.get("Authorization", "").startswith("ACS3-HMAC-SHA256"):
            return 400, self.error_body("IncompleteSignature", "unsigned")
        params = {k: v[0] for k, v in parse_qs(urlparse(handler.path).query).items()}
        params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
        biz_id = uuid.uuid4().hex[:20]
        if action == "QuerySendDetails":
            return 200, self.send_details(params)
        if action == "SendSms":
            phones = params.get("PhoneNumbers", "").split(",")
            template_params = [params.get("TemplateParam", "{}")] * len(phones)
        elif action == "SendBatchSms":
            phones = json.loads(params.get("PhoneNumberJson", "[]"))
            template_params = json.loads(params.get("TemplateParamJson", "[]"))
            if len(phones) > 100:
                return 200, self.error_body("isv.MOBILE_COUNT_OVER_LIMIT", "> 100 numbers")
        else:
            return 400, self.error_body("InvalidAction", "unknown action")
        for phone, tparams in zip(phones, template_params, strict=False):
            self.record(
                phone,
                batch_key=params.get("OutId", ""),
                template=params.get("TemplateCode", ""),
                params=tparams,
            )
            self.messages[-1]["biz_id"] = biz_id
        return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": "stub"}

    def send_details(self, params: dict) -> dict:
        """``QuerySendDetails``: what was sent to one number (SendStatus 3 delivered, 2 failed;
        nothing for a message the provider never took)."""
        phone = params.get("PhoneNumber", "")[-11:]
        with self._lock:
            found = [m for m in self.messages if m["phone"] == phone]
            failed = phone in self.failed_phones
        size, page = int(params.get("PageSize", 50)), int(params.get("CurrentPage", 1))
        rows = found[(page - 1) * size : page * size]
        return {
            "Code": "OK",
            "Message": "OK",
            "RequestId": "stub",
            "TotalCount": len(found),
            "SmsSendDetailDTOs": {
                "SmsSendDetailDTO": [
                    {
                        "PhoneNum": m["phone"],
                        "SendStatus": 2 if failed else 3,
                        "ErrCode": "STUB_FAIL" if failed else "DELIVERED",
                        "TemplateCode": m["template"],
                        "Content": "",
                        "SendDate": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "ReceiveDate": time.strftime("%Y-%m-%d %H:%M:%S"),
                        "OutId": m["batch_key"],
                    }
                    for m in rows
                ]
            },
        }

    def receipts(self) -> list[dict]:
        """Status reports in Alibaba's callback format (a JSON array)."""
        with self._lock:
            return [
                {
                    "phone_number": m["phone"],
                    "send_time": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "report_time": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "success": True,
                    "err_code": "DELIVERED",
                    "err_msg": "用户接收成功",
                    "sms_size": "1",
                    "biz_id": m.get("biz_id", m["id"]),
                    "out_id": m["batch_key"],
                }
                for m in self.messages
            ]


def main() -> None:
    """``python -m campaigns.stubs.sms tencent|aliyun [port]``: serve a stub until killed."""

    cls = TencentSmsStub if sys.argv[1] == "tencent" else AliyunSmsStub
    stub = cls(port=int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    print(stub.port, flush=True)
    stub.httpd.serve_forever()


if __name__ == "__main__":
    main()
