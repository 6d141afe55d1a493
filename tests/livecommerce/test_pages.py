import pytest

from tests.factories import RoomFactory


@pytest.mark.django_db
class TestPages:
    def test_console_and_viewer_pages_are_chinese_with_strict_csp_and_no_inline_script(
        self, host_alice, client
    ):
        room = RoomFactory(streamer=host_alice.profile, title="<script>alert(1)</script>")
        for url in (
            "/console/",
            f"/live/{room.pk}/",
            "/live/",
            f"/live/{room.pk}/replay/",
            f"/streamers/{host_alice.profile.pk}/",
        ):
            response = client.get(url)
            assert response.status_code == 200, url
            html = response.content.decode()
            assert "script-src 'self'" in response["Content-Security-Policy"]
            assert 'name="viewport"' in html
            assert "<script>" not in html  # titles are escaped; scripts are files
            assert " onclick=" not in html
        viewer = client.get(f"/live/{room.pk}/").content.decode()
        assert (
            "&lt;script&gt;" in viewer
            and "优惠券" in viewer
            and "/static/vendor/hls.min.js" in viewer
        )
        assert "主播控制台" in client.get("/console/").content.decode()

    def test_unknown_room_page_is_404(self, client, db):
        assert client.get("/live/999999/").status_code == 404
