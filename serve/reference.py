"""The optional `reference` field: a photo whose palette guides the colours, read from the form
and decoded to RGB pixels.

The reference is held to the main photo's rules (`retint.batch.decode`):
the same formats, the pixel limit judged from the header before any pixel
is decoded, EXIF orientation applied, the first page of a multi-page file.
Its pixels are decoded as RGB whatever their mode; a black-and-white or
toned reference is refused, as colorize-batch refuses one
(`batch.decode.palette_refusal`). A JPEG is decoded at the smallest DCT scale that still gives
REFERENCE_SIDE a side: the palette is taken from a thumbnail of that side
(`runtime.guides.palette`), so a 50 MP reference costs no 150 MB decode.
Anything wrong with it is a 400 naming the field `reference`, so that a
client can tell it from a fault of the photo being coloured; a file over
the upload limit is the photo's 413, in words that name the field.
"""

from __future__ import annotations

from typing import Any, BinaryIO, Mapping

import numpy as np
from starlette.datastructures import UploadFile

from retint.batch.decode import DecodeFailure, ImageTooLarge, decode_palette_photo, palette_refusal
from retint.runtime.guides.palette import REFERENCE_SIDE
from retint.serve.rejected import Rejected, over_upload_limit

FIELD = "reference"


def refused(reason: str) -> Rejected:
    """A 400 whose one line names the reference field, then `reason`."""
    return Rejected(400, f"{FIELD}: {reason}")


def reference_upload(form: Mapping[str, Any], max_upload_bytes: int) -> BinaryIO | None:
    """The reference's file, unread (it is decoded on the pool); None when the field is absent or
    blank, or is a file input sent with nothing chosen (no file name, no bytes: what a browser's
    form sends); a 400 when it is text, a 413 when it is over the upload limit."""
    value = form.get(FIELD)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, UploadFile):
        raise refused("expected a file (a colour photo), not a text field")
    if not value.filename and not value.size:
        return None
    if value.size is not None and value.size > max_upload_bytes:
        raise Rejected(413, f"{FIELD}: {over_upload_limit(max_upload_bytes)}")
    return value.file


def decode_reference(data: bytes, max_pixels: int) -> np.ndarray:
    """The reference photo's pixels, uint8 RGB [H,W,3] as displayed (`batch.decode.decode_palette_photo`,
    as colorize-batch --reference reads them); a 400 `Rejected` when the upload is empty, not an
    image this server reads, or over `max_pixels`."""
    try:
        rgb = decode_palette_photo(data, max_pixels, REFERENCE_SIDE)
    except ImageTooLarge as error:
        raise refused(str(error).replace("--max-pixels", "the server's limit of")) from None
    except DecodeFailure as error:
        raise refused(str(error).replace("this tool", "this server")) from None
    reason = palette_refusal(rgb)
    if reason:
        raise refused(reason)
    return rgb
