"""WeChat identity API routes (mounted under /api/v1/ from the wechat section of qianmian/urls)."""

from django.urls import path

from wechat import apis

urlpatterns = [
    path("wechat/jssdk-config", apis.JssdkConfigApi.as_view(), name="wechat-jssdk-config"),
    path("wechat/accounts", apis.WeChatAccountListApi.as_view(), name="wechat-accounts"),
    path(
        "wechat/accounts/<int:account_id>",
        apis.WeChatAccountDetailApi.as_view(),
        name="wechat-account",
    ),
    path("wechat/tags", apis.WeChatTagListApi.as_view(), name="wechat-tags"),
    path("wechat/qrcodes", apis.WeChatQrCodeApi.as_view(), name="wechat-qrcodes"),
    path(
        "wechat/qrcodes/<int:qr_id>/image",
        apis.WeChatQrImageApi.as_view(),
        name="wechat-qrcode-image",
    ),
    path(
        "viewer/mp-subscriptions",
        apis.MpSubscriptionsApi.as_view(),
        name="viewer-mp-subscriptions",
    ),
    path("viewer/phone/code", apis.PhoneCodeApi.as_view(), name="viewer-phone-code"),
    path("viewer/phone/verify", apis.PhoneVerifyApi.as_view(), name="viewer-phone-verify"),
    path("viewer/phone/mp", apis.MpPhoneApi.as_view(), name="viewer-phone-mp"),
    path("rooms/<int:room_id>/mp-code", apis.RoomMpCodeApi.as_view(), name="room-mp-code"),
]
