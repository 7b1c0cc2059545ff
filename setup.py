"""Package discovery for retint's folder layout (everything else is in pyproject.toml).

The top-level folders are the packages `retint.<folder>` (ARCHITECTURE.md), a
mapping pyproject's static `packages` list cannot discover: listed by hand,
a new subpackage (`model/networks`) went missing from the wheel. Here every
folder with an `__init__.py` below each mapped folder is found.

An editable install (`pip install -e .`) maps these folders with a meta path
finder, which Python consults after its path finder. The checkout itself is
a folder named `retint` with no `__init__.py`, so from the folder that holds
it (`~/src` for `~/src/retint`) the path finder took the checkout for a
namespace package `retint` and `from retint import __version__` failed. The
editable wheel therefore also carries a `.pth` line, run after setuptools'
own, that moves retint's finder ahead of the path finder.
"""

from setuptools import find_packages, setup
from setuptools.command.editable_wheel import editable_wheel

FINDER_FIRST_MODULE = "_retint_editable_finder_first"
FINDER_FIRST_PTH = f"zz{FINDER_FIRST_MODULE}.pth"  # after setuptools' __editable__.*.pth (sorted by name)
FINDER_FIRST_CODE = '''"""Put retint's editable finder ahead of the path finder (see retint's setup.py)."""
import importlib.machinery
import sys

for _finder in list(sys.meta_path):
    if getattr(_finder, "__module__", "").startswith("__editable___retint_"):
        sys.meta_path.remove(_finder)
        _at = sys.meta_path.index(importlib.machinery.PathFinder) if importlib.machinery.PathFinder in sys.meta_path else 0
        sys.meta_path.insert(_at, _finder)
'''


class _FinderFirst:
    """setuptools' editable strategy, plus FINDER_FIRST_PTH (see the module doc)."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        wheel.writestr(f"{FINDER_FIRST_MODULE}.py", FINDER_FIRST_CODE.encode())
        wheel.writestr(FINDER_FIRST_PTH, f"import {FINDER_FIRST_MODULE}\n".encode())

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.strategy.__exit__(*exc_info)


class EditableWheel(editable_wheel):
    def _select_strategy(self, name, tag, build_lib):
        return _FinderFirst(super()._select_strategy(name, tag, build_lib))


PACKAGE_FOLDERS = {
    "retint": "retint",
    "retint.model": "model",
    "retint.export": "export",
    "retint.runtime": "runtime",
    "retint.batch": "batch",
    "retint.serve": "serve",
    "retint.benchmarks": "benchmarks",
}

packages = []
for package, folder in PACKAGE_FOLDERS.items():
    packages.append(package)
    packages.extend(f"{package}.{sub}" for sub in find_packages(folder))

setup(package_dir=PACKAGE_FOLDERS, packages=packages, cmdclass={"editable_wheel": EditableWheel})
