def test_world_builds(world, client):
    r = client.get("/api/v1/users", headers=world.headers("sysadmin"))
    assert r.status_code == 200
    assert r.json()["total"] == 12
    r = client.get("/api/v1/users", headers=world.headers("sysadmin_a"))
    assert {u["username"] for u in r.json()["items"]} == {"sysadmin_a", "auditor_a", "staff_a"}
