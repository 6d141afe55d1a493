"""The campaigns workspace page is served with its module and no inline script."""

import pytest

pytestmark = pytest.mark.django_db


def test_campaigns_page_is_served(anon):
    response = anon.get("/workspace/campaigns/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "campaigns/campaigns.js" in html
    assert "<script>" not in html and "onclick" not in html
    assert "营销活动" in html
    # The journey builder: its own module, a form (no inline handlers) on the journeys tab.
    assert "campaigns/journeys.js" in html and 'id="journey-builder"' in html


def test_workspace_links_to_campaigns(anon):
    assert "/workspace/campaigns/" in anon.get("/workspace/").content.decode()
