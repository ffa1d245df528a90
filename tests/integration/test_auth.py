from uuid import uuid4

from tests.integration.harness import register

PROBLEM = "application/problem+json"


async def test_register_sign_in_and_me(http):
    alice = await register(http, "alice")
    r = await alice.get("/v1/users/me")
    assert r.status_code == 200
    assert r.json()["username"] == "alice"
    assert r.json()["user_id"] == alice.user_id


async def test_duplicate_username_is_a_conflict(http):
    await register(http, "bob")
    r = await http.post(
        "/v1/auth/register",
        json={"username": "bob", "email": "other@example.com", "password": "long enough"},
    )
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    assert "bob" in r.json()["detail"]


async def test_bad_registration_input_is_explained(http):
    r = await http.post(
        "/v1/auth/register", json={"username": "x", "email": "nope", "password": "short"}
    )
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    assert "username" in r.json()["detail"]


async def test_wrong_password_and_unknown_user_look_the_same(http):
    await register(http, "carol")
    wrong = await http.post("/v1/auth/token", json={"username": "carol", "password": "wrong pass"})
    unknown = await http.post("/v1/auth/token", json={"username": "nobody", "password": "x" * 9})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]


async def test_oauth2_password_form(http):
    await register(http, "dave")
    r = await http.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "dave", "password": "password-dave"},
    )
    assert r.status_code == 200
    assert r.json()["token_type"] == "bearer"


async def test_refresh_rotates_and_reuse_revokes_the_session(http):
    erin = await register(http)
    first = await http.post("/v1/auth/refresh", json={"refresh_token": erin.refresh_token})
    assert first.status_code == 200
    second_token = first.json()["refresh_token"]
    assert second_token != erin.refresh_token
    # the old token again: reuse, so the whole session is revoked
    reuse = await http.post("/v1/auth/refresh", json={"refresh_token": erin.refresh_token})
    assert reuse.status_code == 401
    after = await http.post("/v1/auth/refresh", json={"refresh_token": second_token})
    assert after.status_code == 401


async def test_logout_revokes_access_and_refresh(http):
    frank = await register(http)
    r = await frank.post("/v1/auth/logout", {"refresh_token": frank.refresh_token})
    assert r.status_code == 204
    assert (await frank.get("/v1/users/me")).status_code == 401
    again = await http.post("/v1/auth/refresh", json={"refresh_token": frank.refresh_token})
    assert again.status_code == 401


async def test_missing_and_forged_tokens(http):
    r = await http.get("/v1/users/me")
    assert r.status_code == 401
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"] == "Bearer"
    forged = await http.get("/v1/users/me", headers={"Authorization": f"Bearer {uuid4()}"})
    assert forged.status_code == 401
    assert "not valid" in forged.json()["detail"]


async def test_malformed_json_is_a_400_problem(http):
    r = await http.post(
        "/v1/auth/register", content=b'{"username": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["detail"] == "the request body is not valid JSON"


async def test_openapi_documents_which_operations_need_the_token(http):
    spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    paths = spec["paths"]
    assert paths["/v1/users/me"]["get"]["security"] == [{"bearer": []}]
    assert paths["/v1/conversations/{conversation_id}/messages"]["post"]["security"]
    assert "security" not in paths["/v1/auth/register"]["post"]
    assert "security" not in paths["/v1/auth/token"]["post"]
