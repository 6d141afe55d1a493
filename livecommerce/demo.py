"""Demo streamer, catalog of 12 products and a scheduled room with products."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from livecommerce.models import Product, Room, RoomProduct, RoomStatus, StreamerProfile

CATALOG = [
    ("玻尿酸保湿面膜（10片装）", "99.00", "159.00"),
    ("氨基酸洁面乳 120g", "59.00", "89.00"),
    ("烟酰胺亮肤精华 30ml", "189.00", "299.00"),
    ("防晒喷雾 SPF50+", "79.00", "129.00"),
    ("真丝睡眠眼罩", "129.00", "199.00"),
    ("轻薄羽绒服 女款", "399.00", "699.00"),
    ("高腰阔腿牛仔裤", "169.00", "259.00"),
    ("云南古树红茶 250g", "88.00", "128.00"),
    ("低糖坚果礼盒", "138.00", "198.00"),
    ("便携榨汁杯", "149.00", "239.00"),
    ("北欧陶瓷餐具四件套", "119.00", "179.00"),
    ("香薰蜡烛礼盒", "98.00", "168.00"),
]


def seed(ctx) -> None:
    org, host = ctx.org, ctx.users["host"]
    streamer, _ = StreamerProfile.objects.for_org(org).get_or_create(
        org=org,
        user=host,
        defaults={"name": "小美老师", "bio": "十年美妆护肤经验，每周三、周五晚八点直播。"},
    )
    products = []
    for index, (name, price, original) in enumerate(CATALOG):
        product, _ = Product.objects.for_org(org).get_or_create(
            org=org,
            name=name,
            defaults={
                "price": Decimal(price),
                "original_price": Decimal(original),
                "stock": 500 + index * 50,
                "link_url": f"https://mall.example.cn/item/{1000 + index}",
                "mp_path": f"pages/item/index?id={1000 + index}",
            },
        )
        products.append(product)
    room = Room.objects.for_org(org).filter(title="冬季护肤专场 · 限时福利").first()
    if room is None:
        room = Room.objects.for_org(org).create(
            org=org,
            streamer=streamer,
            title="冬季护肤专场 · 限时福利",
            description="直播间专享满减券、抽奖送面膜，预约开播提醒不错过。",
            scheduled_start=timezone.now() + timedelta(hours=2),
            status=RoomStatus.SCHEDULED,
        )
    for position, product in enumerate(products[:6]):
        RoomProduct.objects.for_org(org).get_or_create(
            org=org, room=room, product=product, defaults={"position": position}
        )
    ctx.extra["streamer"] = streamer
    ctx.extra["room"] = room
    ctx.extra["products"] = products
