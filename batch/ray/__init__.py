"""colorize-batch --ray: `runner` (the driver: Ray Data over an actor pool, the manifest written
by the driver alone) and `worker` (the engine actors and the work units they colour)."""
