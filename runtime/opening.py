"""One request in, the engines of one run out: the only place that opens engines.

`open_engines(request)` resolves the artefact (`artefact`), chooses its
backend (`backends`), plans its streams (`plan`) and opens the main engine
at once, so a start that cannot work (a bad file, no CUDA, no uncertainty
head, a regression model given a temperature) fails before the caller
creates anything. A run that colours videos asks `for_video()` (one stream
on every core) and, for temporal smoothing, `by_stages()`; both open on
first use with the request's settings. Closing the set closes them all:
`colorize-batch` closes its set when the run ends, whatever happens;
`colorize-serve` when the server stops; a Ray actor holds its set for its
life (Ray ends the actor's process); `load_engine` returns a set's main
engine, whose caller closes it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from retint.runtime.artefact import Artefact, require_uncertainty_head, resolve_artefact
from retint.runtime.backends import BackendChoice, EngineSettings, choose_backend, open_engine
from retint.runtime.engine import Engine
from retint.runtime.plan import InferencePlan, inference_plan


@dataclass(frozen=True)
class EngineRequest:
    """What a caller asks for; every field but `path` has the runtime's default."""

    path: str | Path | None = None  # .onnx or .plan; None: the bundled default model
    backend: str = "auto"  # one of backends.BACKENDS
    device: str = "auto"  # "auto", "cpu" or "cuda"
    providers: tuple[str, ...] | None = None  # ONNX Runtime execution providers, named explicitly
    batch_size: int | None = None  # images per call (None: the plan's)
    streams: int | None = None  # calls at once (None: the plan's)
    cores: int | None = None  # cores to plan for (None: this machine's; a Ray actor plans for its share)
    cpu_threads: int | None = None  # ONNX Runtime's threads per call (None: the plan's share of the cores)
    by_stages: bool = False  # the main engine by stages (predict/compose), even where the fused graph would do
    mute_uncertain: bool = False  # shrink chroma toward grey where the interval is wide
    temperature: float | None = None  # a colour model v2 engine's temperature (None: the artefact's)
    # The option or argument that needs the uncertainty head ("--uncertainty"): refused at open
    # without one. Empty: nothing needs it.
    uncertainty_for: str = ""


def check_request(request: EngineRequest) -> Artefact:
    """The request's artefact, resolved, with the uncertainty head it needs: what a driver that
    opens no engine itself (`colorize-batch --ray`) checks before it creates anything."""
    artefact = resolve_artefact(request.path)
    needs_head = request.uncertainty_for or ("--mute-uncertain" if request.mute_uncertain else "")
    if needs_head:
        require_uncertainty_head(artefact.name, artefact.uncertainty_alpha, needs_head)
    return artefact


class Engines:
    """The engines of one run, from one request (see the module doc)."""

    def __init__(self, request: EngineRequest):
        self.request = request
        self.artefact: Artefact = check_request(request)
        self.choice: BackendChoice = choose_backend(self.artefact, request.backend, request.device,
                                                    request.providers)
        self.plan: InferencePlan = inference_plan(self.choice, request.batch_size, request.streams, request.cores)
        threads = self.plan.cpu_threads if request.cpu_threads is None else request.cpu_threads
        self._settings = EngineSettings(cpu_threads=threads, streams=self.plan.streams, by_stages=request.by_stages,
                                        mute_uncertain=request.mute_uncertain, temperature=request.temperature,
                                        providers=request.providers)
        self.main: Engine = open_engine(self.artefact, self.choice, self._settings)
        self._for_video: Engine | None = None
        self._by_stages: Engine | None = None

    def for_video(self) -> Engine:
        """An engine for one batch of frames at a time: one stream on every core (the main
        engine itself where its plan has one stream)."""
        if self.plan.streams == 1:
            return self.main
        if self._for_video is None:
            self._for_video = open_engine(self.artefact, self.choice, self._one_stream(by_stages=False))
        return self._for_video

    def by_stages(self) -> Engine:
        """The engine by stages (`StagedEngine`: predict, then compose), one stream on every core,
        for smoothing chroma between the two. Its spec says where a plan's stages run."""
        if self._by_stages is None:
            self._by_stages = open_engine(self.artefact, self.choice, self._one_stream(by_stages=True))
        return self._by_stages

    def _one_stream(self, by_stages: bool) -> EngineSettings:
        """The main engine's settings for one stream on every core (ONNX Runtime's threads: all)."""
        return replace(self._settings, cpu_threads=0, streams=1, by_stages=by_stages)

    def close(self) -> None:
        """Close every engine this set opened."""
        for engine in (self._by_stages, self._for_video, self.main):
            if engine is not None:
                engine.close()
        self._by_stages = self._for_video = None

    def __enter__(self) -> "Engines":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def open_engines(request: EngineRequest) -> Engines:
    """The engines of one run; the main one is open when this returns (see the module doc)."""
    return Engines(request)
