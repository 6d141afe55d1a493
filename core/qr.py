"""QR code images (the follow QRs of official accounts, staff binding codes)."""

from __future__ import annotations

import io

import qrcode


def qr_png(content: str, *, box_size: int = 8) -> bytes:
    """A PNG of a QR code for ``content`` (e.g. the ticket URL WeChat returned)."""
    image = qrcode.make(content, box_size=box_size, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
