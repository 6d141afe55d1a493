from django.urls import include, path

from livecommerce import apis

urlpatterns = [
    path("products", apis.ProductListApi.as_view(), name="products"),
    path("products/<int:product_id>", apis.ProductDetailApi.as_view(), name="product-detail"),
    path("rooms", apis.RoomListApi.as_view(), name="rooms"),
    path("rooms/<int:room_id>", apis.RoomDetailApi.as_view(), name="room-detail"),
    path("rooms/<int:room_id>/start", apis.RoomStartApi.as_view(), name="room-start"),
    path("rooms/<int:room_id>/end", apis.RoomEndApi.as_view(), name="room-end"),
    path("", include("livecommerce.urls_chat")),
]
