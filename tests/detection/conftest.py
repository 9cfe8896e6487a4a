"""Where the shared detection data lives (``../shared/data``), and fixtures that skip, saying why,
where it is absent.

- ``sigma_dir``: SigmaHQ rules at a fixed commit (``rules/``, ``rules-emerging-threats/``,
  ``rules-threat-hunting/``, ``regression_data/``; see its README);
- ``evtx_dir``: EVTX-ATTACK-SAMPLES, 277 ``.evtx`` files (see its README).

Tests that parametrize at collection time use the path constants and ``absent_reason``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from tests.web.support import signed_in

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SIGMA_DIR = SHARED_DATA / "sigma"
WINDOWS_RULES_DIR = SIGMA_DIR / "rules" / "windows"
REGRESSION_DIR = SIGMA_DIR / "regression_data"
EVTX_DIR = SHARED_DATA / "evtx"


def absent_reason(folder: Path, what: str) -> str | None:
    """Why a test needing ``folder`` cannot run, or None when it is there and not empty."""
    if not folder.is_dir() or not any(folder.iterdir()):
        return f"{what} is not at {folder} (the shared data set; see ../shared/data READMEs)"
    return None


def _require(folder: Path, what: str) -> Path:
    reason = absent_reason(folder, what)
    if reason is not None:
        pytest.skip(reason)
    return folder


@pytest.fixture(scope="session")
def sigma_dir() -> Path:
    return _require(SIGMA_DIR, "the SigmaHQ rule set")


@pytest.fixture(scope="session")
def windows_rules_dir() -> Path:
    return _require(WINDOWS_RULES_DIR, "the SigmaHQ Windows rules")


@pytest.fixture(scope="session")
def evtx_dir() -> Path:
    return _require(EVTX_DIR, "the EVTX sample set")


# Signed-in browsers of the rule pages' tests.
@pytest.fixture
def secadmin(app: FastAPI, world: Any) -> TestClient:
    return signed_in(app, "secadmin")


@pytest.fixture
def analyst(app: FastAPI, world: Any) -> TestClient:
    return signed_in(app, "analyst")
