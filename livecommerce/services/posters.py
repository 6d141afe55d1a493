"""Invite posters: a PNG with cover, title, time, streamer, inviter and the invite QR."""

from __future__ import annotations

import io
import logging
import unicodedata
from functools import lru_cache
from zoneinfo import ZoneInfo

import qrcode
from django.conf import settings
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 750, 1200
ACCENT = (233, 30, 99)

log = logging.getLogger(__name__)


def poster_font_path() -> str:
    """POSTER_FONT, else Noto Sans CJK as the manimgx-fonts-cjk wheel ships it (OFL 1.1)."""
    if settings.POSTER_FONT:
        return settings.POSTER_FONT
    try:
        from importlib.resources import files

        return str(files("manimgx_fonts_cjk") / "NotoSansCJK-VF.otf.ttc")
    except ModuleNotFoundError:
        return ""


def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | None:
    """The Simplified Chinese face at ``size``, or None when no CJK font can be opened (the
    poster is then drawn without text: never a Latin fallback, which draws tofu)."""
    return _load_font(poster_font_path(), size, bold)


@lru_cache(maxsize=16)
def _load_font(path: str, size: int, bold: bool) -> ImageFont.FreeTypeFont | None:
    try:
        font = ImageFont.truetype(path, size=size, index=_sc_index(path))
    except (OSError, ValueError):
        _font_missing(path)
        return None
    try:
        # The packaged font is variable: one file, every weight.
        font.set_variation_by_name("Bold" if bold else "Regular")
    except (OSError, ValueError):
        # A static collection (Debian's NotoSansCJK-Regular.ttc) keeps Bold in a sibling.
        if bold and "Regular" in path:
            try:
                return ImageFont.truetype(
                    path.replace("Regular", "Bold"), size=size, index=_sc_index(path)
                )
            except OSError:
                pass
    return font


@lru_cache(maxsize=4)
def _font_missing(path: str) -> None:
    log.warning(
        "poster font %r cannot be opened: posters are drawn without text. Install the "
        "requirements (make venv installs manimgx-fonts-cjk) or set POSTER_FONT to a CJK font.",
        path,
    )


@lru_cache(maxsize=4)
def _sc_index(path: str) -> int:
    # Noto CJK collections hold JP, KR, SC, TC, HK faces: the SC one draws Chinese as
    # readers in the mainland expect.
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


def poster_render(
    *, room, inviter_name: str, link: str, title: str = "", follow: bool = False, clip: bool = False
) -> bytes:
    """``link`` is what the QR encodes; ``follow`` when it is an official-account QR; ``clip``
    for a product explanation's replay (never announced as a live broadcast)."""
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
    if _font(30) is not None:
        _draw_text(
            draw, room=room, inviter_name=inviter_name, title=title, follow=follow, clip=clip
        )
    qr = qrcode.QRCode(border=1, box_size=8)
    qr.add_data(link)
    qr.make(fit=True)
    qr_img = qr.make_image(fill_color="black", back_color="white").convert("RGB")
    qr_img = qr_img.resize((260, 260), Image.Resampling.NEAREST)
    image.paste(qr_img, (WIDTH - 300, HEIGHT - 320))
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _draw_text(
    draw: ImageDraw.ImageDraw, *, room, inviter_name: str, title: str, follow: bool, clip: bool
):
    if not room.cover:
        draw.text(
            (80, 200), "讲解回放" if clip else "LIVE 直播", font=_font(72, bold=True), fill="white"
        )
    y = 490
    for line in _wrap(draw, _printable(title or room.title), _font(44, bold=True), WIDTH - 80, 2):
        draw.text((40, y), line, font=_font(44, bold=True), fill=(30, 30, 30))
        y += 58
    start = room.scheduled_start.astimezone(ZoneInfo("Asia/Shanghai"))
    when = f"直播于：{start:%m月%d日 %H:%M}" if clip else f"开播时间：{start:%m月%d日 %H:%M}"
    draw.text((40, y + 10), when, font=_font(30), fill=(90, 90, 90))
    draw.text(
        (40, y + 56), f"主播：{_printable(room.streamer.name)}", font=_font(30), fill=(90, 90, 90)
    )
    name = _printable(inviter_name)[:16] or "好友"
    draw.text((40, HEIGHT - 300), f"{name} 邀请你", font=_font(36, bold=True), fill=ACCENT)
    tagline = "一起看商品讲解回放" if clip else "一起看直播、抢优惠券"
    draw.text((40, HEIGHT - 245), tagline, font=_font(30), fill=(60, 60, 60))
    if clip:
        hint = "长按识别二维码观看讲解回放"
    else:
        hint = "长按识别二维码关注公众号，进入直播间" if follow else "长按识别二维码进入直播间"
    draw.text((40, HEIGHT - 120), hint, font=_font(24), fill=(120, 120, 120))


def _cover_fit(img: Image.Image, width: int, height: int) -> Image.Image:
    ratio = max(width / img.width, height / img.height)
    img = img.resize((int(img.width * ratio) + 1, int(img.height * ratio) + 1))
    left = (img.width - width) // 2
    top = (img.height - height) // 2
    return img.crop((left, top, left + width, top + height))
