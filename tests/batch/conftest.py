"""Fixtures shared by the colorize-batch tests."""

import pytest


@pytest.fixture(scope="module")
def engine(exported):
    """The tiny effnet-unet artefact, exported through the real gates (tests/conftest.py)."""
    return exported["effnet-unet"].artefacts[0]
