"""Whatever a client sends, the API answers with a status it chose: random bodies for every endpoint
that takes one, and random query strings, never produce a 500, on either backend (examples are
derandomised, so CI sees the same ones)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .support import PROBLEM_JSON

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "admin", "system_admin", "viewer", "9" * 30, "2026-01-01T00:00:00"]),
)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                    max_leaves=12)


def body_routes(client: TestClient) -> list[tuple[str, str, list[str]]]:
    """(method, path, field names) of every API operation with a JSON body; ids in paths set to 1."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    schemas = spec["components"]["schemas"]
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            ref = content["schema"].get("$ref", "")
            fields = list(schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}))
            concrete = "/".join("1" if part.startswith("{") else part for part in path.split("/"))
            found.append((method.upper(), concrete, fields))
    return sorted(found)


def query_routes(client: TestClient) -> list[tuple[str, list[str]]]:
    """(path, query parameter names) of every API GET with query parameters; ids in paths set to 1."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    found = []
    for path, operations in spec["paths"].items():
        names = [p["name"] for p in operations.get("get", {}).get("parameters", []) if p["in"] == "query"]
        if names:
            found.append(("/".join("1" if part.startswith("{") else part for part in path.split("/")), names))
    return sorted(found)


def fill(fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={name: JSON for name in fields})


def test_random_bodies_never_break_the_api(world: Any, client: TestClient) -> None:
    routes = body_routes(client)
    queries = query_routes(client)
    assert len(routes) >= 10 and len(queries) >= 4
    who = {"/api/v1/security/policy": "secadmin", "/api/v1/users/1/grants": "secadmin"}

    @settings(max_examples=120, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        kind = data.draw(st.sampled_from(["fields", "json", "bytes", "query"]))
        if kind == "query":
            path, names = data.draw(st.sampled_from(queries))
            params = data.draw(st.fixed_dictionaries({}, optional={name: SCALARS.map(str) for name in names}))
            who_reads = "auditor" if path.startswith("/api/v1/audit") else "sysadmin"
            response = client.get(path, params=params, headers=world.headers(who_reads))
            assert response.status_code < 500, (path, params, response.status_code, response.text[:300])
            return
        method, path, fields = data.draw(st.sampled_from(routes))
        headers = world.headers(who.get(path, "sysadmin"))
        if kind == "bytes":
            raw = data.draw(st.binary(max_size=60))
            response = client.request(method, path, content=raw,
                                      headers={**headers, "Content-Type": "application/json"})
        else:
            body = data.draw(fill(fields) if kind == "fields" else JSON)
            response = client.request(method, path, json=body, headers=headers)
        assert response.status_code < 500, (method, path, response.status_code, response.text[:300])
        if response.status_code >= 400:
            assert response.headers["content-type"] == PROBLEM_JSON

    check()
