"""`colorize-serve`: an HTTP API (`POST /colorize`) and a web page on one engine.

Exit codes: 0 stopped by Ctrl-C or SIGTERM, 2 bad invocation (an engine
file that cannot be loaded, a port that cannot be bound), 3 the backend
asked for cannot run here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from retint.errors import RetintError

EPILOG = """\b
Routes:
  GET  /          the web page (upload, before/after, download)
  POST /colorize  multipart field 'file'; ?format=png|jpg (default: the input's)
  GET  /healthz   health; GET /v1/spec  the engine's spec as JSON
Errors are JSON {"error": ...}: 413 too large, 415 not an image, 422 too many
pixels or a side out of range, 500 engine failure, 503 busy (Retry-After).

\b
Exit codes:
  0    stopped (Ctrl-C or SIGTERM)
  2    bad invocation: an engine that cannot be loaded, a port that cannot be bound
  3    the backend asked for is not available here
"""


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True}, epilog=EPILOG)
@click.option("--engine", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=".onnx or .plan engine [default: the bundled default model].")
@click.option("--backend", type=click.Choice(["auto", "onnxruntime", "openvino", "tensorrt"]), default="auto",
              help="What runs the engine (as colorize-batch --backend); GET /v1/spec says which ran and why.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              help="Where an .onnx engine runs.")
@click.option("--host", default="127.0.0.1", help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, help="Port (0: any free port).")
@click.option("--max-upload-mb", type=click.IntRange(1), default=50, help="Refuse larger uploads (413).")
@click.option("--max-pixels", type=click.IntRange(1), default=50_000_000,
              help="Refuse images with more pixels (422), judged from the header.")
@click.option("--streams", type=click.IntRange(1), default=None,
              help="Requests coloured at once  [default: the inference plan's: 2 on the CPU, 1 on a GPU].")
@click.option("--queue", type=click.IntRange(0), default=8,
              help="Requests that may wait for a stream; beyond that the answer is 503 with Retry-After.")
@click.option("--quality", type=click.IntRange(1, 100), default=95, help="JPEG / WebP quality.")
def main(engine: Path | None, backend: str, device: str, host: str, port: int, max_upload_mb: int,
         max_pixels: int, streams: int | None, queue: int, quality: int) -> None:
    """Serve the colouriser over HTTP, with a web page at /."""
    try:
        from retint.serve.config import ServeConfig
        from retint.serve.server import serve
    except ImportError as error:
        if error.name and error.name.split(".")[0] in {"fastapi", "uvicorn", "starlette", "multipart",
                                                        "python_multipart"}:
            click.echo(f"colorize-serve: error: needs the 'serve' extra (missing {error.name}): "
                       f"pip install 'retint[serve]'", err=True)
            sys.exit(2)
        raise
    config = ServeConfig(engine=engine, backend=backend, device=device, host=host, port=port,
                         max_upload_mb=max_upload_mb, max_pixels=max_pixels, streams=streams, queue=queue,
                         quality=quality)
    try:
        serve(config, announce=lambda line: click.echo(f"colorize-serve: {line}", err=True))
    except RetintError as error:
        click.echo(f"colorize-serve: error: {error}", err=True)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
