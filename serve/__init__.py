"""retint.serve: `colorize-serve`, an HTTP API and a web page on one engine (never torch)."""
