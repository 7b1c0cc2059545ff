"""With torch unimportable (a user who only colours photos), the runtime and
batch work and the training commands say which extra they need."""

import subprocess
import sys
import textwrap

import numpy as np
from PIL import Image

BLOCK_TORCH = "import sys; sys.modules['torch'] = None  # any 'import torch' now fails\n"


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)],
                          capture_output=True, text=True)


def test_colorize_batch_runs_without_torch(exported, tmp_path):
    Image.fromarray(np.full((48, 64), 100, np.uint8)).save(tmp_path / "a.png")
    process = run(f"""
        from retint.batch.cli import main
        main([{str(tmp_path / 'a.png')!r}, "-o", {str(tmp_path / 'out')!r}, "--no-progress",
              "--engine", {str(exported['effnet-unet'].artefacts[0])!r}])
    """)
    assert process.returncode == 0, process.stderr
    assert (tmp_path / "out" / "a.png").is_file()


def test_training_and_export_commands_name_the_missing_extra(tmp_path):
    (tmp_path / "model.pth").write_bytes(b"x")
    for module, arguments in (("retint.model.cli", [str(tmp_path)]),
                              ("retint.export.cli", [str(tmp_path / "model.pth")]),
                              ("retint.model.uncertainty_cli", [str(tmp_path / "model.pth"), "--calibrate-on", "x"])):
        process = run(f"""
            from {module} import main
            main({arguments!r} + ["-o", {str(tmp_path / 'out.pth')!r}])
        """)
        assert process.returncode == 5, process.stderr  # one exit code for a missing extra, everywhere
        assert "needs the 'train' extra (missing torch): pip install torch==2.13.0 && pip install 'retint[train]'" \
            in process.stderr
        assert "Traceback" not in process.stderr


def test_an_import_error_inside_retint_is_not_turned_into_install_advice(tmp_path):
    (tmp_path / "model.pth").write_bytes(b"x")
    for module, source in (("retint.model.cli", tmp_path), ("retint.export.cli", tmp_path / "model.pth")):
        # torch is installed; a retint module that cannot be imported is a bug, not a missing extra.
        process = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
            import sys
            sys.modules["retint.model.networks"] = None  # as if the wheel lacked it
            from {module} import main
            main([{str(source)!r}, "-o", {str(tmp_path / 'out')!r}])
        """)], capture_output=True, text=True)
        assert process.returncode == 1, process.stderr
        assert "pip install" not in process.stderr
        assert "retint.model.networks" in process.stderr


def test_colorize_serve_runs_without_torch(tmp_path):
    """The server, in a process where torch cannot be imported, colours an upload over HTTP."""
    import io
    import signal
    import time

    from retint.benchmarks.serve_load import LISTENING, post_image

    log = tmp_path / "serve.log"
    with open(log, "wb") as stream:
        server = subprocess.Popen([sys.executable, "-c", BLOCK_TORCH + "from retint.serve.cli import main\n"
                                   "main(['--port', '0'])"], stdout=stream, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while not LISTENING.search(log.read_text()) and server.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            url = LISTENING.search(log.read_text())
            assert url, log.read_text()
            buffer = io.BytesIO()
            Image.fromarray(np.full((48, 64), 100, np.uint8)).save(buffer, format="PNG")
            answer = post_image(url.group(1), buffer.getvalue(), "a.png")
            assert answer.status == 200, answer.body
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    assert server.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_colorize_bench_quality_scores_an_onnx_engine_without_torch(exported, tmp_path):
    """Issue 41, item 12: it exited 5 (torch missing) for an ONNX engine. The scoring is numpy; only
    the Frechet distance needs torch, and the report says it was left out and why."""
    import json

    from imagemaker import natural_like_image, write_rgb

    for index in range(3):
        write_rgb(tmp_path / "photos" / f"photo{index}.png", natural_like_image(64, 80, index))
    process = run(f"""
        from retint.benchmarks.cli import main
        main(["quality", {str(tmp_path / 'photos')!r}, "--engine", {str(exported['effnet-unet'].artefacts[0])!r},
              "--render-size", "64", "--hints", "2", "--json", {str(tmp_path / 'quality.json')!r}])
    """)
    assert process.returncode == 0, process.stderr
    assert "not computed here (needs torch" in process.stdout and "With 2 hints per photo" in process.stdout
    summary = json.loads((tmp_path / "quality.json").read_text())["summary"]
    assert summary["photos"] == 3 and summary["effnet_lite0_frechet_output"] is None
    assert 0 < summary["mean_grey_ciede2000"] and 0 < summary["mean_output_ciede2000"]
