"""The static checks CI runs: ARCHITECTURE.md's layer table (import-linter) and types (mypy).

The checkout keeps each subpackage in a top-level folder (`runtime/` is
`retint.runtime`; setup.py maps them), and neither tool can follow
setuptools' editable finder. So this lays out the package as it is
installed, in a temporary folder (links into the checkout for mypy, whose
messages then name the checkout's files; copies for import-linter, whose
scan does not follow links), and runs the tools there with the settings in
pyproject.toml ([tool.importlinter], [tool.mypy]). Exit status: 0 when both
pass, else 1.

    python scripts/static_checks.py              # layers, then types of runtime, batch, serve
    python scripts/static_checks.py model        # types of the named subpackages instead
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
SUBPACKAGES = ("runtime", "batch", "serve", "model", "export", "benchmarks")
TYPED_BY_DEFAULT = ("runtime", "batch", "serve")
# lint-imports in a Python that imports retint from the laid-out folder: an editable install's
# finder comes before sys.path on sys.meta_path, and would hand it the checkout's retint/ alone.
LINT_IMPORTS = """
import sys
sys.meta_path[:] = [finder for finder in sys.meta_path if "editable" not in getattr(finder, "__module__", "")]
from importlinter.cli import lint_imports
sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True))
"""


def installed_layout(root: Path, link: bool) -> None:
    """root/retint as the installed package: links into the checkout, or copies of its Python files."""
    package = root / "retint"
    package.mkdir()
    for module in (CHECKOUT / "retint").glob("*.py"):
        (package / module.name).symlink_to(module) if link else shutil.copy(module, package / module.name)
    for name in SUBPACKAGES:
        if link:
            (package / name).symlink_to(CHECKOUT / name, target_is_directory=True)
        else:
            shutil.copytree(CHECKOUT / name, package / name, ignore=shutil.ignore_patterns("__pycache__", "*.onnx",
                                                                                            "*.pth", "*.jpg"))


def run_in_layout(command: list[str], link: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="retint-static-") as folder:
        root = Path(folder)
        installed_layout(root, link)
        environment = {**os.environ, "MYPYPATH": str(root), "PYTHONPATH": str(root)}
        print("$ " + " ".join(command[:1] + ["-c", "<lint-imports>"] + command[3:]
                              if command[1:2] == ["-c"] else command), flush=True)
        return subprocess.run(command, cwd=root, env=environment).returncode


def main(names: list[str]) -> int:
    names = names or list(TYPED_BY_DEFAULT)
    unknown = [name for name in names if name not in SUBPACKAGES]
    if unknown:
        print(f"static_checks: unknown subpackage(s) {', '.join(unknown)}; choose from {', '.join(SUBPACKAGES)}",
              file=sys.stderr)
        return 2
    layers = run_in_layout([sys.executable, "-c", LINT_IMPORTS, str(CHECKOUT / "pyproject.toml")], link=False)
    types = run_in_layout([sys.executable, "-m", "mypy", "--config-file", str(CHECKOUT / "pyproject.toml"),
                           *[word for name in names for word in ("-p", f"retint.{name}")]], link=True)
    return 0 if layers == types == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
