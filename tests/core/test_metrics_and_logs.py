"""Prometheus metrics at /metrics and JSON logs carrying the request id."""

from __future__ import annotations

import json
import logging

import pytest

from core.logs import JsonFormatter, RequestIdFilter


@pytest.mark.django_db
def test_metrics_count_requests_by_route_and_report_the_outbox(anon):
    anon.get("/api/v1/health")
    response = anon.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'qm_http_requests_total{method="GET",route="api/v1/health",status="200"}' in text
    assert 'qm_outbox_backlog{state="due"} 0.0' in text
    assert "qm_http_request_seconds_bucket" in text


@pytest.mark.django_db
def test_metrics_are_refused_to_anyone_but_the_allowed_addresses(anon, settings):
    assert anon.get("/metrics", REMOTE_ADDR="203.0.113.4").status_code == 404
    settings.TRUSTED_PROXY_COUNT = 1
    # Behind nginx the address is the forwarded one: a remote client stays out...
    assert anon.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.4").status_code == 404
    # ...and cannot get in by writing a loopback address itself.
    spoofed = anon.get("/metrics", HTTP_X_FORWARDED_FOR="127.0.0.1, 203.0.113.4")
    assert spoofed.status_code == 404


@pytest.mark.django_db
def test_every_response_carries_a_request_id_that_the_logs_carry_too(anon, settings):
    first = anon.get("/api/v1/health")["X-Request-ID"]
    second = anon.get("/api/v1/health")["X-Request-ID"]
    assert first and second and first != second
    # A client's own id is ignored unless a trusted proxy (nginx) set it.
    assert anon.get("/api/v1/health", HTTP_X_REQUEST_ID="chosen-by-me-1")["X-Request-ID"] != (
        "chosen-by-me-1"
    )
    settings.TRUSTED_PROXY_COUNT = 1
    proxied = anon.get("/api/v1/health", HTTP_X_REQUEST_ID="0123456789abcdef")
    assert proxied["X-Request-ID"] == "0123456789abcdef"


def test_json_log_lines_carry_the_bound_request_id():
    from core import logs

    record = logging.LogRecord("qm.test", logging.WARNING, __file__, 1, "顾客 %s", ("丹",), None)
    token = logs.bind_request_id("rid-12345678")
    try:
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        logs.unbind_request_id(token)
    assert line["message"] == "顾客 丹"
    assert line["request_id"] == "rid-12345678"
    assert line["level"] == "WARNING" and line["logger"] == "qm.test"
