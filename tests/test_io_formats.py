"""Issue 29, case 5: every format's size is read from its header and checked before decoding, and colour,
alpha and 16-bit files stay within the memory bound of a gray decode plus the decoded array."""

import io
import struct
import subprocess
import sys
import tracemalloc

import cv2
import numpy as np
import pytest
from PIL import Image

from hardmatch.core.errors import ImageError
from hardmatch.core.image_header import read_header
from hardmatch.core.io import load_gray, load_working, to_gray_uint8

from .conftest import synthetic_texture

#: The size a crafted header declares: 900 Mpx, far over the 250 Mpx limit; WebP (VP8L caps a side at 16384): 268 Mpx.
HUGE = (30000, 30000)
HUGE_WEBP = (16384, 16384)
SMALL = synthetic_texture(37, 53)


def _pillow_bytes(fmt: str, image: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, fmt, **options)
    return buffer.getvalue()


def _tiff(width, height):
    data = bytearray(_pillow_bytes("TIFF", SMALL))
    assert data[:4] == b"II*\x00"
    ifd = struct.unpack_from("<I", data, 4)[0]
    for k in range(struct.unpack_from("<H", data, ifd)[0]):
        entry = ifd + 2 + 12 * k
        tag, kind = struct.unpack_from("<HH", data, entry)
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG, value in place
            struct.pack_into("<H" if kind == 3 else "<I", data, entry + 8, width if tag == 256 else height)
    return bytes(data)


def _webp(width, height):
    data = bytearray(_pillow_bytes("WEBP", SMALL, lossless=True))
    assert data[12:16] == b"VP8L" and data[20] == 0x2F
    bits = struct.unpack_from("<I", data, 21)[0] & ~((1 << 28) - 1)
    struct.pack_into("<I", data, 21, bits | (width - 1) | ((height - 1) << 14))
    return bytes(data)


def _jp2(width, height):
    data = bytearray(cv2.imencode(".jp2", SMALL)[1].tobytes())
    at = data.index(b"ihdr") + 4
    struct.pack_into(">II", data, at, height, width)
    return bytes(data)


def _encoded(ext, image=SMALL):
    return cv2.imencode(ext, image)[1].tobytes()


def _patched(ext, offset, fmt):
    def make(width, height):
        data = bytearray(_encoded(ext))
        struct.pack_into(fmt, data, offset, width, height)
        return bytes(data)
    return make


def _text(header: str, payload: bytes = b"\x00" * 64):
    return lambda width, height: header.format(w=width, h=height).encode() + payload


#: Format -> a function (width, height) -> file bytes declaring that size (the pixels after it are the small image's
#: or filler: nothing is decoded when the header is over the limit).
MAKERS = {
    "tif": _tiff,
    "webp": _webp,
    "jp2": _jp2,
    "bmp": _patched(".bmp", 18, "<ii"),
    "sr": _patched(".sr", 4, ">II"),
    "gif": lambda w, h: _pillow_bytes("GIF", SMALL)[:6] + struct.pack("<HH", w, h) + _pillow_bytes("GIF", SMALL)[10:],
    "pgm": _text("P5\n{w} {h}\n255\n"),
    "ppm": _text("P6\n{w} {h}\n255\n"),
    "pam": _text("P7\nWIDTH {w}\nHEIGHT {h}\nDEPTH 1\nMAXVAL 255\nTUPLTYPE GRAYSCALE\nENDHDR\n"),
    "pfm": _text("Pf\n{w} {h}\n-1.0\n"),
    "hdr": _text("#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y {h} +X {w}\n"),
}


@pytest.fixture
def imdecode_calls(monkeypatch):
    """The flags of every cv2.imdecode call."""
    calls, real = [], cv2.imdecode

    def spy(buf, flags):
        calls.append(flags)
        return real(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", spy)
    return calls


@pytest.mark.parametrize("ext", sorted(MAKERS))
def test_oversized_header_is_refused_before_any_decoding(tmp_path, ext, imdecode_calls):
    path = tmp_path / f"huge.{ext}"
    size = HUGE_WEBP if ext == "webp" else HUGE
    path.write_bytes(MAKERS[ext](*size))
    assert read_header(io.BytesIO(path.read_bytes())).size == size
    message = rf"{size[0]}x{size[1]} \({size[0] * size[1] / 1e6:.0f} Mpx\), more than hardmatch handles"
    for load in (lambda: load_gray(path), lambda: load_working(path, 2400)):
        with pytest.raises(ImageError, match=message) as info:
            load()
        assert "\n" not in str(info.value)
    assert imdecode_calls == []  # refused from the header alone


@pytest.mark.parametrize("ext", [".tif", ".webp", ".jp2", ".bmp", ".sr", ".pgm", ".pfm", ".hdr", ".png", ".jpg"])
def test_header_size_is_the_decoded_size(ext):
    image = SMALL.astype(np.float32) / 255 if ext in (".pfm", ".hdr") else SMALL
    data = _encoded(ext, image)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert read_header(io.BytesIO(data)).size == (decoded.shape[1], decoded.shape[0]) == (53, 37)


def test_pam_and_colour_pfm_headers_pillow_cannot_read():
    colour = cv2.cvtColor(SMALL, cv2.COLOR_GRAY2BGR)
    for data in (_encoded(".pam", colour), _encoded(".pfm", colour.astype(np.float32) / 255)):
        assert read_header(io.BytesIO(data)).size == (53, 37)


def test_cli_refuses_a_huge_tiff_in_one_line_with_exit_3(tmp_path):
    huge = tmp_path / "huge.tif"
    huge.write_bytes(_tiff(*HUGE))
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), synthetic_texture(120, 160))
    proc = subprocess.run([sys.executable, "-m", "hardmatch.cli", "pair", str(small), str(huge)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [(f"hardmatch: error: {huge}: image is 30000x30000 (900 Mpx), more than hardmatch handles "
                      f"(250 Mpx); downscale it first")]


# ---- memory: colour, alpha and 16-bit ---------------------------------------------------------------------------

def _colour_texture(height, width):
    """A BGR uint8 (height, width, 3) texture whose channels differ."""
    return np.dstack([synthetic_texture(height, width, seed) for seed in (1, 2, 3)])


def _traced_peak(function):
    """(result, peak bytes numpy and Python allocated while ``function`` ran)."""
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_alpha_and_16bit_arrays_convert_in_strips_without_full_size_copies():
    height, width = 1500, 2000
    pixels = height * width
    bgra = np.dstack([_colour_texture(height, width), synthetic_texture(height, width, 4)])
    gray, peak = _traced_peak(lambda: to_gray_uint8(bgra))
    assert peak < pixels + 12_000_000, peak  # the output and one strip's float copies; before: 13 bytes per pixel
    alpha = bgra[:, :, 3:4].astype(np.float32) / 255
    expected = cv2.cvtColor((bgra[:, :, :3].astype(np.float32) * alpha).round().astype(np.uint8), cv2.COLOR_BGR2GRAY)
    assert np.array_equal(gray, expected)  # the same pixels as one whole-image conversion, strip seams included
    wide = bgra[:, :, :3].astype(np.uint16) * 257
    gray16, peak = _traced_peak(lambda: to_gray_uint8(wide))
    assert peak < pixels + 8_000_000, peak
    assert np.array_equal(gray16, cv2.cvtColor(bgra[:, :, :3], cv2.COLOR_BGR2GRAY))
    floats = bgra[:, :, :3].astype(np.float32) / 255
    assert np.abs(to_gray_uint8(floats).astype(int) - cv2.cvtColor(bgra[:, :, :3], cv2.COLOR_BGR2GRAY)).max() <= 1


@pytest.mark.parametrize("kind, bytes_per_pixel", [("rgb", 0), ("rgb16", 0), ("rgba", 4), ("gray16", 2)])
def test_downscaled_files_decode_within_the_bound(tmp_path, kind, bytes_per_pixel, imdecode_calls):
    """Peak of load_working on a downscaled file: the file's bytes, the decoded array (0 extra bytes per pixel
    when the codec decodes colour straight to gray) and the 1-byte gray image, plus a few MB."""
    height, width = 1500, 2000
    colour = _colour_texture(height, width)
    image = {"rgb": colour, "rgb16": colour.astype(np.uint16) * 257,
             "rgba": np.dstack([colour, synthetic_texture(height, width, 4)]),
             "gray16": colour[:, :, 0].astype(np.uint16) * 257}[kind]
    path = tmp_path / f"{kind}.png"
    assert cv2.imwrite(str(path), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    work, peak = _traced_peak(lambda: load_working(path, 1000))
    bound = path.stat().st_size + (bytes_per_pixel + 1) * height * width + 6_000_000
    assert peak < bound, (peak, bound)
    assert work.gray.shape == (750, 1000) and work.original_shape == (height, width)
    straight = bytes_per_pixel == 0
    assert (imdecode_calls[0] & ~cv2.IMREAD_IGNORE_ORIENTATION == cv2.IMREAD_GRAYSCALE) == straight
    # the same working image as the array path (within a gray level: the codec's own colour-to-gray rounding)
    reference = load_working(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), 1000).gray
    assert np.abs(work.gray.astype(int) - reference).max() <= 1


def test_not_downscaled_colour_keeps_its_exact_pixels(tmp_path, imdecode_calls):
    colour = _colour_texture(300, 400)
    path = tmp_path / "c.png"
    cv2.imwrite(str(path), colour)
    assert np.array_equal(load_gray(path), cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))
    assert imdecode_calls == [cv2.IMREAD_UNCHANGED]  # as before: a regression table's images give the same pixels
