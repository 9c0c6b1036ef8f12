"""What an image file's header says, read before any pixel is decoded: stored size, pixel layout, orientation.

:func:`read_header` gives :mod:`hardmatch.core.io` what it needs to refuse an oversized image before
decoding it and to pick the cheapest decode: the size for every format OpenCV decodes (PNG and JPEG
from their first bytes, the others through Pillow's header parsers, Radiance HDR, colour PFM and PAM,
which Pillow does not read, from their text headers), the pixel layout (Pillow's mode) and the
orientation tag in the convention of ``cv2.imread`` (EXIF orientation applied, docs/conventions.md).
Nothing here decodes pixels.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import BinaryIO

#: How many leading bytes are read for the PNG/JPEG and text-header parsers (EXIF segments come first).
HEAD_BYTES = 1 << 20

#: EXIF/TIFF Orientation tag.
ORIENTATION_TAG = 0x0112

#: Formats (Pillow's names) whose orientation tag ``cv2.imread`` applies: JPEG, PNG and WebP through
#: their EXIF (not under IMREAD_UNCHANGED or IMREAD_IGNORE_ORIENTATION, so hardmatch applies it after
#: decoding), TIFF through its own Orientation tag (OpenCV's TIFF decoder always applies it). Other
#: formats' tags (e.g. AVIF's) are ignored by OpenCV, and so here.
ORIENTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "TIFF"})

#: Of those, the ones OpenCV's decoder orients by itself whatever the flags.
DECODER_ORIENTED = frozenset({"TIFF"})

#: Pillow modes of images without colour: decoded as they are (8 or 16 bit, float).
GRAY_MODES = frozenset({"1", "L", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})


@dataclass(frozen=True)
class ImageHeader:
    """An image file's header: ``size`` (width, height) as stored, or None when no parser read it;
    ``format`` and ``mode`` as Pillow names them (None when Pillow cannot read the header);
    ``alpha`` whether it has an alpha channel or a transparent colour; ``orientation`` the tag 1..8
    that ``cv2.imread`` applies (1 for formats whose tag OpenCV ignores)."""

    size: tuple[int, int] | None = None
    format: str | None = None
    mode: str | None = None
    alpha: bool = False
    orientation: int = 1

    @property
    def transposed(self) -> bool:
        """Whether the displayed image is the stored one turned by 90 degrees (orientations 5-8)."""
        return self.orientation >= 5

    @property
    def displayed_size(self) -> tuple[int, int] | None:
        """(width, height) as displayed (``cv2.imread``'s shape), or None when unknown."""
        if self.size is None:
            return None
        return (self.size[1], self.size[0]) if self.transposed else self.size

    @property
    def left_to_loader(self) -> int:
        """The orientation the loader must apply after an IMREAD_IGNORE_ORIENTATION / IMREAD_UNCHANGED
        decode: the tag, or 1 where the decoder applies it itself (TIFF)."""
        return 1 if self.format in DECODER_ORIENTED else self.orientation

    @property
    def opaque_colour(self) -> bool:
        """Colour without alpha (known from the header): decoding straight to gray loses nothing."""
        return self.mode is not None and self.mode not in GRAY_MODES and not self.alpha


def read_header(fp: BinaryIO) -> ImageHeader:
    """The header of the image file open in ``fp`` (binary, seekable); an empty :class:`ImageHeader`
    when no parser recognises it. Reads the first :data:`HEAD_BYTES` and whatever Pillow's parser seeks."""
    head = fp.read(HEAD_BYTES)
    fp.seek(0)
    image = _pillow_image(fp)
    size = header_size(head)
    if image is None:
        return ImageHeader(size=size or _text_header_size(head))
    with image:
        fmt = image.format
        orientation = _orientation(image) if fmt in ORIENTED_FORMATS else 1
        alpha = "A" in image.mode or "a" in image.mode or "transparency" in image.info
        stored = tuple(image.size)
        if fmt in DECODER_ORIENTED and orientation >= 5:  # Pillow gives TIFF's size as displayed
            stored = stored[::-1]
        return ImageHeader(size or stored, fmt, image.mode, alpha, orientation)


def _pillow_image(fp: BinaryIO):
    """Pillow's image object for ``fp``, headers parsed and pixels not read, or None.

    What ``PIL.Image.open`` does, minus its decompression-bomb check, which raises without telling the
    size for images over twice ``PIL.Image.MAX_IMAGE_PIXELS``: hardmatch checks its own limit with the
    size in the message (and leaves Pillow's setting alone for the caller's other uses).
    """
    from PIL import Image

    Image.init()  # every format plugin registered
    prefix = fp.read(16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # plugins warn about odd but readable headers
        for fmt in list(Image.ID):
            factory, accept = Image.OPEN[fmt]
            fp.seek(0)
            try:  # any failure (plugins raise many kinds on odd bytes) means: not this format
                verdict = accept(prefix) if accept is not None else True
                if verdict and not isinstance(verdict, str):
                    return factory(fp, "")
            except Exception:
                continue
    return None


def _orientation(image) -> int:
    """The orientation tag 1..8 of a Pillow image from its header only (1 if absent or invalid)."""
    from PIL import Image

    try:
        if hasattr(image, "tag_v2"):  # TIFF: the tag of the first directory
            value = image.tag_v2.get(ORIENTATION_TAG)
        else:  # JPEG APP1, PNG eXIf, WebP EXIF chunk (PngImageFile.getexif() would decode the pixels)
            raw = image.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            value = exif.get(ORIENTATION_TAG)
        value = int(value)
    except Exception:  # a malformed EXIF block: no orientation, as OpenCV then decodes
        return 1
    return value if 1 <= value <= 8 else 1


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, WebP or JPEG header in the leading bytes ``data`` of a file, else None.

    Read here rather than by Pillow so that a PNG whose IHDR checksum Pillow rejects is still sized, and
    a WebP without Pillow's animation decoder, which validates the whole bitstream."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):  # walk the JPEG segments up to the first start-of-frame
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # segments without a length
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return int.from_bytes(data[i + 7:i + 9], "big"), int.from_bytes(data[i + 5:i + 7], "big")
        i += 2 + length
    return None


_PFM = re.compile(rb"^P[Ff]\s+(\d+)\s+(\d+)\s")
_RADIANCE = re.compile(rb"\n([-+])([XY]) (\d+) ([-+])([XY]) (\d+)\s")


def _webp_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the first chunk of a WebP file: VP8X canvas, VP8L or VP8 (lossy) frame header."""
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    return None


def _text_header_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the text header of a PAM (P7), PFM (PF/Pf) or Radiance HDR file, else None."""
    if head.startswith(b"P7"):
        lines = head[:head.find(b"ENDHDR")].splitlines()[1:]
        fields = dict(parts for parts in (line.split(None, 1) for line in lines) if len(parts) == 2)
        width, height = fields.get(b"WIDTH", b"").strip(), fields.get(b"HEIGHT", b"").strip()
        return (int(width), int(height)) if width.isdigit() and height.isdigit() else None
    if (match := _PFM.match(head)) is not None:
        return int(match[1]), int(match[2])
    if head.startswith(b"#?") and (match := _RADIANCE.search(head[:4096])) is not None:
        sizes = {match[2]: int(match[3]), match[5]: int(match[6])}
        if set(sizes) == {b"X", b"Y"}:
            return sizes[b"X"], sizes[b"Y"]
    return None


def orient(array, orientation: int):
    """The displayed image of an image ``array`` (H, W[, C]) stored under EXIF ``orientation`` 1..8:
    (H, W[, C]) for 1-4, (W, H[, C]) for 5-8, a contiguous copy unless 1."""
    import numpy as np

    if orientation == 1:
        return array
    flip_x, flip_y, transpose = _ORIENTATIONS[orientation]
    view = array[::-1 if flip_y else 1, ::-1 if flip_x else 1]
    if transpose:
        view = view.swapaxes(0, 1)
    return np.ascontiguousarray(view)


#: EXIF orientation -> (mirror stored x, mirror stored y, then swap the axes): displayed = that of stored.
_ORIENTATIONS = {1: (False, False, False), 2: (True, False, False), 3: (True, True, False), 4: (False, True, False),
                 5: (False, False, True), 6: (False, True, True), 7: (True, True, True), 8: (True, False, True)}


def mirrored_axes(orientation: int) -> tuple[bool, bool]:
    """Whether ``orientation`` mirrors the stored x and y axes (the stored last columns / rows become the
    displayed first ones)."""
    return _ORIENTATIONS[orientation][:2]
