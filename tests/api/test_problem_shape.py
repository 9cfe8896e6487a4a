"""The one error shape (RFC 9457 problem+json) and the one pagination convention, pinned exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from vigil.core.config import load_settings
from vigil.core.pagination import MAX_LIMIT
from vigil.web.app import create_app

TYPE = "https://vigil.invalid/problems/"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_401_shape(world: Any, client: TestClient) -> None:
    response = client.get("/api/v1/me")
    assert problem(response, 401) == {
        "type": TYPE + "not-authenticated", "title": "Authentication required", "status": 401,
        "detail": "sign in first", "code": "not-authenticated", "instance": "/api/v1/me",
    }
    assert response.headers["www-authenticate"] == "Bearer"
    bad = client.get("/api/v1/users", headers={"Authorization": "Bearer vgl_forged"})
    assert problem(bad, 401) == {
        "type": TYPE + "not-authenticated", "title": "Authentication required", "status": 401,
        "detail": "the API token is invalid, expired or revoked", "code": "not-authenticated",
        "instance": "/api/v1/users",
    }


def test_403_shape(world: Any, client: TestClient) -> None:
    assert problem(client.get("/api/v1/users", headers=world.headers("viewer")), 403) == {
        "type": TYPE + "permission-denied", "title": "Permission denied", "status": 403,
        "detail": "this needs the permission users:read", "code": "permission-denied", "instance": "/api/v1/users",
        "permission": "users:read",
    }


def test_404_shape(world: Any, client: TestClient) -> None:
    assert problem(client.get("/api/v1/users/999999", headers=world.headers("sysadmin")), 404) == {
        "type": TYPE + "not-found", "title": "Not found", "status": 404,
        "detail": "user 999999 does not exist or is outside your scope", "code": "not-found",
        "instance": "/api/v1/users/999999",
    }
    assert problem(client.get("/api/v1/no-such-thing"), 404) == {
        "type": TYPE + "not-found", "title": "Not found", "status": 404, "detail": "Not Found",
        "code": "not-found", "instance": "/api/v1/no-such-thing",
    }


def test_405_shape(world: Any, client: TestClient) -> None:
    assert problem(client.delete("/api/v1/units", headers=world.headers("sysadmin")), 405) == {
        "type": TYPE + "method-not-allowed", "title": "Method not allowed", "status": 405,
        "detail": "Method Not Allowed", "code": "method-not-allowed", "instance": "/api/v1/units",
    }


def test_409_shape(world: Any, client: TestClient) -> None:
    response = client.post("/api/v1/users", headers=world.headers("sysadmin"), json={
        "username": "viewer", "password": "Another-Viewer-Pass-1!", "unit_id": world.hq})
    assert problem(response, 409) == {
        "type": TYPE + "conflict", "title": "Conflict", "status": 409,
        "detail": "the user name 'viewer' is taken", "code": "conflict", "instance": "/api/v1/users",
    }


def test_422_shape_lists_every_bad_field(world: Any, client: TestClient) -> None:
    response = client.post("/api/v1/units", headers=world.headers("sysadmin"),
                           json={"name": "", "kind": "galaxy"})
    assert problem(response, 422) == {
        "type": TYPE + "bad-input", "title": "Invalid input", "status": 422,
        "detail": response.json()["detail"], "code": "bad-input", "instance": "/api/v1/units",
        "errors": [
            {"field": "name", "in": "body", "message": "String should have at least 1 character"},
            {"field": "kind", "in": "body",
             "message": "Input should be 'headquarters', 'branch', 'subsidiary' or 'business_line'"},
            {"field": "parent_id", "in": "body", "message": "Field required"},
        ],
    }
    assert response.json()["detail"].split("; ") == [
        "name: String should have at least 1 character",
        "kind: Input should be 'headquarters', 'branch', 'subsidiary' or 'business_line'",
        "parent_id: Field required",
    ]
    # A service's own refusal has the same shape.
    weak = client.post("/api/v1/users", headers=world.headers("sysadmin"), json={
        "username": "weakling", "password": "short", "unit_id": world.hq})
    body = problem(weak, 422)
    assert set(body) == {"type", "title", "status", "detail", "code", "instance", "errors"}
    assert {e["field"] for e in body["errors"]} == {"password"}


@pytest.fixture
def small_client(world: Any, settings: Any) -> Iterator[TestClient]:
    small = load_settings(data_dir=settings.data_dir, database_url=settings.database_url, max_body_bytes=1024)
    with TestClient(create_app(small, world.database), base_url="https://testserver") as test_client:
        yield test_client


def test_413_shape(world: Any, small_client: TestClient) -> None:
    expected = {
        "type": TYPE + "payload-too-large", "title": "Request body too large", "status": 413,
        "detail": "the request body exceeds the limit of 1024 bytes", "code": "payload-too-large",
        "instance": "/api/v1/me",
    }
    announced = small_client.patch("/api/v1/me", headers=world.headers("viewer"), content=b"{" + b" " * 2000 + b"}")
    assert problem(announced, 413) == expected
    streamed = small_client.patch("/api/v1/me", headers=world.headers("viewer"),
                                  content=iter([b"{", b" " * 800, b" " * 800, b"}"]))
    assert problem(streamed, 413) == expected


# --- pagination -------------------------------------------------------------------------------------


def test_lists_are_pages(world: Any, client: TestClient) -> None:
    h = world.headers("sysadmin")
    everyone = client.get("/api/v1/users", headers=h).json()
    assert set(everyone) == {"items", "total", "limit", "offset"}
    assert (everyone["total"], everyone["limit"], everyone["offset"]) == (len(world.users), 50, 0)
    names = [u["username"] for u in everyone["items"]]
    assert names == sorted(names)
    page = client.get("/api/v1/users", headers=h, params={"limit": 3, "offset": 2}).json()
    assert (page["total"], page["limit"], page["offset"]) == (len(world.users), 3, 2)
    assert [u["username"] for u in page["items"]] == names[2:5]
    beyond = client.get("/api/v1/users", headers=h, params={"offset": 1000}).json()
    assert beyond == {"items": [], "total": len(world.users), "limit": 50, "offset": 1000}
    units = client.get("/api/v1/units", headers=h, params={"limit": 1}).json()
    assert (len(units["items"]), units["total"]) == (1, 4)
    assert client.get("/api/v1/audit", headers=world.headers("auditor"), params={"limit": MAX_LIMIT}).status_code == 200


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": MAX_LIMIT + 1}, {"limit": -5}, {"offset": -1},
                                    {"limit": "ten"}])
def test_page_bounds_are_422(world: Any, client: TestClient, params: dict[str, Any]) -> None:
    for path, who in [("/api/v1/users", "sysadmin"), ("/api/v1/units", "viewer"), ("/api/v1/audit", "auditor"),
                      ("/api/v1/me/tokens", "viewer")]:
        body = problem(client.get(path, headers=world.headers(who), params=params), 422)
        assert body["code"] == "bad-input"
        assert [(e["field"], e["in"]) for e in body["errors"]] == [(next(iter(params)), "query")]


def test_every_list_endpoint_returns_a_page(tmp_path: Path) -> None:
    """A new list endpoint must use Page (items/total/limit/offset) and the limit/offset parameters."""
    app = create_app(load_settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'unused.db'}"))
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    offenders = []
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        if not get:
            continue
        content = get["responses"].get("200", {}).get("content", {}).get("application/json", {})
        schema = content.get("schema", {})
        if schema.get("type") == "array":
            offenders.append(f"{path}: returns a bare list")
            continue
        ref = schema.get("$ref", "")
        properties = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}) if ref else {}
        if "items" in properties:
            assert set(properties) == {"items", "total", "limit", "offset"}, path
            parameters = {p["name"] for p in get.get("parameters", [])}
            if not {"limit", "offset"} <= parameters:
                offenders.append(f"{path}: a page without limit/offset parameters")
    assert not offenders, "lists must use vigil.core.pagination (Page, page_params): " + "; ".join(offenders)
