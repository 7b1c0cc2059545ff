"""`colorize-batch --ray`: the driver side. The driver lists, plans and records; Ray's actors colour.

The driver does everything a local run does before and after colouring:
the same sources, identities, skip-if-done and collision rules
(`run.BatchRun`), and it alone writes the manifest, one line per
input as each row comes back, so a driver killed at any moment leaves a
manifest that a rerun completes (outputs written without their line are
found on disk and kept). The colouring is Ray Data's batch-inference
pattern: `map_batches` over a fixed pool of `EngineActor`s
(`compute=ActorPoolStrategy(size=N)`), one GPU each on GPU clusters, else
CPU actors: one per CORES_PER_CPU_ACTOR cores of each node (at least one per
node), spread over the nodes. Each reserves one logical CPU, and the pool
always leaves one CPU free for Ray Data's read tasks (as many actors as CPUs
starves them and the run hangs).

Connects to RAY_ADDRESS when it is set, else starts a local instance (and
stops it at the end). OUT, the sources and any --engine file must be at the
same paths on every node (a shared filesystem): workers open the inputs and
write the outputs themselves.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

from retint.batch.config import BatchConfig
from retint.batch.hints import HintTable
from retint.batch.manifest import STATUS_OK, STATUS_PARTIAL
from retint.batch.naming import PlannedOutput
from retint.batch.ray.worker import CORES_PER_CPU_ACTOR, EngineActor, entry_from_json, work_units
from retint.batch.recording import Summary
from retint.errors import BackendUnavailable, EngineError, InputError, OutputError, needs_extra

def import_ray():
    """The `ray` module, with Ray Data; a MissingExtra naming the `ray` extra where it is not installed."""
    with needs_extra("ray", "--ray"):
        import ray
        import ray.data  # noqa: F401  (ray without the data extra has no ray.data)
    return ray


def on_actors(spec: dict, actors: int) -> dict:
    """An actor's engine spec (EngineSpec.as_dict) as the run's: its label and description say how many actors."""
    where = f" on {actors} Ray actor(s)"
    return {**spec, "label": f"{spec['label']}{where}", "description": f"{spec['description']}{where}"}


def actor_pool(config: BatchConfig, node_cpus: list[float], gpus: float) -> tuple[int, dict]:
    """(actors, their Ray resources) for a cluster whose nodes have these CPU counts and these GPUs in all.

    GPUs: one actor per GPU. CPUs: one actor per CORES_PER_CPU_ACTOR cores of each node (at least one
    per node; Ray Data's default SPREAD strategy places them), each reserving one logical CPU, and
    never so many that no CPU is left for Ray Data's read tasks.
    """
    if gpus >= 1 and config.device != "cpu":
        return config.ray_actors or int(gpus), {"num_gpus": 1, "num_cpus": 1}
    total = int(sum(node_cpus))
    free_for_reading = max(1, total - 1)
    actors = config.ray_actors or min(free_for_reading,
                                      sum(max(1, int(cpus) // CORES_PER_CPU_ACTOR) for cpus in node_cpus if cpus >= 1))
    if actors > free_for_reading:
        raise InputError(f"--ray-actors {actors} would leave no CPU for Ray Data's read tasks on a cluster of "
                         f"{total} CPUs (at most {free_for_reading})")
    return max(1, actors), {"num_cpus": 1}  # Ray Data spreads actors over the nodes by default


def _for_actors(config: BatchConfig) -> BatchConfig:
    """The config the actors get: paths as every node sees them (with a shared filesystem mounted at
    the same place), and no --hints table (each work unit carries its inputs' hints, and names
    their reference photos, whose thumbnails ride in the config's reference table)."""
    return replace(config, output=Path(os.path.abspath(config.output)),
                   sources=tuple(Path(os.path.abspath(source)) for source in config.sources),
                   engine=Path(os.path.abspath(config.engine)) if config.engine else None, hints=HintTable())


def _cause(error: BaseException) -> BaseException:
    """The worker's own exception inside Ray's wrapper, where there is one."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, BaseException) else error


class RayColouring:
    """Work units on a Ray Data actor pool: each `EngineActor` opens its own engines."""

    def __init__(self, config: BatchConfig, log: Callable[[str], None]):
        self.ray = import_ray()
        self.config = config
        self.log = log

    def close(self) -> None:
        """Nothing to close here: the actors' engines end with the actors."""

    def _connect(self) -> bool:
        """Join RAY_ADDRESS's cluster or start a local one; True when this run started it."""
        ray = self.ray
        if ray.is_initialized():
            return False
        address = os.environ.get("RAY_ADDRESS") or None
        # Ray's own notices (token auth, actor restarts, its progress bars) would bury the run's bar and
        # summary; what goes wrong in the run reaches the driver as exceptions and manifest lines.
        os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        ray.init(address=address, log_to_driver=False, include_dashboard=False, logging_level=logging.ERROR,
                 configure_logging=True)
        logging.getLogger("ray.data").setLevel(logging.ERROR)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the run's own bar counts completed rows
        context.print_on_execution_start = False
        return True

    def colour(self, todo: list[PlannedOutput], record: Callable, summary: Summary, stop: threading.Event) -> None:
        """Colour `todo` on a pool of Ray actors (RAY_ADDRESS's cluster, else a local Ray started and
        stopped here), recording each entry as its row comes back."""
        if not todo:
            summary.engine = {"description": "Ray: nothing to colour, no engine started", "label": "none"}
            return
        ray = self.ray
        started_here = self._connect()
        try:
            resources = ray.cluster_resources()
            node_cpus = [node["Resources"].get("CPU", 0) for node in ray.nodes() if node.get("Alive")]
            actors, remote_args = actor_pool(self.config, node_cpus, resources.get("GPU", 0))
            self.log(f"Ray: {len(node_cpus)} node(s), {resources.get('CPU', 0):g} CPUs, "
                     f"{resources.get('GPU', 0):g} GPUs; {actors} engine actor(s)")
            units = work_units(todo)
            dataset = ray.data.from_items(units, override_num_blocks=len(units)).map_batches(
                EngineActor, fn_constructor_kwargs={"config": _for_actors(self.config)},
                batch_size=1, compute=ray.data.ActorPoolStrategy(size=actors), **remote_args)
            started = time.perf_counter()
            try:
                for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                    if not summary.engine:
                        summary.engine = on_actors(json.loads(batch["engine"][0]), actors)
                    for text in batch["entry"]:
                        entry = entry_from_json(text)
                        record(entry)
                        if entry.video and entry.status in (STATUS_OK, STATUS_PARTIAL):
                            summary.video_seconds += (entry.milliseconds or 0) / 1000
                    if stop.is_set():
                        raise KeyboardInterrupt
            except (KeyboardInterrupt, OutputError):
                raise
            except Exception as error:  # Ray wraps what the workers raised
                cause = _cause(error)
                if isinstance(cause, (OutputError, EngineError, BackendUnavailable)):
                    raise cause from error
                first = (str(cause).strip().splitlines() or [type(cause).__name__])[-1]
                raise EngineError(f"the Ray run failed: {first}") from error
            finally:
                summary.photo_seconds = time.perf_counter() - started
        finally:
            if started_here:
                ray.shutdown()
