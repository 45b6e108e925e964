"""Shared fixtures: small, real wasmtime engines and workloads."""

from __future__ import annotations

import pytest

from wasmlab.config import EngineConfig, MiB, PoolConfig
from wasmlab.workloads import Workload, load_workload


@pytest.fixture(scope="session", autouse=True)
def results_kept_apart(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Runs the commands save by default (``data/results/<command>/<run id>``) go to a temporary folder, not the
    checkout's ``data/results``: ``WASMLAB_RESULTS``, which subprocesses inherit."""
    import os

    os.environ["WASMLAB_RESULTS"] = str(tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="session")
def seed_workload() -> Workload:
    return load_workload("seed")


def small_pool_engine(slots: int) -> EngineConfig:
    """A pooling engine whose slots reserve 1 MiB each instead of 4 GiB, to keep tests light."""
    return EngineConfig(
        allocator="pooling",
        pool=PoolConfig(slots=slots, max_memory_size=MiB),
        memory_reservation=MiB,
        memory_guard_size=64 * 1024,
    )
