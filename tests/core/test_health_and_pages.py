import pytest


@pytest.mark.django_db
def test_health_reports_each_part(anon):
    response = anon.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    # The embedded default runs the rest in-process, and says so.
    for part in ("cache", "hub", "claims", "send_limiter", "broker", "worker", "beat"):
        assert body[part].startswith("ok"), (part, body[part])


@pytest.mark.django_db
def test_home_page_links_every_workspace_in_chinese_with_a_strict_csp(client):
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    for link in ["/console/", "/live/", "/workspace/", "/api/docs/"]:
        assert f'href="{link}"' in html
    assert "主播控制台" in html
    assert "script-src 'self'" in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_home_page_in_english_when_asked(client):
    response = client.get("/", HTTP_ACCEPT_LANGUAGE="en")
    assert "Host console" in response.content.decode()


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/viewer/session" in schema.content
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_unknown_api_path_is_a_json_404(client):
    response = client.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_pages_load_the_javascript_catalog_before_their_scripts(client):
    page = client.get("/").content.decode()
    assert '<script src="/jsi18n/"></script>' in page
    catalog = client.get("/jsi18n/", HTTP_ACCEPT_LANGUAGE="en")
    assert catalog.status_code == 200
    assert catalog["Content-Type"].startswith("text/javascript")
    assert "django.gettext" in catalog.content.decode()
