"""Images for user messages: from a file, from bytes, or from an http(s) or ``data:`` URL.

An :class:`~pedrollm.types.Image` holds one URL. Bytes and files become a ``data:`` URL
(base64) whose type is read from the bytes themselves (PNG, JPEG, GIF, WEBP), so a
wrong file extension cannot mislabel them; http(s) URLs are sent as given and fetched
by the server. Every problem is a :class:`~pedrollm.errors.RequestValidationError`
naming the ``image`` and what is wrong, raised before anything is sent.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path

from .errors import RequestValidationError
from .types import Image

#: The largest image file or byte string accepted, in bytes (``max_bytes`` changes it).
#: The image travels base64-encoded (a third larger) inside one JSON body the server
#: reads whole, and vision encoders scale images down to a megapixel or two, so a larger
#: file is almost always a mistake (a video, a raw scan) that is cheaper to refuse here.
MAX_IMAGE_BYTES = 20 * 1024 * 1024

_DATA_URL = re.compile(r"^data:(image/[A-Za-z0-9.+-]+);base64,(.*)$", re.DOTALL)


def sniff_mime_type(data: bytes) -> str | None:
    """Return the image type the bytes start with (PNG, JPEG, GIF, WEBP), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def _check_size(size: int, what: str, max_bytes: int) -> None:
    if size > max_bytes:
        raise RequestValidationError(
            "image", f"{what} is {size} bytes, over the limit of {max_bytes} bytes "
                     "(pass max_bytes to allow more, or send a smaller image)")


def image_from_bytes(data: bytes, mime_type: str | None = None, *,
                     max_bytes: int = MAX_IMAGE_BYTES) -> Image:
    """An image from its bytes; the type is read from them unless ``mime_type`` is given."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise RequestValidationError("image", f"expected bytes, got {type(data).__name__}")
    return _encoded(bytes(data), mime_type, max_bytes, "the image")


def _encoded(data: bytes, mime_type: str | None, max_bytes: int, what: str) -> Image:
    """The data URL of checked bytes; ``what`` names them in errors (a path, or "the image")."""
    _check_size(len(data), what, max_bytes)
    if not data:
        raise RequestValidationError("image", f"{what} is empty (0 bytes)")
    if mime_type is None:
        mime_type = sniff_mime_type(data)
        if mime_type is None:
            raise RequestValidationError(
                "image", f"{what} is in an unknown format (first bytes {data[:8].hex(' ')}): "
                         "PNG, JPEG, GIF and WEBP are recognised; pass mime_type for another")
    elif not re.fullmatch(r"image/[A-Za-z0-9.+-]+", mime_type):
        raise RequestValidationError(
            "image", f"mime_type must look like 'image/png', got {mime_type!r}")
    return Image(url=f"data:{mime_type};base64,{base64.b64encode(data).decode('ascii')}")


def image_from_path(path: str | os.PathLike[str], mime_type: str | None = None, *,
                    max_bytes: int = MAX_IMAGE_BYTES) -> Image:
    """An image read from a file, refused before reading when it is over ``max_bytes``."""
    where = Path(path)
    try:
        size = where.stat().st_size
    except OSError as exc:
        raise RequestValidationError("image", f"cannot read {str(where)!r}: "
                                              f"{exc.strerror or exc}") from None
    _check_size(size, repr(str(where)), max_bytes)
    try:
        with where.open("rb") as handle:
            # One byte past the limit: a file that grew since stat() is still caught.
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise RequestValidationError("image", f"cannot read {str(where)!r}: "
                                              f"{exc.strerror or exc}") from None
    return _encoded(data, mime_type, max_bytes, repr(str(where)))


def image_from_url(url: str) -> Image:
    """An image at an http(s) URL (the server fetches it) or in a base64 ``data:image/`` URL."""
    check_image_url(url)
    return Image(url=url)


def image(source: str | os.PathLike[str] | bytes, mime_type: str | None = None, *,
          max_bytes: int = MAX_IMAGE_BYTES) -> Image:
    """An image from bytes, an http(s) or ``data:`` URL, or else a file path."""
    if isinstance(source, bytes | bytearray | memoryview):
        return image_from_bytes(bytes(source), mime_type, max_bytes=max_bytes)
    if isinstance(source, str) and source.startswith(("http://", "https://", "data:")):
        return image_from_url(source)
    if isinstance(source, str | os.PathLike):
        return image_from_path(source, mime_type, max_bytes=max_bytes)
    raise RequestValidationError(
        "image", f"expected a path, bytes or a URL, got {type(source).__name__}")


def check_image_url(url: object, field: str = "image") -> None:
    """Refuse what is neither an http(s) URL nor a base64 ``data:image/...`` URL."""
    if not isinstance(url, str):
        raise RequestValidationError(field, f"url must be a string, got {type(url).__name__}")
    if url.startswith(("http://", "https://")):
        host = url.split("://", 1)[1]
        if not host or host.startswith("/") or any(c.isspace() for c in url):
            raise RequestValidationError(field, f"{url[:80]!r} is not a valid http(s) URL")
        return
    if not url.startswith("data:"):
        raise RequestValidationError(
            field, f"url must be http(s):// or data:image/...;base64,..., got {url[:40]!r}")
    found = _DATA_URL.match(url)
    if found is None:
        raise RequestValidationError(
            field, "a data URL must be data:image/<type>;base64,<data>, got "
                   f"{url[:40]!r}")
    try:
        base64.b64decode(found.group(2), validate=True)
    except (binascii.Error, ValueError):
        raise RequestValidationError(field, "the data URL's base64 data is not valid base64"
                                     ) from None
