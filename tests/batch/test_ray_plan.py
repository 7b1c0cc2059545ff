"""How --ray sizes its actor pool (no Ray needed), and the one line a missing 'ray' extra gives."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from retint.batch.config import BatchConfig
from retint.batch.ray.runner import actor_pool
from retint.batch.ray.worker import PHOTOS_PER_UNIT, work_units
from retint.batch.naming import plan_outputs
from retint.batch.sources import Task
from retint.errors import InputError


def config(**fields) -> BatchConfig:
    return BatchConfig(sources=(Path("in"),), output=Path("out"), **fields)


def test_cpu_actors_one_per_4_cores_of_each_node_leaving_a_cpu_for_the_read_tasks():
    assert actor_pool(config(), [2], gpus=0) == (1, {"num_cpus": 1})
    assert actor_pool(config(), [1], gpus=0)[0] == 1
    assert actor_pool(config(), [16], gpus=0)[0] == 4
    assert actor_pool(config(), [2] * 10, gpus=0)[0] == 10  # small nodes: one each
    assert actor_pool(config(), [16, 16, 2], gpus=0)[0] == 9
    assert actor_pool(config(ray_actors=3), [16], gpus=0)[0] == 3
    with pytest.raises(InputError, match="no CPU for Ray Data's read tasks"):
        actor_pool(config(ray_actors=2), [2], gpus=0)


def test_gpu_clusters_get_one_actor_per_gpu_unless_told_cpu():
    assert actor_pool(config(), [32], gpus=4) == (4, {"num_gpus": 1, "num_cpus": 1})
    assert actor_pool(config(device="cpu"), [32], gpus=4)[1]["num_cpus"] == 1


def test_videos_are_units_of_their_own_and_photos_come_in_groups(tmp_path):
    names = [f"p{index:02d}.jpg" for index in range(PHOTOS_PER_UNIT + 3)] + ["a.mp4", "b.mkv"]
    tasks = [Task(tmp_path / name, Path(name), str(tmp_path / name)) for name in names]
    units = work_units(plan_outputs(tasks, tmp_path / "out", "keep"))
    sizes = [len(json.loads(unit["files"])) for unit in units]
    assert sizes == [PHOTOS_PER_UNIT, 3, 1, 1]


def test_without_ray_installed_ray_is_one_line_and_exit_5(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    process = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        sys.modules["ray"] = None  # as if the 'ray' extra were not installed
        from retint.batch.cli import main
        main([{str(tmp_path / 'a.png')!r}, "-o", {str(tmp_path / 'out')!r}, "--ray", "--no-progress"])
    """)], capture_output=True, text=True)
    assert process.returncode == 5, process.stderr  # a missing extra's one exit code
    assert process.stderr.strip().splitlines()[-1] == (
        "colorize-batch: error: --ray needs the 'ray' extra (missing ray): pip install 'retint[ray]'")
