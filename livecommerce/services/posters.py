"""Invite posters: a PNG with cover, title, time, streamer, inviter and the invite QR."""

from __future__ import annotations

import io
import unicodedata
from functools import lru_cache
from zoneinfo import ZoneInfo

import qrcode
from django.conf import settings
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 750, 1200
ACCENT = (233, 30, 99)


@lru_cache(maxsize=8)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    path = settings.POSTER_FONT
    if bold:
        path = path.replace("Regular", "Bold")
    # index 0 of the Noto CJK collection is the Simplified Chinese face (SC comes first
    # in Debian's NotoSansCJK-*.ttc); never fall back to a Latin font: that draws tofu.
    return ImageFont.truetype(path, size=size, index=_sc_index(path))


@lru_cache(maxsize=4)
def _sc_index(path: str) -> int:
    for index in range(10):
        try:
            font = ImageFont.truetype(path, size=12, index=index)
        except OSError:
            break
        if font.getname()[0].endswith(" SC"):
            return index
    return 0


def _printable(text: str) -> str:
    """User text as a poster can draw it: control, format, surrogate, private-use and
    unassigned characters dropped (a line break or U+001C makes libraqm's layout fail)."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] != "C")


def _wrap(draw: ImageDraw.ImageDraw, text: str, font, width: int, lines: int) -> list[str]:
    out, line = [], ""
    for ch in text:
        if draw.textlength(line + ch, font=font) > width:
            out.append(line)
            line = ch
            if len(out) == lines:
                break
        else:
            line += ch
    if len(out) < lines and line:
        out.append(line)
    if len(out) == lines and "".join(out) != text:
        out[-1] = out[-1][:-1] + "…"
    return out


def render_poster(
    *, room, inviter_name: str, link: str, title: str = "", follow: bool = False
) -> bytes:
    """``link`` is what the QR encodes; ``follow`` when it is an official-account QR."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 245, 247))
    draw = ImageDraw.Draw(image)
    cover_box = (40, 40, WIDTH - 40, 460)
    if room.cover:
        try:
            with room.cover.open("rb") as fh:
                cover = Image.open(fh).convert("RGB")
                cover = _cover_fit(cover, cover_box[2] - cover_box[0], cover_box[3] - cover_box[1])
                image.paste(cover, cover_box[:2])
        except (OSError, ValueError):
            draw.rectangle(cover_box, fill=ACCENT)
    else:
        draw.rectangle(cover_box, fill=ACCENT)
        draw.text((80, 200), "LIVE 直播", font=_font(72, bold=True), fill="white")
    y = 490
    for line in _wrap(draw, _printable(title or room.title), _font(44, bold=True), WIDTH - 80, 2):
        draw.text((40, y), line, font=_font(44, bold=True), fill=(30, 30, 30))
        y += 58
    start = room.scheduled_start.astimezone(ZoneInfo("Asia/Shanghai"))
    when = f"开播时间：{start:%m月%d日 %H:%M}"
    draw.text((40, y + 10), when, font=_font(30), fill=(90, 90, 90))
    draw.text(
        (40, y + 56), f"主播：{_printable(room.streamer.name)}", font=_font(30), fill=(90, 90, 90)
    )
    name = _printable(inviter_name)[:16] or "好友"
    draw.text((40, HEIGHT - 300), f"{name} 邀请你", font=_font(36, bold=True), fill=ACCENT)
    draw.text((40, HEIGHT - 245), "一起看直播、抢优惠券", font=_font(30), fill=(60, 60, 60))
    hint = "长按识别二维码关注公众号，进入直播间" if follow else "长按识别二维码进入直播间"
    draw.text((40, HEIGHT - 120), hint, font=_font(24), fill=(120, 120, 120))
    qr = qrcode.QRCode(border=1, box_size=8)
    qr.add_data(link)
    qr.make(fit=True)
    qr_img = qr.make_image(fill_color="black", back_color="white").convert("RGB")
    qr_img = qr_img.resize((260, 260), Image.Resampling.NEAREST)
    image.paste(qr_img, (WIDTH - 300, HEIGHT - 320))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _cover_fit(img: Image.Image, width: int, height: int) -> Image.Image:
    ratio = max(width / img.width, height / img.height)
    img = img.resize((int(img.width * ratio) + 1, int(img.height * ratio) + 1))
    left = (img.width - width) // 2
    top = (img.height - height) // 2
    return img.crop((left, top, left + width, top + height))
