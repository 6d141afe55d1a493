from django.urls import path

from livecommerce import apis_chat as apis

urlpatterns = [
    path("rooms/<int:room_id>/state", apis.RoomStateApi.as_view(), name="room-state"),
    path("rooms/<int:room_id>/chat", apis.ChatListApi.as_view(), name="room-chat"),
    path(
        "rooms/<int:room_id>/chat/<int:message_id>/delete",
        apis.ChatDeleteApi.as_view(),
        name="room-chat-delete",
    ),
    path(
        "rooms/<int:room_id>/chat/<int:message_id>/approve",
        apis.ChatApproveApi.as_view(),
        name="room-chat-approve",
    ),
    path(
        "rooms/<int:room_id>/chat-settings",
        apis.ChatSettingsApi.as_view(),
        name="room-chat-settings",
    ),
    path(
        "rooms/<int:room_id>/announcement", apis.AnnouncementApi.as_view(), name="room-announcement"
    ),
    path("rooms/<int:room_id>/moderation", apis.ModerationApi.as_view(), name="room-moderation"),
    path(
        "rooms/<int:room_id>/moderation-log",
        apis.ModerationLogApi.as_view(),
        name="room-moderation-log",
    ),
    path("sensitive-words", apis.SensitiveWordListApi.as_view(), name="sensitive-words"),
    path(
        "sensitive-words/<int:word_id>",
        apis.SensitiveWordDetailApi.as_view(),
        name="sensitive-word",
    ),
]
