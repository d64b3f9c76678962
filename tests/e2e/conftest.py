from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tessera.common.testing import Infra

_spec = importlib.util.spec_from_file_location(
    "tessera_e2e_harness", Path(__file__).with_name("harness.py")
)
assert _spec is not None
assert _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
sys.modules["tessera_e2e_harness"] = harness
_spec.loader.exec_module(harness)


@pytest.fixture(scope="session")
def suite(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Suite]:
    """One running suite per pytest worker, shared by every e2e module (xdist group "e2e")."""
    with harness.running_suite(infra, tmp_path_factory.mktemp("suite")) as running:
        yield running
