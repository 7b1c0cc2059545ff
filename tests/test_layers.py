"""ARCHITECTURE.md's layer table is what `lint-imports` checks in CI: removing or loosening a
contract in pyproject.toml fails here, and scripts/static_checks.py (a CI step) fails on an import
that breaks one. The check itself runs in CI, not in this test, as it lays out the whole package."""

import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else pytest.importorskip("tomli")

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def contracts() -> dict[str, dict]:
    settings = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    assert settings["root_packages"] == ["retint"] and settings["include_external_packages"] is True
    return {contract["type"] + ":" + ",".join(contract.get("source_modules", [])): contract
            for contract in settings["contracts"]}


def test_packages_import_only_downwards_in_designs_order():
    layers = contracts()["layers:"]["layers"]
    assert [layer.replace(" ", "") for layer in layers] == [
        "retint.benchmarks", "retint.export", "retint.serve", "retint.batch", "retint.model|retint.runtime",
        "retint.commands",
        "retint.errors:retint.files:retint.cpu:retint.media:retint.progress:retint.colour_metrics"]


def test_what_colours_photos_never_imports_torch_model_or_export():
    contract = contracts()["forbidden:retint.runtime,retint.batch,retint.serve"]
    assert {"torch", "retint.model", "retint.export"} <= set(contract["forbidden_modules"])
    assert "ignore_imports" not in contract


def test_serve_takes_only_decode_and_encode_from_batch():
    contract = contracts()["forbidden:retint.serve"]
    assert contract["forbidden_modules"] == ["retint.batch"]
    assert sorted(contract["ignore_imports"]) == ["retint.serve.** -> retint.batch.decode",
                                                  "retint.serve.** -> retint.batch.encode"]


def test_every_package_is_in_a_layer():
    root = PYPROJECT.parent
    named = " ".join(contracts()["layers:"]["layers"])
    packages = [folder.name for folder in root.iterdir() if (folder / "__init__.py").is_file()
                and folder.name not in ("retint", "tests")]
    modules = [path.stem for path in (root / "retint").glob("*.py") if path.stem != "__init__"]
    assert all(f"retint.{name}" in named for name in packages + modules), (packages, modules, named)
