"""Threat-intelligence fixtures: the shared samples (``../shared/data/intel``), an indicator store and an
event store in the test's folder, and the SOC's ``Intel`` for them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from vigil.core.config import Settings
from vigil.core.db import Database
from vigil.intel.runtime import Intel, forget, intel_for
from vigil.siem.store.duckdb import DuckDBEventStore

INTEL_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "intel"


@pytest.fixture(scope="session")
def intel_dir() -> Path:
    if not INTEL_DIR.is_dir() or not any(INTEL_DIR.iterdir()):
        pytest.skip(f"the threat-intelligence samples are not at {INTEL_DIR} (see ../shared/data/intel/README.md)")
    return INTEL_DIR


@pytest.fixture
def events(settings: Settings) -> Iterator[DuckDBEventStore]:
    store = DuckDBEventStore(":memory:")
    yield store
    store.close()


@pytest.fixture
def intel(settings: Settings, database: Database, events: DuckDBEventStore) -> Iterator[Intel]:
    found = intel_for(settings, database)
    found.events = lambda: events
    yield found
    forget(settings)
