"""colorize-serve over real HTTP: a real uvicorn server in a subprocess on 127.0.0.1, real engines."""

from __future__ import annotations

import http.client
import io
import json
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from retint.benchmarks.serve_load import ServerProcess, multipart, post_image, request
from retint.benchmarks.fast_engine import write_grey_copy_engine
from imagemaker import grey_photo
from servers import colourfulness, encoded, post_files

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The bundled default model, auto backend, with small limits so the limits can be tested."""
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with ServerProcess(log, "--max-pixels", "3000000", "--max-upload-mb", "1") as running:
        yield running


def test_the_page_has_an_upload_form_and_no_outside_resources(server):
    answer = request(server.url + "/")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = answer.body.decode()
    assert '<form id="upload"' in page and 'type="file"' in page and 'name="file"' in page
    # Works offline: nothing is fetched from another host.
    assert "http://" not in page and "https://" not in page and "//cdn" not in page


def test_a_grey_jpeg_comes_back_in_colour_at_its_size_and_format(server):
    answer = post_image(server.url, encoded(grey_photo(300, 420)), "grey.jpg")
    assert answer.status == 200, answer.body[:200]
    assert answer.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(answer.body))
    assert (image.format, image.size, image.mode) == ("JPEG", (420, 300), "RGB")
    assert colourfulness(answer.body) > 3.0
    assert "x-retint-engine" in answer.headers


def test_format_query_overrides_the_output_format(server):
    answer = post_image(server.url, encoded(grey_photo(64, 80)), "grey.jpg", query="?format=png")
    assert answer.status == 200
    assert answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.body)).format == "PNG"
    bad = post_image(server.url, encoded(grey_photo(64, 80)), "grey.jpg", query="?format=gif")
    assert bad.status == 400 and "format" in bad.json_error()


def test_a_gif_upload_comes_back_as_a_png(server):
    # colorize-batch writes a GIF's first frame as PNG; the server follows the same table.
    answer = post_image(server.url, encoded(grey_photo(64, 80), "GIF"), "grey.gif")
    assert answer.status == 200, answer.body[:200]
    assert answer.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(answer.body)).size == (80, 64)


def test_exif_orientation_is_applied(server):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    answer = post_image(server.url, encoded(grey_photo(60, 100), exif=exif.tobytes()), "turned.jpg")
    assert answer.status == 200
    image = Image.open(io.BytesIO(answer.body))
    assert image.size == (60, 100)  # displayed width x height
    assert image.getexif().get(0x0112) in (None, 1)


def test_alpha_and_16_bit_inputs_follow_the_batch_rules(server):
    grey = grey_photo(48, 64)
    alpha = np.tile(np.linspace(0, 255, 64).astype(np.uint8), (48, 1))
    answer = post_image(server.url, encoded(np.dstack([grey, alpha]), "PNG", "LA"), "alpha.png")
    assert answer.status == 200
    image = Image.open(io.BytesIO(answer.body))
    assert image.mode == "RGBA"
    assert np.array_equal(np.asarray(image)[..., 3], alpha)

    sixteen = Image.fromarray(grey.astype(np.uint16) * 257)
    buffer = io.BytesIO()
    sixteen.save(buffer, format="PNG")
    answer = post_image(server.url, buffer.getvalue(), "sixteen.png")
    assert answer.status == 200
    assert "16-bit" in answer.headers.get("x-retint-notes", "")
    assert Image.open(io.BytesIO(answer.body)).size == (64, 48)


@pytest.mark.parametrize("data, filename", [
    (b"just some words, not a picture\n", "notes.txt"),
    (b"", "empty.jpg"),
    (encoded(grey_photo(200, 200))[:300], "truncated.jpg"),
])
def test_what_is_not_a_supported_image_gets_415_json(server, data, filename):
    answer = post_image(server.url, data, filename)
    assert answer.status == 415, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.json_error()


def test_too_many_pixels_and_sides_out_of_range_get_422(server):
    # 2000 x 2000 = 4 MP, over the server's 3 MP: refused from the header.
    answer = post_image(server.url, encoded(np.zeros((2000, 2000), np.uint8), "PNG"), "big.png")
    assert answer.status == 422 and "MP" in answer.json_error()
    answer = post_image(server.url, encoded(np.zeros((8, 300), np.uint8), "PNG"), "thin.png")
    assert answer.status == 422 and "16" in answer.json_error()


def test_an_upload_over_the_limit_gets_413_with_or_without_content_length(server):
    noise = np.random.default_rng(0).integers(0, 255, 1_300_000, dtype=np.uint8).tobytes()
    answer = post_image(server.url, noise, "huge.jpg")
    assert answer.status == 413 and "1 MB" in answer.json_error()

    # Chunked: no Content-Length, so the limit is enforced while the body arrives.
    body, content_type = multipart("file", "huge.jpg", noise)
    host, port = server.url.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("POST", "/colorize", body=iter([body[i:i + 65536] for i in range(0, len(body), 65536)]),
                           headers={"Content-Type": content_type, "Transfer-Encoding": "chunked"},
                           encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 413
        assert "error" in json.loads(response.read())
    finally:
        connection.close()


def test_the_upload_limit_holds_for_each_file_the_photo_and_a_reference(server):
    noise = np.random.default_rng(1)
    photo = encoded(noise.integers(0, 256, (950, 1000), dtype=np.uint8), "PNG")  # about 0.95 MB
    assert 0.9 * 1024 * 1024 < len(photo) < 1024 * 1024
    near_limit = noise.integers(0, 256, 1_000_000, dtype=np.uint8).tobytes()
    over_limit = noise.integers(0, 256, 1_300_000, dtype=np.uint8).tobytes()
    # Two files of nearly 1 MB each are read (the reference's bytes are then found to be no image).
    answer = post_files(server.url, {"file": ("grey.png", photo), "reference": ("palette.jpg", near_limit)})
    assert answer.status == 400 and answer.json_error().startswith("reference: ")
    small = encoded(grey_photo(50, 70))
    answer = post_files(server.url, {"file": ("grey.jpg", small), "reference": ("palette.jpg", over_limit)})
    assert (answer.status, answer.json_error()) == (413, "reference: upload over the server's limit of 1 MB")
    answer = post_files(server.url, {"file": ("huge.jpg", over_limit), "reference": ("palette.jpg", b"small")})
    assert answer.status == 413 and "1 MB" in answer.json_error()


def test_requests_without_an_image_field_get_400(server):
    answer = request(server.url + "/colorize", "POST", b"{}", {"Content-Type": "application/json"})
    assert answer.status == 400 and "file" in answer.json_error()
    answer = request(server.url + "/nowhere")
    assert answer.status == 404 and answer.json_error()


def test_healthz_and_spec(server):
    health = request(server.url + "/healthz")
    assert health.status == 200 and json.loads(health.body)["status"] == "ok"
    spec = json.loads(request(server.url + "/v1/spec").body)
    assert spec["backend"] in ("onnxruntime", "openvino")
    assert spec["precision"] in ("fp32", "bf16")
    assert spec["limits"]["min_side"] == 16 and spec["render_size"] == 256
    # What is repeated per response is the short label; the whole story is in the spec once.
    assert json.loads(health.body)["engine"] == spec["label"] and len(spec["label"]) < 60
    assert spec["description"].startswith(spec["label"]) and len(spec["description"]) > len(spec["label"])
    coloured = post_image(server.url, encoded(grey_photo(50, 70)), "labelled.jpg")
    assert coloured.headers["x-retint-engine"] == spec["label"]


def test_every_request_is_logged_in_one_line(server):
    post_image(server.url, encoded(grey_photo(50, 70)), "logged.jpg")
    # The line is written once the response has gone out (it carries the whole
    # duration), so the client can read the log a moment before it is there.
    deadline = time.monotonic() + 10.0
    while True:
        lines = [line for line in server.log().splitlines() if "POST /colorize 200" in line]
        if (lines and lines[-1].endswith(" 3500 px")) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert lines and lines[-1].endswith(" 3500 px")
    assert any(" GET /healthz 200 " in line and " ms " in line for line in server.log().splitlines())


def test_an_engine_failure_is_a_500_and_the_server_keeps_serving(tmp_path):
    # A real ONNX graph whose Reshape fits only a 64x64 image: ONNX Runtime itself fails on other sizes.
    engine = write_grey_copy_engine(tmp_path, fixed_side=64)
    with ServerProcess(tmp_path / "serve.log", "--engine", str(engine), "--backend", "onnxruntime") as running:
        failed = post_image(running.url, encoded(grey_photo(48, 80), "PNG"), "wrong-size.png")
        assert failed.status == 500
        assert failed.json_error().startswith("the engine failed on this image")
        fine = post_image(running.url, encoded(grey_photo(64, 64), "PNG"), "square.png")
        assert fine.status == 200
        assert Image.open(io.BytesIO(fine.body)).size == (64, 64)
        assert request(running.url + "/healthz").status == 200
    assert running.process.returncode == 0


def test_a_full_queue_answers_503_with_retry_after(tmp_path):
    photo = encoded(grey_photo(1200, 1600), quality=90)
    with ServerProcess(tmp_path / "serve.log", "--streams", "1", "--queue", "0") as running:
        answers = []
        lock = threading.Lock()

        def send():
            answer = post_image(running.url, photo, "photo.jpg")
            with lock:
                answers.append(answer)

        threads = [threading.Thread(target=send) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = sorted(answer.status for answer in answers)
    assert set(statuses) == {200, 503}, statuses
    busy = [answer for answer in answers if answer.status == 503]
    assert all(int(answer.headers["retry-after"]) >= 1 and "busy" in answer.json_error() for answer in busy)


def test_cli_errors_are_one_line_with_exit_code_2(tmp_path):
    missing = subprocess.run([sys.executable, "-m", "retint.serve.cli", "--engine", str(tmp_path / "no.onnx")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [f"colorize-serve: error: engine file not found: "
                                                   f"{tmp_path / 'no.onnx'}"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        busy = subprocess.run([sys.executable, "-m", "retint.serve.cli", "--port", str(port)],
                              capture_output=True, text=True, timeout=120)
    assert busy.returncode == 2
    assert busy.stderr.strip().startswith(f"colorize-serve: error: cannot listen on 127.0.0.1:{port}")
