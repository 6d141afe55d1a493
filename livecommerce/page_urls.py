"""Pages (host console, viewer H5, replay and clip pages) and media-server hooks."""

from django.urls import path

from livecommerce import hooks, pages

urlpatterns = [
    path("hooks/media/nginx-rtmp/<slug:event>", hooks.nginx_rtmp_hook, name="hook-nginx-rtmp"),
    path("hooks/media/tencent", hooks.tencent_hook, name="hook-tencent"),
    path("console/", pages.console, name="console"),
    path("console/reports/", pages.report, name="console-reports"),
    path("console/rooms/<int:room_id>/report/", pages.report, name="console-report"),
    path("live/", pages.room_list, name="live-list"),
    path("live/privacy/", pages.privacy, name="live-privacy"),
    path("live/<int:room_id>/", pages.viewer, name="live-room"),
    path("live/<int:room_id>/replay/", pages.replay, name="live-replay"),
    path("live/<int:room_id>/clips/<int:clip_id>/", pages.clip, name="live-clip"),
    path("streamers/<int:streamer_id>/", pages.streamer, name="streamer-page"),
]
