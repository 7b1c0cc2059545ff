"""Package discovery for retint's folder layout (everything else is in pyproject.toml).

The top-level folders are the packages `retint.<folder>` (DESIGN.md), a
mapping pyproject's static `packages` list cannot discover: listed by hand,
a new subpackage (`model/networks`) went missing from the wheel. Here every
folder with an `__init__.py` below each mapped folder is found.
"""

from setuptools import find_packages, setup

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

setup(package_dir=PACKAGE_FOLDERS, packages=packages)
