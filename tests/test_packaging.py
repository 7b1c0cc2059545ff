"""`pip install .` (a real wheel) and `pip install -e .` give working commands and every subpackage.

Each install goes into a brand-new virtual environment of its own. Its
dependencies (torch and the rest) come from the environment running the
tests, through a `.pth` line: no network, no multi-GB download, and it works
whether the tests run in a venv or not (a venv made with
system_site_packages=True would see the *base* interpreter instead).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

IGNORED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache")
COMMANDS = ("colorize-train", "export-trt", "colorize-batch", "colorize-bench", "colorize-serve")
PACKAGE_FOLDERS = {"retint": "retint", "retint.model": "model", "retint.export": "export",
                   "retint.runtime": "runtime", "retint.batch": "batch", "retint.serve": "serve",
                   "retint.benchmarks": "benchmarks"}


def run(command: list, **kwargs) -> subprocess.CompletedProcess:
    """Run a command; on failure, the assertion shows everything it printed (pip's output included)."""
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (f"{' '.join(map(str, command))} exited {result.returncode}\n"
                                    f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
    return result


def all_subpackages(repo_root: Path) -> list[str]:
    names = []
    for package, folder in PACKAGE_FOLDERS.items():
        for init in sorted((repo_root / folder).rglob("__init__.py")):
            parts = init.parent.relative_to(repo_root / folder).parts
            names.append(".".join((package, *parts)))
    return names


def is_retint_entry(name: str) -> bool:
    """A site-packages entry of an installed retint (wheel or editable), not a dependency."""
    lowered = name.lower()
    return lowered == "retint" or lowered.startswith(("retint-", "retint.", "__editable__.retint-",
                                                      "__editable___retint_"))


def dependencies_without_retint(folder: Path) -> Path:
    """This environment's site-packages as links, less its own retint: a test that runs where
    retint is installed from a wheel must import the retint it installed, not that one."""
    folder.mkdir(parents=True, exist_ok=True)
    for site in sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}):
        for entry in Path(site).iterdir():
            link = folder / entry.name
            if not is_retint_entry(entry.name) and not link.exists():
                link.symlink_to(entry)
    return folder


def fresh_venv(folder: Path) -> Path:
    """A new venv whose own site-packages come first, then this environment's (for the dependencies)."""
    venv.create(folder, with_pip=False, clear=True)
    python = folder / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    dependencies = dependencies_without_retint(folder / "dependencies")
    Path(purelib, "zz-dependencies-from-test-runner.pth").write_text(f"{dependencies}\n")
    return python


def copy_source(repo_root: Path, tmp_path: Path) -> Path:
    source = tmp_path / "retint-source"
    shutil.copytree(repo_root, source, ignore=IGNORED)
    return source


@pytest.fixture(scope="module")
def wheel_install(repo_root, tmp_path_factory):
    """A wheel built from a copy of the repo and installed (not editable) into a fresh venv."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    source = copy_source(repo_root, tmp_path)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", source])
    (wheel,) = (tmp_path / "dist").glob("retint-*.whl")
    environment = tmp_path / "venv"
    python = fresh_venv(environment)
    run([python, "-m", "pip", "install", "--no-deps", "--no-index", wheel])
    return environment, python, source


def test_the_wheel_holds_every_subpackage(wheel_install, repo_root, tmp_path):
    environment, python, source = wheel_install
    names = all_subpackages(repo_root)
    assert "retint.model.networks" in names
    script = ("import importlib, sys\n"
              f"for name in {names!r}:\n"
              "    module = importlib.import_module(name)\n"
              "    print(name, module.__file__)\n")
    printed = run([python, "-c", script], cwd=tmp_path).stdout.splitlines()
    located = dict(line.split(" ", 1) for line in printed)
    assert set(located) == set(names)
    outside = {name: path for name, path in located.items() if not path.startswith(str(environment))}
    assert not outside, f"imported from outside the wheel's venv: {outside}"


def test_the_wheel_gives_working_commands_and_the_bundled_model(wheel_install, tmp_path):
    environment, python, _ = wheel_install
    for command in COMMANDS:
        result = run([environment / "bin" / command, "--help"])
        assert "Usage:" in result.stdout
    # The bundled model is package data: it must be in the wheel.
    bundled = run([python, "-c", "from retint.runtime import load_engine; import numpy as np; "
                   "print(load_engine(None).colorize(np.zeros((32, 32), np.uint8)).shape)"], cwd=tmp_path)
    assert bundled.stdout.strip() == "(1, 32, 32, 3)"
    # So is colorize-serve's page.
    page = run([python, "-c", "from importlib import resources; "
                "print(resources.files('retint.serve').joinpath('page.html').read_text())"], cwd=tmp_path)
    assert '<form id="upload"' in page.stdout


@pytest.mark.slow
def test_a_wheel_install_trains_exports_and_colours(wheel_install, tmp_path):
    from PIL import Image

    from imagemaker import natural_like_image

    environment, _, _ = wheel_install
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(6):
        Image.fromarray(natural_like_image(96, 96, index)).save(photos / f"{index}.png")
    binary = environment / "bin"
    run([binary / "colorize-train", photos, "-o", tmp_path / "run", "--epochs", 2, "--pretrain-epochs", 1,
         "--render-size", 64, "--base-channels", 8, "--no-pretrained-encoder", "--batch-size", 2, "--workers", 0,
         "--val-fraction", 0.2, "--no-progress"])
    run([binary / "export-trt", tmp_path / "run" / "last.pth", "-o", tmp_path / "engines", "--name", "mine",
         "--onnx-only"])
    grey = tmp_path / "grey"
    grey.mkdir()
    Image.fromarray(natural_like_image(80, 120, 9)).convert("L").save(grey / "scan.jpg")
    run([binary / "colorize-batch", grey, "-o", tmp_path / "coloured", "--engine", tmp_path / "engines" / "mine.onnx",
         "--no-progress"])
    assert Image.open(tmp_path / "coloured" / "scan.jpg").size == (120, 80)


def test_editable_install_uses_the_source_tree_from_any_folder(repo_root, tmp_path):
    # Issue 29 (10): the checkout is a folder named retint; from the folder that holds it Python
    # took it for a namespace package `retint` ("cannot import name '__version__'").
    source = tmp_path / "retint"
    shutil.copytree(repo_root, source, ignore=IGNORED)
    python = fresh_venv(tmp_path / "venv")
    run([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-e", source])
    result = run([tmp_path / "venv" / "bin" / "colorize-batch", "--help"], cwd=tmp_path)
    assert "Usage:" in result.stdout
    script = "from retint import __version__; import retint.model.networks as m; print(m.__file__)"
    for folder in (tmp_path, source, source / "batch"):
        located = run([python, "-c", script], cwd=folder).stdout
        assert located.startswith(str(source)), (folder, located)


def test_the_venvs_here_see_no_retint_but_their_own(tmp_path):
    # Issue 29 (11): where the test runner's retint is a wheel install, the nested venvs imported it.
    python = fresh_venv(tmp_path / "venv")
    probe = run([python, "-c", "import importlib.util; print(importlib.util.find_spec('retint') is None)"],
                cwd=tmp_path)
    assert probe.stdout.strip() == "True", probe.stdout
