"""retint: colour black-and-white photographs and video.

The root package holds the version and what every package shares, importing
nothing of theirs: `errors` (error types and exit codes), `files` (atomic
writes), `cpu` (CPU features), `media` (which file names are photos and
videos) and `progress` (step reports for long jobs). Everything else lives in
`retint.model`, `retint.export`, `retint.runtime`, `retint.batch`,
`retint.serve` and `retint.benchmarks` (see ARCHITECTURE.md; CI's import-linter
contracts hold them to its layer table).
"""

__version__ = "0.1.0"
