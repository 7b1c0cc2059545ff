"""Guided colours over real HTTP: hints, temperature, a reference photo, /suggest and /uncertainty.

A real colorize-serve in a subprocess on the tiny seeded colour-model-v2 artefact (untrained: its
colours mean nothing, but every figure the server gives must equal the engine's own, called here
in-process on the same file) and on the tiny regression model, which takes hints and a reference
through the runtime's guides (runtime/guides/) and has no temperature, distribution or intervals.
"""

from __future__ import annotations

import io
import json
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from retint.benchmarks.serve_load import ServerProcess, post_image, request
from retint.runtime import load_engine
from imagemaker import grey_photo, natural_like_image
from servers import encoded, post_files

pytest.importorskip("fastapi")

HEIGHT, WIDTH = 60, 80


def fused(exported_distribution):
    return next(path for path in exported_distribution.artefacts if path.name == "tiny-v2.onnx")


@pytest.fixture(scope="module")
def v2_path(exported_distribution):
    return fused(exported_distribution)


@pytest.fixture(scope="module")
def v2_server(v2_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-v2") / "serve.log"
    with ServerProcess(log, "--engine", str(v2_path), "--backend", "onnxruntime") as running:
        yield running


@pytest.fixture(scope="module")
def v2_engine(v2_path):
    with load_engine(v2_path, backend="onnxruntime") as engine:
        yield engine


@pytest.fixture(scope="module")
def regression_path(exported):
    return exported["effnet-unet"].artefacts[0]


@pytest.fixture(scope="module")
def regression_server(regression_path, tmp_path_factory):
    log = tmp_path_factory.mktemp("serve-regression") / "serve.log"
    with ServerProcess(log, "--engine", str(regression_path), "--backend", "onnxruntime") as running:
        yield running


@pytest.fixture(scope="module")
def regression_engine(regression_path):
    with load_engine(regression_path, backend="onnxruntime") as engine:
        yield engine


@pytest.fixture(scope="module")
def grey():
    return grey_photo(HEIGHT, WIDTH, seed=5)


def png(pixels: np.ndarray) -> bytes:
    return encoded(pixels, "PNG")


def pixels_of(answer) -> np.ndarray:
    assert answer.status == 200, answer.body[:300]
    return np.asarray(Image.open(io.BytesIO(answer.body)).convert("RGB"))


def one_line_400(answer) -> str:
    assert answer.status == 400, (answer.status, answer.body[:300])
    assert answer.headers["content-type"] == "application/json"
    message = answer.json_error()
    assert message and "\n" not in message and len(message) < 300, message
    return message


HINTS = [(20.0, 15.0, 60.0, 40.0), (60.5, 45.25, -40.0, 30.0)]
HINTS_JSON = json.dumps([{"x": x, "y": y, "a": a, "b": b} for x, y, a, b in HINTS])


def test_the_spec_says_what_each_engine_can_be_guided_by(v2_server, regression_server, v2_engine):
    v2 = json.loads(request(v2_server.url + "/v1/spec").body)
    assert v2["guides"]["hints"] is True and v2["guides"]["suggest"] is True
    assert v2["guides"]["uncertainty"] is (v2_engine.spec.uncertainty_alpha is not None)
    assert v2["guides"]["temperature"] == pytest.approx(v2_engine.spec.temperature)
    assert v2["render_size"] == 64 and "limits" in v2 and "label" in v2  # the fields it always had
    regression = json.loads(request(regression_server.url + "/v1/spec").body)["guides"]
    assert (regression["hints"], regression["reference"], regression["suggest"], regression["suggest_from_reference"],
            regression["uncertainty"]) == (True, True, False, True, False)
    assert regression["temperature"] is None and regression["temperature_range"] is None


def test_hints_change_the_colours_exactly_as_the_engine_does(v2_server, v2_engine, grey):
    plain = pixels_of(post_image(v2_server.url, png(grey), "grey.png"))
    hinted = pixels_of(post_image(v2_server.url, png(grey), "grey.png", fields={"hints": HINTS_JSON}))
    assert np.array_equal(plain, v2_engine.colorize(grey)[0])
    assert np.array_equal(hinted, v2_engine.colorize(grey, hints=[HINTS])[0])
    assert np.abs(hinted.astype(int) - plain).max() > 10

    # An rgb hint is its colour's a*, b*; a temperature is the engine's.
    rgb_hints = json.dumps([{"x": 20, "y": 15, "rgb": "#c03020"}])
    from retint.runtime.guides.hints import hex_to_ab

    by_rgb = pixels_of(post_image(v2_server.url, png(grey), "grey.png", fields={"hints": rgb_hints}))
    assert np.array_equal(by_rgb, v2_engine.colorize(grey, hints=[[(20, 15, *hex_to_ab("#c03020"))]])[0])
    bolder = pixels_of(post_image(v2_server.url, png(grey), "grey.png",
                                  fields={"hints": HINTS_JSON, "temperature": "0.2"}))
    assert np.array_equal(bolder, v2_engine.colorize(grey, hints=[HINTS], temperature=0.2)[0])
    assert not np.array_equal(bolder, hinted)
    # An empty list is no hints.
    assert np.array_equal(pixels_of(post_image(v2_server.url, png(grey), "grey.png", fields={"hints": "[]"})),
                          plain)


@pytest.mark.parametrize("fields, words", [
    ({"hints": "[{\"x\": 1, \"y\": 2"}, "not JSON"),
    ({"hints": "{\"x\": 1}"}, "expected a list"),
    ({"hints": "[{\"x\": 1, \"y\": 2, \"a\": 3}]"}, "hints[0]"),
    ({"hints": "[{\"x\": 1, \"y\": 2, \"rgb\": \"red\"}]"}, "#rrggbb"),
    ({"hints": "[{\"x\": 1, \"y\": 2, \"a\": NaN, \"b\": 0}]"}, "finite"),
    ({"hints": "[{\"x\": 80, \"y\": 2, \"a\": 1, \"b\": 0}]"}, "outside the 80x60 image"),
    ({"hints": "[{\"x\": -1, \"y\": 2, \"a\": 1, \"b\": 0}]"}, "outside"),
    ({"hints": json.dumps([{"x": 1, "y": 1, "a": 0, "b": 0}] * 257)}, "more than the 256"),
    ({"hints": "[" * 5000 + "]" * 5000}, "hints"),
    ({"temperature": "hot"}, "temperature must be a number"),
    ({"temperature": "inf"}, "finite"),
    ({"temperature": "50"}, "outside"),
])
def test_a_malformed_hint_or_temperature_is_one_line_400(v2_server, grey, fields, words):
    message = one_line_400(post_image(v2_server.url, png(grey), "grey.png", fields=fields))
    assert words in message


def test_hints_sent_as_a_file_are_a_400(v2_server, grey):
    boundary = "retint-test-boundary"
    parts = [("hints", "hints.json", HINTS_JSON.encode()), ("file", "grey.png", png(grey))]
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
                    f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n"
                    for name, filename, data in parts) + f"--{boundary}--\r\n".encode()
    answer = request(v2_server.url + "/colorize", "POST", body,
                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert answer.status == 400 and answer.json_error()


def test_a_regression_model_takes_hints_as_the_engine_does_and_refuses_a_temperature(regression_server,
                                                                                   regression_engine, grey):
    from retint.runtime.refusals import temperature_refusal

    hinted = pixels_of(post_image(regression_server.url, png(grey), "grey.png", fields={"hints": HINTS_JSON}))
    assert np.array_equal(hinted, regression_engine.colorize(grey, hints=[HINTS])[0])
    message = one_line_400(post_image(regression_server.url, png(grey), "grey.png", fields={"temperature": "0.5"}))
    assert message == temperature_refusal(regression_engine.spec.model_name)
    # Without a distribution or a reference there is nothing to suggest: empty lists (the page's picker).
    answer = post_image(regression_server.url, png(grey), "grey.png", route="/suggest",
                        fields={"points": "[[1, 2], [30, 40]]"})
    assert answer.status == 200 and json.loads(answer.body) == {"suggestions": [[], []], "from": "none"}


def test_suggestions_are_the_engines_most_probable_first(v2_server, v2_engine, grey):
    answer = post_image(v2_server.url, png(grey), "grey.png", route="/suggest",
                        fields={"points": json.dumps([[10, 12], {"x": 70.5, "y": 50}]), "k": "4"})
    assert answer.status == 200, answer.body[:300]
    assert answer.headers["content-type"] == "application/json"
    suggestions = json.loads(answer.body)["suggestions"]
    assert len(suggestions) == 2
    for per_point in suggestions:
        assert 1 <= len(per_point) <= 4
        assert all(set(item) == {"a", "b", "rgb", "probability"} for item in per_point)
        probabilities = [item["probability"] for item in per_point]
        assert probabilities == sorted(probabilities, reverse=True)
        assert all(0 <= p <= 1 for p in probabilities) and sum(probabilities) <= 1.0 + 1e-3
        assert all(len(item["rgb"]) == 7 and item["rgb"].startswith("#") for item in per_point)
    direct = v2_engine.suggest(grey, [(10, 12), (70.5, 50)], 4)
    assert suggestions == [[item.as_json() for item in per_point] for per_point in direct]

    # Given hints, the suggestions are the engine's given the same hints; k defaults to 5.
    hinted = post_image(v2_server.url, png(grey), "grey.png", route="/suggest",
                        fields={"points": "[[10, 12]]", "hints": HINTS_JSON})
    direct = v2_engine.suggest(grey, [(10, 12)], hints=HINTS)
    assert json.loads(hinted.body)["suggestions"] == [[item.as_json() for item in direct[0]]]
    assert len(direct[0]) <= 5


@pytest.mark.parametrize("fields, words", [
    ({}, "'points'"),
    ({"points": "[]"}, "non-empty"),
    ({"points": "[[1]]"}, "points[0]"),
    ({"points": "[{\"x\": 1, \"z\": 2}]"}, "points[0]"),
    ({"points": "[[1, \"2\"]]"}, "y must be a finite number"),
    ({"points": "[[80, 2]]"}, "outside the 80x60 image"),
    ({"points": json.dumps([[1, 1]] * 65)}, "more than the 64"),
    ({"points": "[[1, 2]]", "k": "0"}, "k must be"),
    ({"points": "[[1, 2]]", "k": "17"}, "k must be"),
    ({"points": "[[1, 2]]", "k": "two"}, "k must be"),
    ({"points": "[[1, 2]]", "temperature": "0.5"}, "temperature"),
    ({"points": "[[1, 2]]", "hints": "[1]"}, "hints[0]"),
])
def test_a_malformed_suggest_request_is_one_line_400(v2_server, grey, fields, words):
    answer = post_image(v2_server.url, png(grey), "grey.png", route="/suggest", fields=fields)
    assert words in one_line_400(answer)


def test_the_uncertainty_map_is_a_png_of_the_images_size(calibrated_server, regression_server, v2_server,
                                                         v2_engine, grey):
    server, _ = calibrated_server
    answer = post_image(server.url, encoded(grey, quality=90), "grey.jpg", route="/uncertainty")
    assert answer.status == 200, answer.body[:300]
    assert answer.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(answer.body))
    assert (image.format, image.size, image.mode) == ("PNG", (WIDTH, HEIGHT), "RGB")
    assert np.asarray(image).std() > 0  # a map, not a flat fill
    # A model without calibrated intervals has no map to give, in the one wording.
    assert "no uncertainty head" in one_line_400(post_image(regression_server.url, png(grey), "grey.png",
                                                            route="/uncertainty"))
    if v2_engine.spec.uncertainty_alpha is None:
        assert "no uncertainty head" in one_line_400(post_image(v2_server.url, png(grey), "grey.png",
                                                                route="/uncertainty"))


def test_guided_requests_share_the_upload_limits_and_the_log_line(v2_server, grey):
    for route in ("/colorize", "/suggest", "/uncertainty"):
        answer = post_image(v2_server.url, b"not a picture", "notes.txt", route=route,
                            fields={"points": "[[1, 1]]"})
        assert answer.status in (415, 400), (route, answer.status)  # 400: an engine without uncertainty
    post_image(v2_server.url, png(grey), "grey.png", route="/suggest", fields={"points": "[[1, 1]]"})
    deadline = time.monotonic() + 10.0
    while "POST /suggest 200" not in v2_server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in v2_server.log().splitlines() if "POST /suggest 200" in line]
    assert lines and lines[-1].endswith(f" {HEIGHT * WIDTH} px")
    assert any(" POST /colorize 400 " in line for line in v2_server.log().splitlines())


def test_hint_fields_fuzzed_are_read_or_refused_never_a_500(v2_server):
    """Seeded and bounded: mutations of a valid hint list, each answered 200 or a one-line 400."""
    rng = np.random.default_rng(2024)
    small = png(grey_photo(32, 32, seed=9))
    valid = json.dumps([{"x": 3, "y": 4, "a": 20, "b": -10}, {"x": 30.5, "y": 1, "rgb": "#335577"}])
    alphabet = list('[]{}",:.-0123456789eExyabrgb#NaInfity ') + ["\u00e9", "\\u0000", "null", "true"]
    statuses = []
    for _ in range(40):
        text = list(valid)
        for _ in range(int(rng.integers(1, 6))):
            position = int(rng.integers(0, len(text) + 1))
            action = rng.integers(0, 3)
            if action == 0 and text:
                del text[min(position, len(text) - 1)]
            elif action == 1:
                text.insert(position, str(rng.choice(alphabet)))
            elif text:
                text[min(position, len(text) - 1)] = str(rng.choice(alphabet))
        field = "".join(text)
        for route, fields in (("/colorize", {"hints": field}), ("/suggest", {"hints": field, "points": "[[1, 1]]"})):
            answer = post_image(v2_server.url, small, "small.png", route=route, fields=fields)
            statuses.append(answer.status)
            if answer.status != 200:
                one_line_400(answer)
    assert set(statuses) <= {200, 400} and 400 in statuses


# --- A reference photo: its palette guides the colours of /colorize, /suggest and /uncertainty. ---

@pytest.fixture(scope="module")
def reference():
    """A colour photo (RGB pixels) whose palette is not the grey's automatic colours."""
    return natural_like_image(90, 120, seed=7)


@pytest.fixture(scope="module")
def calibrated_server(export_calibrated_distribution):
    """The tiny v2 generator with a made-up distribution calibration (so it maps its uncertainty),
    exported, served, and opened in-process."""
    # lambda 1: the tiny model's widths (about 60 CIELAB units) then fall inside the heat map's scale.
    path = export_calibrated_distribution(1.0)
    folder = path.parent.parent
    with ServerProcess(folder / "serve.log", "--engine", str(path), "--backend", "onnxruntime") as running, \
            load_engine(path, backend="onnxruntime") as engine:
        yield running, engine


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels (its one row of data is a 1x1 image's): the
    pixel limit is judged from the header, before any pixel is decoded."""
    data = bytearray(png(np.zeros((1, 1), np.uint8)))
    data[16:24] = struct.pack(">II", width, height)  # IHDR's width and height, then its CRC
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def with_reference(server_url: str, grey: np.ndarray, reference_bytes: bytes, route: str = "/colorize",
                   fields: dict[str, str] | None = None):
    return post_files(server_url, {"file": ("grey.png", png(grey)), "reference": ("palette.png", reference_bytes)},
                      fields, route)


def test_the_spec_says_whether_the_engine_takes_a_reference(v2_server, regression_server):
    assert json.loads(request(v2_server.url + "/v1/spec").body)["guides"]["reference"] is True
    assert json.loads(request(regression_server.url + "/v1/spec").body)["guides"]["reference"] is True


def test_a_reference_colours_exactly_as_the_engine_does_and_the_same_twice(v2_server, v2_engine, grey, reference):
    plain = pixels_of(post_image(v2_server.url, png(grey), "grey.png"))
    answer = with_reference(v2_server.url, grey, png(reference))
    guided = pixels_of(answer)
    assert np.array_equal(guided, v2_engine.colorize(grey, reference=reference)[0])
    # Another image (the tiny model's palette input moves colours a few levels; a trained one's, more).
    assert not np.array_equal(guided, plain)
    assert with_reference(v2_server.url, grey, png(reference)).body == answer.body
    # With hints and a temperature too: the engine's answer for all three.
    fields = {"hints": HINTS_JSON, "temperature": "0.5"}
    assert np.array_equal(pixels_of(with_reference(v2_server.url, grey, png(reference), fields=fields)),
                          v2_engine.colorize(grey, hints=[HINTS], temperature=0.5, reference=reference)[0])
    # A black-and-white reference has no colours to give: refused, as colorize-batch refuses one.
    grey_reference = with_reference(v2_server.url, grey, png(grey))
    assert grey_reference.status == 400 and b"reference: a black-and-white or toned photo" in grey_reference.body
    # A browser's form with its reference input left empty sends a nameless, empty file: no reference.
    empty_input = post_files(v2_server.url, {"file": ("grey.png", png(grey)), "reference": ("", b"")})
    assert np.array_equal(pixels_of(empty_input), plain)


def test_suggestions_given_a_reference_are_the_engines(v2_server, v2_engine, grey, reference):
    fields = {"points": "[[10, 12], [70, 50]]", "k": "4"}
    answer = with_reference(v2_server.url, grey, png(reference), "/suggest", fields)
    assert answer.status == 200, answer.body[:300]
    direct = v2_engine.suggest(grey, [(10, 12), (70, 50)], 4, reference=reference)
    assert json.loads(answer.body)["suggestions"] == [[item.as_json() for item in per_point] for per_point in direct]
    plain = post_image(v2_server.url, png(grey), "grey.png", route="/suggest", fields=fields)
    assert json.loads(plain.body) != json.loads(answer.body)
    assert with_reference(v2_server.url, grey, png(reference), "/suggest", fields).body == answer.body


def test_the_uncertainty_map_given_a_reference_is_the_engines(calibrated_server, grey, reference):
    from retint.runtime.uncertainty import heat_map, interval_width

    server, engine = calibrated_server
    answer = with_reference(server.url, grey, png(reference), "/uncertainty")
    _, interval = engine.colorize(grey, with_uncertainty=True, reference=reference)
    expected = heat_map(interval_width(interval, channels_last=True)[0])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(answer.body))), expected[..., ::-1])  # BGR -> RGB
    plain = post_image(server.url, png(grey), "grey.png", route="/uncertainty")
    assert plain.status == 200 and plain.body != answer.body
    assert with_reference(server.url, grey, png(reference), "/uncertainty").body == answer.body


@pytest.mark.parametrize("route", ["/colorize", "/suggest"])
@pytest.mark.parametrize("filename, data, words", [
    ("notes.txt", b"just some words, not a picture\n", "not an image"),
    ("empty.png", b"", "empty file"),
    ("truncated.jpg", encoded(natural_like_image(64, 64, seed=1))[:200], "corrupt"),
    ("huge.png", png_claiming(7100, 7100), "7100x7100 is 50.4 MP, over the server's limit"),
])
def test_a_reference_that_cannot_be_read_is_a_one_line_400_naming_it(v2_server, grey, route, filename, data, words):
    answer = post_files(v2_server.url, {"file": ("grey.png", png(grey)), "reference": (filename, data)},
                        {"points": "[[1, 1]]"} if route == "/suggest" else None, route)
    message = one_line_400(answer)
    assert message.startswith("reference: ") and words in message


def test_a_reference_sent_as_text_is_a_400(v2_server, grey):
    answer = post_image(v2_server.url, png(grey), "grey.png", fields={"reference": "palette.png"})
    assert one_line_400(answer).startswith("reference: ")


def test_a_regression_model_takes_a_reference_and_suggests_from_its_palette(regression_server, regression_engine,
                                                                            grey, reference):
    answer = with_reference(regression_server.url, grey, png(reference))
    assert np.array_equal(pixels_of(answer), regression_engine.colorize(grey, reference=reference)[0])
    answer = with_reference(regression_server.url, grey, png(reference), "/suggest", {"points": "[[10, 12]]"})
    assert answer.status == 200, answer.body[:300]
    body = json.loads(answer.body)
    assert body["from"] == "reference palette" and body["suggestions"][0]
    direct = regression_engine.suggest(grey, [(10, 12)], 5, reference=reference)
    assert body["suggestions"] == [[item.as_json() for item in per_point] for per_point in direct]

