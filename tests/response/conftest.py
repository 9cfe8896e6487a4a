"""Settings of the notification tests: no pause between attempts (the retry logic is the same, the test
does not sleep), and a short timeout per attempt."""

from __future__ import annotations

from pathlib import Path

import pytest

from vigil.core.config import Settings, load_settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return load_settings(data_dir=tmp_path / "var", database_url=database_url, notify_retry_seconds=0.0,
                         notify_timeout_seconds=5.0)
