"""Tenant branding: public to read, changed by the tenant's own admins only, validated."""


def test_branding_is_public_and_admin_changes_it(client, hospital, other_hospital):
    r = client.get(f"/api/tenants/{hospital.code}")
    assert r.status_code == 200
    assert r.json() == {
        "code": hospital.code,
        "name_zh": f"测试医院 {hospital.code}",
        "name_en": f"Test hospital {hospital.code}",
        "logo_url": None,
        "primary_color": "#0f766e",
        "accent_color": "#b45309",
        "locale": "zh-CN",
        "time_zone": "Asia/Shanghai",
    }
    change = {"primary_color": "#1d4ed8", "logo_url": "https://example.org/logo.svg", "locale": "en"}
    r = client.patch(f"/api/tenants/{hospital.code}", json=change, headers=hospital.headers("admin"))
    assert r.status_code == 200
    assert r.json()["primary_color"] == "#1d4ed8"
    assert client.get(f"/api/tenants/{hospital.code}").json()["locale"] == "en"
    # another tenant's admin, or a physician, may not
    assert (
        client.patch(f"/api/tenants/{hospital.code}", json=change, headers=other_hospital.headers("admin")).status_code
        == 403
    )
    assert (
        client.patch(f"/api/tenants/{hospital.code}", json=change, headers=hospital.headers("physician")).status_code
        == 403
    )


def test_bad_branding_is_400_naming_the_field(client, hospital):
    h = hospital.headers("admin")
    for body, field in [
        ({"primary_color": "blue"}, "primary_color"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"locale": "fr"}, "locale"),
        ({"name_zh": "  "}, "name_zh"),
    ]:
        r = client.patch(f"/api/tenants/{hospital.code}", json=body, headers=h)
        assert r.status_code == 400, body
        assert r.json()["issue"][0]["expression"] == [field]


def test_unknown_tenant_is_404(client):
    assert client.get("/api/tenants/no-such-tenant").status_code == 404
