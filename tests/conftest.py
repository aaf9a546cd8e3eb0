"""Every test, and every rseqcheck it starts, uses a cache folder of its own
session (checker/engines/engine_cache.py), never the user's."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _engine_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["RSEQCHECK_CACHE_DIR"] = str(tmp_path_factory.mktemp("engine-cache"))
