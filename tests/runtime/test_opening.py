"""retint.runtime.opening and .plan: one request opens every engine a run needs, planned once."""

from __future__ import annotations

import os

import numpy as np
import pytest

from retint.errors import EngineError
from retint.runtime import BackendChoice, EngineRequest, open_engines
from retint.runtime.plan import InferencePlan, inference_plan
from retint.runtime.split import StagedEngine


def test_inference_plan_streams_of_one_image_on_the_cpu_one_stream_of_8_on_a_gpu():
    gpu = BackendChoice("tensorrt", "cuda", "a .plan")
    assert inference_plan(gpu) == InferencePlan(streams=1, cpu_threads=0, batch_size=8)
    assert inference_plan(gpu, 16).batch_size == 16
    assert inference_plan(gpu, streams=2).streams == 2
    cores = os.cpu_count() or 1
    for backend in ("onnxruntime", "openvino"):
        cpu_choice = BackendChoice(backend, "cpu", "test")
        cpu = inference_plan(cpu_choice)
        if backend == "openvino":
            assert cpu == InferencePlan(streams=cores + 1, cpu_threads=1, batch_size=1)
        elif cores >= 2:
            assert cpu == InferencePlan(streams=2, cpu_threads=cores // 2, batch_size=1)
        else:
            assert cpu == InferencePlan(streams=1, cpu_threads=1, batch_size=1)
        assert inference_plan(cpu_choice, 4).batch_size == 4
        assert inference_plan(cpu_choice, streams=1) == InferencePlan(streams=1, cpu_threads=cores, batch_size=1)
    # A Ray actor with 4 cores of its node plans for them
    assert inference_plan(BackendChoice("openvino", "cpu", "test"), cores=4).streams == 5


def test_one_request_opens_the_main_engine_on_its_plan_and_the_others_on_first_use(exported):
    request = EngineRequest(path=exported["effnet-unet"].artefacts[0], backend="onnxruntime", streams=2)
    gray = np.full((1, 1, 40, 56), 120, np.uint8)
    with open_engines(request) as engines:
        assert engines.plan.streams == 2 and engines.main.spec.backend == "onnxruntime"
        assert engines.main.spec.reason == "asked for"  # the spec is complete when the engine is built
        video = engines.for_video()
        assert video is not engines.main and engines.for_video() is video  # one stream on every core, opened once
        stages = engines.by_stages()
        assert isinstance(stages, StagedEngine) and engines.by_stages() is stages
        expected = engines.main.colorize(gray)
        assert np.array_equal(video.colorize(gray), expected)
        assert np.abs(stages.colorize(gray).astype(int) - expected).max() <= 1
    # Closing the set closed every engine it opened.
    for engine in (engines.main, video, stages):
        with pytest.raises(Exception):
            engine.colorize(gray)


def test_a_one_stream_plan_colours_video_on_its_main_engine(exported):
    request = EngineRequest(path=exported["effnet-unet"].artefacts[0], backend="onnxruntime", streams=1)
    with open_engines(request) as engines:
        assert engines.for_video() is engines.main


def test_a_request_that_needs_an_uncertainty_head_is_refused_before_anything_opens(exported):
    with pytest.raises(EngineError, match="--uncertainty: .* has no uncertainty head"):
        open_engines(EngineRequest(path=exported["effnet-unet"].artefacts[0], uncertainty_for="--uncertainty"))
