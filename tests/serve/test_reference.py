"""The `reference` field in-process: what is taken from the form, how the photo is decoded, and
that whatever bytes arrive are pixels or a one-line 400 naming the field (seeded fuzz)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

pytest.importorskip("starlette")
from starlette.datastructures import UploadFile  # noqa: E402

from imagemaker import natural_like_image  # noqa: E402
from retint.runtime.guides.palette import REFERENCE_SIDE  # noqa: E402
from retint.serve.reference import decode_reference, reference_upload  # noqa: E402
from retint.serve.rejected import Rejected  # noqa: E402
from servers import encoded  # noqa: E402

MEGABYTE = 1024 * 1024


def refusal(data: bytes, max_pixels: int = 50_000_000) -> str:
    with pytest.raises(Rejected) as raised:
        decode_reference(data, max_pixels)
    assert raised.value.status == 400
    message = raised.value.message
    assert message.startswith("reference: ") and "\n" not in message and len(message) < 300, message
    return message


def test_a_colour_photo_is_decoded_as_displayed():
    photo = natural_like_image(40, 60, seed=2)
    assert np.array_equal(decode_reference(encoded(photo, "PNG"), 10_000), photo)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    turned = encoded(photo, quality=95, exif=exif.tobytes())
    shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(turned))).convert("RGB"))
    decoded = decode_reference(turned, 10_000)
    assert decoded.shape == (60, 40, 3) and np.array_equal(decoded, shown)


def test_a_large_jpeg_is_decoded_at_a_reduced_scale_no_smaller_than_the_palettes_side():
    decoded = decode_reference(encoded(natural_like_image(1000, 1500, seed=3), quality=90), 50_000_000)
    assert REFERENCE_SIDE <= min(decoded.shape[:2]) and decoded.shape[0] < 1000
    assert decoded.shape[1] * 1000 == decoded.shape[0] * 1500  # the same shape, scaled


def saved(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG" if image.mode == "CMYK" else "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("image", [
    Image.fromarray(natural_like_image(30, 40, seed=4)).convert("P"),
    Image.fromarray(np.dstack([natural_like_image(30, 40, seed=4), np.full((30, 40), 128, np.uint8)]), "RGBA"),
    Image.fromarray(natural_like_image(30, 40, seed=4)).convert("CMYK"),
], ids=["palette", "alpha", "cmyk"])
def test_every_colour_mode_becomes_uint8_rgb(image):
    decoded = decode_reference(saved(image), 10_000)
    assert decoded.dtype == np.uint8 and decoded.shape == (30, 40, 3)


@pytest.mark.parametrize("image", [
    Image.fromarray(natural_like_image(30, 40, seed=4)[..., 0], "L"),
    Image.fromarray(np.dstack([natural_like_image(30, 40, seed=4)[..., :1]] * 2), "LA"),
    Image.fromarray(np.full((30, 40), 40000, np.uint16)),
], ids=["grey", "grey-alpha", "16-bit"])
def test_a_black_and_white_reference_is_a_400(image):
    assert "a black-and-white or toned photo" in refusal(saved(image), 10_000)


@pytest.mark.parametrize("data, max_pixels, words", [
    (b"", 10_000, "empty file (0 bytes)"),
    (b"just some words\n", 10_000, "not an image"),
    (encoded(natural_like_image(64, 64, seed=1))[:300], 10_000, "corrupt"),
    (encoded(natural_like_image(100, 120, seed=1), "PNG"), 10_000, "100 is 0.012 MP, over the server's limit"),
    (encoded(natural_like_image(20, 20, seed=1), "ICO"), 10_000, "unsupported format ICO"),
])
def test_what_cannot_serve_is_a_400_naming_the_field(data, max_pixels, words):
    assert words in refusal(data, max_pixels)


def test_mutated_files_are_pixels_or_a_one_line_400():
    """Seeded and bounded: bytes of valid PNG and JPEG references, overwritten, cut and repeated."""
    rng = np.random.default_rng(33)
    valid = [encoded(natural_like_image(48, 64, seed=5), "PNG"), encoded(natural_like_image(48, 64, seed=6))]
    decoded = refused = 0
    for case in range(80):
        data = bytearray(valid[case % 2])
        for _ in range(int(rng.integers(1, 8))):
            position = int(rng.integers(0, len(data)))
            action = rng.integers(0, 3)
            if action == 0:
                data[position] = int(rng.integers(0, 256))
            elif action == 1:
                del data[position:position + int(rng.integers(1, 64))]
            else:
                data[position:position] = data[max(0, position - 16):position]
        try:
            pixels = decode_reference(bytes(data), 100_000)
        except Rejected as error:
            assert error.status == 400 and error.message.startswith("reference: ") and "\n" not in error.message
            refused += 1
        else:
            assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
            decoded += 1
    assert decoded and refused


def upload(data: bytes, filename: str = "palette.png") -> UploadFile:
    return UploadFile(file=io.BytesIO(data), size=len(data), filename=filename)


def test_the_field_is_a_file_within_the_upload_limit_or_nothing():
    assert reference_upload({}, MEGABYTE) is None
    assert reference_upload({"reference": "  "}, MEGABYTE) is None
    # What a browser's form sends for a file input left empty: no name, no bytes.
    assert reference_upload({"reference": upload(b"", "")}, MEGABYTE) is None
    chosen = upload(b"bytes of a photo")
    assert reference_upload({"reference": chosen}, MEGABYTE) is chosen.file
    with pytest.raises(Rejected) as raised:
        reference_upload({"reference": "palette.png"}, MEGABYTE)
    assert raised.value.status == 400 and raised.value.message.startswith("reference: ")
    with pytest.raises(Rejected) as raised:
        reference_upload({"reference": upload(bytes(MEGABYTE + 1))}, MEGABYTE)
    assert (raised.value.status, raised.value.message) == (413, "reference: upload over the server's limit of 1 MB")
    # An empty file with a name was chosen: the decode says it is empty.
    assert reference_upload({"reference": upload(b"", "empty.png")}, MEGABYTE) is not None
