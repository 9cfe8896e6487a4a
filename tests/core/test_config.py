"""Settings: wrong values stop start-up with a message that names the setting and the fix; vigil.toml
is read and the environment beats it; secrets never show. And the health endpoints operators poll."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from vigil import __version__
from vigil.core.config import ConfigError, load_settings, mask_url_password
from vigil.core.db import Database
from vigil.web.app import create_app


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No VIGIL_ setting from the shell that runs the tests, and no ./vigil.toml in the way."""
    for name in [name for name in os.environ if name.startswith("VIGIL_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def refusal() -> str:
    """The message of the ConfigError that loading the settings raises now."""
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return str(caught.value)


def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str) -> Path:
    path = tmp_path / "settings" / "vigil.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(content)
    monkeypatch.setenv("VIGIL_CONFIG", str(path))
    return path


@pytest.mark.parametrize("variable, value, hint", [
    ("VIGIL_PORT", "eighty", "valid integer"),
    ("VIGIL_PORT", "70000", "less than or equal to 65535"),
    ("VIGIL_TIMEZONE", "Mars/Olympus", "use an IANA name such as Asia/Shanghai"),
    ("VIGIL_DATABASE_URL", "mysql://root@localhost/vigil", "use sqlite:///PATH or postgresql+psycopg://"),
    ("VIGIL_COOKIE_SECURE", "perhaps", "valid boolean"),
    ("VIGIL_DEFAULT_LANGUAGE", "fr", "'en' or 'zh_CN'"),
    ("VIGIL_MAX_BODY_BYTES", "10", "greater than or equal to 1024"),
])
def test_a_wrong_value_names_the_variable_and_the_fix(monkeypatch: pytest.MonkeyPatch, variable: str, value: str,
                                                      hint: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"{variable} " in message
    assert hint in message
    assert repr(value) in message
    assert "Fix the environment variable or vigil.toml" in message


def test_every_wrong_value_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_PORT", "0")
    monkeypatch.setenv("VIGIL_LOG_LEVEL", "LOUD")
    message = refusal()
    assert "VIGIL_PORT" in message and "VIGIL_LOG_LEVEL" in message


def test_the_settings_file_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file(tmp_path, monkeypatch, 'port = 9000\ndefault_language = "zh_CN"\ntimezone = "Europe/Berlin"\n')
    settings = load_settings()
    assert (settings.port, settings.default_language, settings.timezone) == (9000, "zh_CN", "Europe/Berlin")


def test_the_default_settings_file_is_vigil_toml_in_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "vigil.toml").write_text("port = 9001\n")
    assert load_settings().port == 9001


def test_the_environment_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file(tmp_path, monkeypatch, 'port = 9000\nhost = "0.0.0.0"\n')
    monkeypatch.setenv("VIGIL_PORT", "9100")
    settings = load_settings()
    assert settings.port == 9100
    assert settings.host == "0.0.0.0"


def test_a_wrong_value_in_the_file_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file(tmp_path, monkeypatch, 'port = "ninety"\n')
    message = refusal()
    assert "`port` in vigil.toml" in message and "'ninety'" in message


def test_a_misspelt_setting_in_the_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_file(tmp_path, monkeypatch, "prot = 9000\n")
    message = refusal()
    assert f"`prot` in {path}: not a Vigil setting" in message
    assert "VIGIL_PROT" not in message  # there is no such variable to fix


def test_a_malformed_file_gives_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_file(tmp_path, monkeypatch, "port = 9000\n[server\nhost = 1\n")
    message = refusal()
    assert str(path) in message
    assert "line 2" in message
    assert "Fix the file" in message


def test_a_missing_file_named_by_vigil_config_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_CONFIG", str(tmp_path / "nowhere.toml"))
    message = refusal()
    assert "VIGIL_CONFIG" in message and "nowhere.toml" in message and "does not exist" in message


def test_masked_hides_secrets_and_url_passwords(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, secret_key="s3cret-signing-key",
                             database_url="postgresql://vigil:hunter2@db.internal:5432/vigil")
    shown = settings.masked()
    assert shown["secret_key"] == "********"
    assert shown["database_url"] == "postgresql+psycopg://vigil:********@db.internal:5432/vigil"
    assert "hunter2" not in repr(shown) and "s3cret" not in repr(shown)
    assert shown["data_dir"] == str(tmp_path)
    assert set(shown) == set(type(settings).model_fields)
    plain = load_settings(data_dir=tmp_path).masked()
    assert plain["secret_key"] is None
    assert plain["database_url"] == f"sqlite:///{tmp_path / 'vigil.db'}"
    assert mask_url_password("postgresql+psycopg://postgres@127.0.0.1:5432/x") == "postgresql+psycopg://postgres@127.0.0.1:5432/x"
    assert mask_url_password("postgresql+psycopg://u:p@ss:w@h/x") == "postgresql+psycopg://u:********@h/x"


def test_the_settings_endpoint_shows_masked_settings(world: Any, settings: Any) -> None:
    secret = load_settings(data_dir=settings.data_dir, database_url=settings.database_url, secret_key="top-secret")
    with TestClient(create_app(secret, world.database), base_url="https://testserver") as client:
        shown = client.get("/api/v1/settings", headers=world.headers("sysadmin"))
    assert shown.status_code == 200
    assert shown.json()["secret_key"] == "********"
    assert "top-secret" not in shown.text


# --- health endpoints -------------------------------------------------------------------------------


def test_healthz_and_readyz(client: TestClient) -> None:
    alive = client.get("/healthz")
    assert alive.status_code == 200 and alive.json() == {"status": "ok", "version": __version__}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"records": "ok"}}


@pytest.fixture(params=["sqlite", "postgres"])
def unreachable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A store that cannot be reached: a SQLite file in a folder that does not exist, or a closed port."""
    url = {"sqlite": f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'vigil.db'}",
           "postgres": "postgresql+psycopg://postgres@127.0.0.1:1/vigil?connect_timeout=2"}[request.param]
    database = Database(url)
    yield database
    database.dispose()


def test_readyz_is_503_when_the_store_is_unreachable(unreachable: Database, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, database_url=unreachable.url)
    with TestClient(create_app(settings, unreachable), base_url="https://testserver") as client:
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        assert ready.json()["checks"]["records"].startswith("unreachable: ")
        # An API call that needs the store is a 503 problem, not a crash.
        down = client.get("/api/v1/me", headers={"Authorization": "Bearer vgl_whatever"})
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        assert down.json()["code"] == "unavailable"


def test_metrics_need_a_permission_unless_public(world: Any, client: TestClient, settings: Any) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=world.headers("viewer")).status_code == 403
    assert client.get("/metrics", headers=world.headers("auditor")).status_code == 403
    scraped = client.get("/metrics", headers=world.headers("sysadmin"))
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert 'vigil_http_requests_total{method="GET",route="/metrics",status="403"}' in scraped.text
    public = load_settings(data_dir=settings.data_dir, database_url=settings.database_url, metrics_public=True)
    with TestClient(create_app(public, world.database), base_url="https://testserver") as open_client:
        assert open_client.get("/metrics").status_code == 200
