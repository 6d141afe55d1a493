"""Browsers get pages, API callers get JSON: 400/403/404/500 in the product's style, a
favicon on every page."""

import pytest
from django.test import Client, RequestFactory

from core.errors import handler_403, handler_500

pytestmark = pytest.mark.django_db

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_a_missing_room_page_is_an_html_404_page_in_chinese_and_english():
    response = Client().get("/live/999/", headers={"accept": BROWSER})
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert 'data-status="404"' in page and "页面不存在" in page and 'href="/live/"' in page
    english = Client().get("/live/999/", headers={"accept": BROWSER, "accept-language": "en"})
    assert "Page not found" in english.content.decode()


def test_api_and_json_callers_keep_the_json_error_shape():
    assert Client().get("/api/v1/nope", headers={"accept": BROWSER}).json()["code"] == "not_found"
    response = Client().get("/live/999/", headers={"accept": "application/json"})
    assert response.status_code == 404 and response.json()["code"] == "not_found"


def test_a_foreign_host_is_an_html_400_page():
    response = Client().get("/live/1/", headers={"host": "evil.example", "accept": BROWSER})
    assert response.status_code == 400 and 'data-status="400"' in response.content.decode()


@pytest.mark.parametrize(("handler", "status"), [(handler_403, 403), (handler_500, 500)])
def test_403_and_500_pages(handler, status):
    request = RequestFactory().get("/console/", headers={"accept": BROWSER})
    response = handler(request)
    assert response.status_code == status
    assert f'data-status="{status}"' in response.content.decode()
    api = handler(RequestFactory().get("/api/v1/rooms"))
    assert api.status_code == status and api["Content-Type"] == "application/json"


def test_every_page_links_a_favicon_and_favicon_ico_finds_it():
    page = Client().get("/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in page
    ico = Client().get("/favicon.ico")
    assert ico.status_code == 301
    icon = Client().get(ico["Location"])
    assert icon.status_code == 200 and b"<svg" in b"".join(icon.streaming_content)


def test_wechat_oauth_errors_are_pages_for_the_browser(acme):
    # A stale or foreign OAuth state: the browser sees a page, an API-style caller the JSON.
    page = Client().get(
        "/wechat/oauth/callback", {"code": "c", "state": "x"}, headers={"accept": BROWSER}
    )
    assert page.status_code == 400 and 'data-status="400"' in page.content.decode()
    assert "授权已过期" in page.content.decode()
    api = Client().get(
        "/wechat/oauth/callback",
        {"code": "c", "state": "x"},
        headers={"accept": "application/json"},
    )
    assert api.status_code == 400 and api.json()["code"] == "oauth_state_mismatch"
    missing = Client().get("/wechat/oauth/start", {"org": "nope"}, headers={"accept": BROWSER})
    assert missing.status_code == 404 and 'data-status="404"' in missing.content.decode()
