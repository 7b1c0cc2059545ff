"""`colorize-serve`: an HTTP API (`POST /colorize`, `/suggest`, `/uncertainty`) and a web page on one engine.

Exit codes: 0 stopped by Ctrl-C or SIGTERM, 2 bad invocation (an engine
file that cannot be loaded, a port that cannot be bound), 5 the backend or
device asked for cannot run here, or the 'serve' extra is missing.
"""

from __future__ import annotations

from pathlib import Path

import click

from retint.commands import RetintCommand
from retint.errors import needs_extra
from retint.runtime import BACKENDS, DEFAULT_STREAMS_TEXT, DEVICES
from retint.serve.config import ServeConfig

EPILOG = """\b
Routes:
  GET  /             the web page (upload, before/after, guide the colours, download)
  POST /colorize     multipart 'file' [+ 'hints', 'temperature', 'reference'];
                     ?format=png|jpg (default: the input's)
  POST /suggest      'file' + 'points' [+ 'hints', 'reference', 'k']: likely colours
                     at points (JSON)
  POST /uncertainty  'file' [+ 'hints', 'reference']: where the model is unsure (PNG
                     heat map)
  GET  /healthz      health; GET /v1/spec  the engine's spec and "guides" as JSON
Hints are JSON [{"x": 120, "y": 48, "rgb": "#b04a32"}, {"x": .., "y": .., "a": ..,
"b": ..}] in the image's pixels; 'reference' is a colour photo (a file) whose
palette guides the colours. Hints, temperature and suggestions need a colour
model v2 engine, a reference one with a global-hint input, the heat map an
uncertainty head.
Errors are JSON {"error": ...}: 400 a malformed field or one this engine
cannot use, 408 an upload slower than --upload-timeout, 413 too large, 415
not an image, 422 too many pixels or a side out of range, 500 engine
failure, 503 busy (Retry-After).

\b
Exit codes:
  0    stopped (Ctrl-C or SIGTERM)
  2    bad invocation: an engine that cannot be loaded, a port that cannot be bound
  5    the backend or device asked for cannot run here, or the 'serve'
       extra is missing
"""


@click.command(cls=RetintCommand, program="colorize-serve",
               context_settings={"help_option_names": ["-h", "--help"], "show_default": True}, epilog=EPILOG)
@click.option("--engine", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help=".onnx or .plan engine [default: the bundled default model].")
@click.option("--backend", type=click.Choice(BACKENDS), default=ServeConfig.backend,
              help="What runs the engine (as colorize-batch --backend); GET /v1/spec says which ran and why.")
@click.option("--device", type=click.Choice(DEVICES), default=ServeConfig.device,
              help="Where an .onnx engine runs.")
@click.option("--host", default=ServeConfig.host, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", type=click.IntRange(0, 65535), default=ServeConfig.port, help="Port (0: any free port).")
@click.option("--max-upload-mb", type=click.IntRange(1), default=ServeConfig.max_upload_mb, help="Refuse larger uploads (413).")
@click.option("--max-pixels", type=click.IntRange(1), default=ServeConfig.max_pixels,
              help="Refuse images with more pixels (422), judged from the header.")
@click.option("--streams", type=click.IntRange(1), default=None,
              help=f"Requests coloured at once  [default: the inference plan's: {DEFAULT_STREAMS_TEXT}].")
@click.option("--queue", type=click.IntRange(0), default=ServeConfig.queue,
              help="Requests that may wait for a stream once their upload is in; beyond that the answer is "
                   "503 with Retry-After.")
@click.option("--upload-timeout", type=click.FloatRange(0, min_open=True), default=ServeConfig.upload_timeout,
              metavar="SECONDS", help="A request's head, then its body, must arrive within this; a slower "
                                      "upload gets 408 and its connection is closed.")
@click.option("--max-uploads", type=click.IntRange(1), default=ServeConfig.max_uploads,
              help="Uploads that may arrive at once (a few MB of memory each at most: files beyond 1 MB go to "
                   "temporary files); beyond that the answer is 503 with Retry-After.")
@click.option("--quality", type=click.IntRange(1, 100), default=ServeConfig.quality, help="JPEG / WebP quality.")
def main(engine: Path | None, backend: str, device: str, host: str, port: int, max_upload_mb: int,
         max_pixels: int, streams: int | None, queue: int, upload_timeout: float, max_uploads: int,
         quality: int) -> None:
    """Serve the colouriser over HTTP, with a web page at /."""
    with needs_extra("serve", "colorize-serve"):
        from retint.serve.server import serve
    config = ServeConfig(engine=engine, backend=backend, device=device, host=host, port=port,
                         max_upload_mb=max_upload_mb, max_pixels=max_pixels, streams=streams, queue=queue,
                         upload_timeout=upload_timeout, max_uploads=max_uploads, quality=quality)
    try:
        serve(config, announce=lambda line: click.echo(f"colorize-serve: {line}", err=True))
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM is how a server is stopped: exit 0, not the boundary's 130


if __name__ == "__main__":
    main()
