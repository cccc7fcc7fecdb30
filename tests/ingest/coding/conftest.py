"""Shared fixtures for the ingest tests: one coder built from the v601 list per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ingest.coding.shared_data import V601_CSV, need


@pytest.fixture(scope="session")
def v601_concepts():
    from xinglin.ingest.coding.codeset import read_code_set

    return read_code_set(need(V601_CSV))


@pytest.fixture(scope="session")
def coder(v601_concepts):
    from xinglin.ingest.coding.coder import DiagnosisCoder

    return DiagnosisCoder.build(v601_concepts)


@pytest.fixture(scope="session")
def index_path(coder, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dx") / "v601.dx-index.npz"
    coder.dump(path)
    return path
