"""`pip install .` and `pip install -e .` both give working commands."""

import shutil
import subprocess
import sys
import venv

import pytest

IGNORED = shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", ".pytest_cache")


@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_install_gives_working_commands(repo_root, tmp_path, editable):
    source = tmp_path / "retint"
    shutil.copytree(repo_root, source, ignore=IGNORED)
    environment = tmp_path / "venv"
    # System site packages supply torch and the rest: no network, no multi-GB download.
    venv.create(environment, system_site_packages=True, with_pip=False)
    python = environment / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    install += ["-e", str(source)] if editable else [str(source)]
    subprocess.run(install, check=True, capture_output=True)
    for command in ("colorize-train", "export-trt", "colorize-batch", "colorize-bench"):
        result = subprocess.run([str(environment / "bin" / command), "--help"],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout
    # The bundled model is package data: it must be there in a regular install too.
    bundled = subprocess.run([str(python), "-c", "from retint.runtime import load_engine; import numpy as np; "
                              "print(load_engine(None).colorize(np.zeros((32, 32), np.uint8)).shape)"],
                             capture_output=True, text=True, cwd=tmp_path)
    assert bundled.returncode == 0 and bundled.stdout.strip() == "(1, 32, 32, 3)", bundled.stderr
    located = subprocess.run([str(python), "-c", "import retint.model, sys; print(retint.model.__file__)"],
                             capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert (str(source) in located) == editable
