"""Demo streamer, catalog of 12 products and a scheduled room with products."""

from __future__ import annotations

import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from livecommerce.models import (
    Coupon,
    Product,
    ProductClip,
    Replay,
    Room,
    RoomProduct,
    RoomStatus,
    StreamerProfile,
)

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
    seed_rooms_extras(ctx)


def seed_rooms_extras(ctx) -> None:
    """Coupons (one released, one sold out), a past room with a replay and clips."""

    org, room, streamer = ctx.org, ctx.extra["room"], ctx.extra["streamer"]
    products = ctx.extra["products"]
    week = timezone.now() + timedelta(days=7)
    coupons = [
        ("满199减30", "threshold", "30", "199", 200, True),
        ("无门槛10元券", "no_threshold", "10", "0", 100, False),
        ("全场8.5折", "discount", "8.5", "0", 50, False),
    ]
    for name, kind, amount, threshold, stock, released in coupons:
        Coupon.objects.for_org(org).get_or_create(
            org=org,
            room=room,
            name=name,
            defaults={
                "kind": kind,
                "amount": Decimal(amount),
                "threshold": Decimal(threshold),
                "stock": stock,
                "valid_until": week,
                "released_at": timezone.now() if released else None,
            },
        )
    past = Room.objects.for_org(org).filter(title="上周美妆专场（回放）").first()
    if past is None:
        started = timezone.now() - timedelta(days=7)
        past = Room.objects.for_org(org).create(
            org=org,
            streamer=streamer,
            title="上周美妆专场（回放）",
            scheduled_start=started,
            started_at=started,
            ended_at=started + timedelta(minutes=30),
            status=RoomStatus.ENDED,
        )
        for index, product in enumerate(products[:3]):
            ProductClip.objects.for_org(org).create(
                org=org,
                room=past,
                product=product,
                pinned_at=started + timedelta(seconds=index * 20),
                unpinned_at=started + timedelta(seconds=index * 20 + 15),
                start_s=index * 20,
                end_s=index * 20 + 15,
            )
    if not Replay.objects.for_org(org).filter(room=past).exists():
        url = _demo_recording(past.pk)
        Replay.objects.for_org(org).create(
            org=org, room=past, url=url, source="demo", duration_s=60
        )


def _demo_recording(room_id: int) -> str:
    """A real 60 s VOD HLS recording so the demo's replay and clip pages play something:
    ffmpeg's test pattern, encoded once and committed (livecommerce/demo_media/replay, about
    200 kB), so seeding needs no ffmpeg on the machine."""

    source = Path(__file__).resolve().parent / "demo_media" / "replay"
    target = Path(settings.MEDIA_ROOT) / "replays" / str(room_id)
    target.mkdir(parents=True, exist_ok=True)
    for part in source.iterdir():
        if part.suffix in (".m3u8", ".ts"):
            shutil.copyfile(part, target / part.name)
    return default_storage.url(f"replays/{room_id}/index.m3u8")
