"""Opening photos safely and fast, for training, indexing and queries alike.

JPEGs are reduced inside the decoder (``draft``) to the smallest scale that still covers the model's
input, so a 12 MP photo is never decoded at full size. EXIF orientation is honoured. Pillow's
decompression-bomb limit stays on. Every failure is an :class:`ImageError` with a reason a person can read.
"""

from __future__ import annotations

import errno
import io
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import BadFileError

ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}

try:  # HEIC/AVIF through pillow-heif (installed where it has wheels; the heif extra elsewhere)
    import pillow_heif  # type: ignore

    pillow_heif.register_heif_opener()
    IMAGE_SUFFIXES |= {".heic", ".heif"}
    if hasattr(pillow_heif, "register_avif_opener"):
        pillow_heif.register_avif_opener()
        IMAGE_SUFFIXES.add(".avif")
except ImportError:  # pragma: no cover - depends on the installed extras
    pass
if ".avif" in Image.registered_extensions():
    IMAGE_SUFFIXES.add(".avif")


class ImageError(BadFileError):
    """A file that cannot be used as a photo. ``reason`` is short and readable."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(reason, path)
        self.reason = reason


# Photo formats we know but cannot read without an optional extra: passed over with this reason.
_NEEDS_EXTRA = {
    ".heic": "a HEIC photo, which needs the heif extra: pip install 'fph-desktop[heif]'",
    ".heif": "a HEIF photo, which needs the heif extra: pip install 'fph-desktop[heif]'",
    ".avif": "an AVIF photo, which needs the heif extra: pip install 'fph-desktop[heif]'",
}

# Largest file read into memory at once (hash + decode from the same bytes); larger ones are streamed.
MAX_IN_MEMORY_BYTES = 64 * 1024 * 1024


def is_image_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def unsupported_reason(name: str | Path) -> str | None:
    """Why a photo-like file with this name cannot be read here, or None."""
    suffix = Path(name).suffix.lower()
    return None if suffix in IMAGE_SUFFIXES else _NEEDS_EXTRA.get(suffix)


def open_image(path: str | Path, min_side: int | None = None, data: bytes | None = None) -> Image.Image:
    """Decode ``path`` to an upright RGB image whose shorter side is still at least ``min_side``
    (when the file is that large); transparent areas become white.

    ``data``, when given, is the file's content already read by the caller (the indexer reads each
    file once to hash it and decodes those same bytes); ``path`` then only names it in errors."""
    path = Path(path)
    try:
        if data is None:
            mode = path.stat().st_mode  # raises FileNotFoundError for a missing file or a dangling link
            if stat.S_ISDIR(mode):
                raise ImageError(path, "is a folder, not a photo")
            if not stat.S_ISREG(mode):
                raise ImageError(path, "not a regular file (a pipe, device or socket)")
        if (len(data) if data is not None else path.stat().st_size) == 0:
            raise ImageError(path, "empty file (0 bytes)")
        try:
            return _decode(path, data, min_side, large_jpeg=False)
        except Image.DecompressionBombWarning:
            if not min_side:
                raise
            # Over Pillow's 89 MP limit but under its hard 179 MP one (108 MP phone photos): a JPEG is
            # decoded at 1/2..1/8 scale by the decoder itself, so it never takes its full size in memory.
            return _decode(path, data, min_side, large_jpeg=True)
    except ImageError:
        raise
    except FileNotFoundError:
        reason = "a link to a file that does not exist" if path.is_symlink() else "no such file"
        raise ImageError(path, reason if data is None else "file vanished before it could be read") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            path, f"image too large (over {(Image.MAX_IMAGE_PIXELS or 0) // 1_000_000} million pixels); skipped for safety"
        ) from None
    except UnidentifiedImageError:
        raise ImageError(path, "not an image, or a format fph-desktop cannot read") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, OSError) and exc.errno == errno.ELOOP:
            raise ImageError(path, "a link that leads back to itself (a link loop)") from None
        raise ImageError(path, f"truncated or corrupt image ({exc})") from None


def _decode(path: Path, data: bytes | None, min_side: int | None, large_jpeg: bool) -> Image.Image:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore" if large_jpeg else "error", Image.DecompressionBombWarning)
        with Image.open(path if data is None else io.BytesIO(data)) as image:
            if large_jpeg and image.format != "JPEG":
                raise Image.DecompressionBombWarning("only JPEGs are decoded at a reduced scale")
            if min_side and image.format == "JPEG":
                # A square request keeps both sides >= min_side, whatever the EXIF rotation.
                image.draft("RGB", (min_side, min_side))
            image.load()
            image = ImageOps.exif_transpose(image)
            return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        # 16-bit (or float) greyscale: Pillow's convert("RGB") clips to 255 and turns it white.
        values = np.asarray(image, dtype=np.float64)
        if image.mode == "F":
            low, high = float(values.min()), float(values.max())
            values = (values - low) / max(high - low, 1e-12) * 255.0
        elif image.mode.startswith("I;16") or values.max() > 255:
            values = values / 257.0
        grey = Image.fromarray(np.clip(np.rint(values), 0, 255).astype(np.uint8), "L")
        return grey.convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


# -- what a photographer reads about a photo (the viewer) ----------------------------------------------
_EXIF_IFD = 0x8769
_TAGS = {"make": 0x010F, "model": 0x0110, "orientation": 0x0112, "datetime": 0x0132}
_EXIF_TAGS = {"taken": 0x9003, "exposure": 0x829A, "fnumber": 0x829D, "iso": 0x8827, "focal": 0x920A, "lens": 0xA434}


@dataclass(frozen=True)
class PhotoDetails:
    """Size and the EXIF facts a photographer looks for; ``None`` where the file does not say."""

    width: int  # as shown (EXIF rotation applied)
    height: int
    bytes: int
    format: str
    taken: str | None = None  # "4 May 2019, 07:31"
    camera: str | None = None  # "Canon EOS 7D"
    lens: str | None = None
    exposure: str | None = None  # "1/250 s · f/5.6 · ISO 400 · 300 mm"

    def size_text(self) -> str:
        megapixels = self.width * self.height / 1e6
        weight = f"{self.bytes / 1e6:.1f} MB" if self.bytes >= 1e6 else f"{max(1, round(self.bytes / 1e3))} KB"
        return f"{self.width:,} × {self.height:,} px ({megapixels:.1f} MP), {weight} {self.format}".strip()


def photo_details(path: str | Path) -> PhotoDetails:
    """Read the header only (no decoding). Raises :class:`ImageError` as :func:`open_image` does."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
            exif = image.getexif()
            sub = exif.get_ifd(_EXIF_IFD) if exif else {}
            kind = image.format or path.suffix.lstrip(".").upper()
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except PermissionError:
        raise ImageError(path, "permission denied") from None
    except UnidentifiedImageError:
        raise ImageError(path, "not an image, or a format fph-desktop cannot read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(path, f"truncated or corrupt image ({exc})") from None
    if exif.get(_TAGS["orientation"]) in (5, 6, 7, 8):  # rotated a quarter turn: shown the other way round
        width, height = height, width
    make, model = (str(exif.get(_TAGS[k]) or "").strip(" \0") for k in ("make", "model"))
    camera = model if make and model.lower().startswith(make.split()[0].lower()) else f"{make} {model}".strip()
    lens = str(sub.get(_EXIF_TAGS["lens"]) or "").strip(" \0") or None
    return PhotoDetails(
        width,
        height,
        size,
        kind,
        _taken(sub.get(_EXIF_TAGS["taken"]) or exif.get(_TAGS["datetime"])),
        camera or None,
        lens,
        _exposure(sub),
    )


def _taken(value) -> str | None:
    import datetime as _dt

    try:
        moment = _dt.datetime.strptime(str(value).strip(" \0"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    return f"{moment.day} {moment:%B %Y, %H:%M}"


def _exposure(sub) -> str | None:
    parts = []
    exposure, fnumber, iso, focal = (sub.get(_EXIF_TAGS[k]) for k in ("exposure", "fnumber", "iso", "focal"))
    try:
        if exposure:
            seconds = float(exposure)
            parts.append(f"1/{round(1 / seconds)} s" if 0 < seconds < 1 else f"{seconds:g} s")
        if fnumber:
            parts.append(f"f/{float(fnumber):g}")
        if iso:
            parts.append(f"ISO {int(iso[0] if isinstance(iso, tuple) else iso)}")
        if focal:
            parts.append(f"{float(focal):g} mm")
    except (TypeError, ValueError, ZeroDivisionError):
        pass
    return " · ".join(parts) or None
