from django.urls import include, path

from livecommerce import apis, apis_viewer

urlpatterns = [
    path("viewer/session", apis_viewer.ViewerSessionApi.as_view(), name="viewer-session"),
    path("products", apis.ProductListApi.as_view(), name="products"),
    path("products/<int:product_id>", apis.ProductDetailApi.as_view(), name="product-detail"),
    path("products/<int:product_id>/click", apis.ProductClickApi.as_view(), name="product-click"),
    path("rooms", apis.RoomListApi.as_view(), name="rooms"),
    path("rooms/<int:room_id>", apis.RoomDetailApi.as_view(), name="room-detail"),
    path("rooms/<int:room_id>/start", apis.RoomStartApi.as_view(), name="room-start"),
    path("rooms/<int:room_id>/end", apis.RoomEndApi.as_view(), name="room-end"),
    path("rooms/<int:room_id>/cover", apis.RoomCoverApi.as_view(), name="room-cover"),
    path("rooms/<int:room_id>/public", apis.RoomPublicApi.as_view(), name="room-public"),
    path("rooms/<int:room_id>/products", apis.RoomProductsApi.as_view(), name="room-products"),
    path(
        "rooms/<int:room_id>/products/<int:product_id>/pin",
        apis.RoomProductPinApi.as_view(),
        name="room-product-pin",
    ),
    path("rooms/<int:room_id>/coupons", apis.RoomCouponsApi.as_view(), name="room-coupons"),
    path("coupons/<int:coupon_id>/release", apis.CouponReleaseApi.as_view(), name="coupon-release"),
    path("coupons/<int:coupon_id>/claim", apis.CouponClaimApi.as_view(), name="coupon-claim"),
    path("coupons/redeem", apis.CouponRedeemApi.as_view(), name="coupon-redeem"),
    path("me/coupons", apis.MyClaimsApi.as_view(), name="my-coupons"),
    path("rooms/<int:room_id>/reserve", apis.RoomReserveApi.as_view(), name="room-reserve"),
    path("streamers/<int:streamer_id>", apis.StreamerPublicApi.as_view(), name="streamer"),
    path("streamers/<int:streamer_id>/follow", apis.StreamerFollowApi.as_view(), name="follow"),
    path("rooms/<int:room_id>/draws", apis.RoomDrawsApi.as_view(), name="room-draws"),
    path("draws/<int:draw_id>/run", apis.DrawRunApi.as_view(), name="draw-run"),
    path("rooms/<int:room_id>/replay", apis.RoomReplayApi.as_view(), name="room-replay"),
    path("rooms/<int:room_id>/replay/watch", apis.ReplayWatchApi.as_view(), name="replay-watch"),
    path(
        "rooms/<int:room_id>/invite-poster",
        apis.RoomInvitePosterApi.as_view(),
        name="room-invite-poster",
    ),
    path("rooms/<int:room_id>/follow-qr", apis.RoomFollowQrApi.as_view(), name="room-follow-qr"),
    path(
        "rooms/<int:room_id>/invite-leaderboard",
        apis.RoomInviteLeaderboardApi.as_view(),
        name="room-invite-leaderboard",
    ),
    path("rooms/<int:room_id>/stats", apis.RoomStatsApi.as_view(), name="room-stats"),
    path("rooms/<int:room_id>/report", apis.RoomReportApi.as_view(), name="room-report"),
    path("invites", apis.InviteReviewApi.as_view(), name="invites"),
    path("", include("livecommerce.urls_chat")),
]
