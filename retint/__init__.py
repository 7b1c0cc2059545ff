"""retint: colour black-and-white photographs and video.

The root package owns only the version and the error types; everything else
lives in `retint.model`, `retint.export`, `retint.runtime`, `retint.batch` and
`retint.benchmarks` (see DESIGN.md).
"""

__version__ = "0.1.0"
