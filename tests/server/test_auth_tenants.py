"""API keys, scopes and tenant isolation: tenant B sees none of tenant A's runs, events or
approvals (404, not 403), lists hold only the caller's tenant, and each scope gates its routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.conftest import Server, bearer, open_server
from tether.governance.approvals import Approvals, generate_key, sign
from tether.server.keys import KeyVerifier, key_id_of
from tether.store.memory import MemoryStore
from tether.store.sqlite import SqliteStore


def h(server: Server, name: str) -> dict[str, str]:
    return bearer(server.keys[name])


def test_no_key_or_a_bad_key_is_a_401_problem(keyed: Server) -> None:
    c = keyed.client
    for headers in (
        {},
        bearer("tth_000000000000_nope"),
        bearer("garbage"),
        {"Authorization": "Basic x"},
    ):
        r = c.get("/v1/runs", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "tether keys create" in r.json()["detail"]
    good = keyed.keys["a_read"]
    tampered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    assert c.get("/v1/runs", headers=bearer(tampered)).status_code == 401
    assert c.get("/v1/runs", headers=bearer(good)).status_code == 200
    assert c.get("/healthz").status_code == 200 and c.get("/openapi.json").status_code == 200


def test_each_scope_gates_its_routes(keyed: Server) -> None:
    c = keyed.client
    body = {"workflow": "echo", "input": {"text": "a"}}
    r = c.post("/v1/runs", json=body, headers=h(keyed, "a_read"))
    assert r.status_code == 403 and "'submit'" in r.json()["detail"]
    r = c.post("/v1/runs", json=body, headers=h(keyed, "a_submit"))
    assert r.status_code == 202
    run_id = r.json()["run_id"]
    assert c.get(f"/v1/runs/{run_id}", headers=h(keyed, "a_submit")).status_code == 403
    keyed.wait(run_id, "COMPLETED", key="a_read")
    for path in (f"/v1/runs/{run_id}/events", f"/v1/runs/{run_id}/history", "/v1/workflows"):
        assert c.get(path, headers=h(keyed, "a_read")).status_code == 200
        assert c.get(path, headers=h(keyed, "a_approve")).status_code == 403
    assert c.post(f"/v1/runs/{run_id}/cancel", headers=h(keyed, "a_read")).status_code == 403
    assert (
        c.post(
            "/v1/approvals/x/approve",
            json={"approver": "a", "signature": "s"},
            headers=h(keyed, "a_read"),
        ).status_code
        == 403
    )
    # admin holds every scope
    assert c.get(f"/v1/runs/{run_id}", headers=h(keyed, "admin")).status_code == 404  # other tenant
    assert c.post("/v1/runs", json=body, headers=h(keyed, "admin")).status_code == 202


def test_tenant_b_gets_404_for_tenant_a_runs_and_events(keyed: Server) -> None:
    c = keyed.client
    a_run = keyed.submit("ask", {"question": "secret"}, key="a_all")
    b_run = keyed.submit("echo", {"text": "b"}, key="b_all")
    keyed.wait(a_run, "ESCALATED", key="a_all")
    keyed.wait(b_run, "COMPLETED", key="b_all")
    b = h(keyed, "b_all")
    for method, path in (
        ("GET", f"/v1/runs/{a_run}"),
        ("GET", f"/v1/runs/{a_run}/events"),
        ("GET", f"/v1/runs/{a_run}/events/stream"),
        ("GET", f"/v1/runs/{a_run}/history"),
        ("GET", f"/v1/runs/{a_run}/state"),
        ("POST", f"/v1/runs/{a_run}/cancel"),
        ("POST", f"/v1/runs/{a_run}/resume"),
    ):
        r = c.request(method, path, headers=b)
        assert r.status_code == 404, (method, path, r.status_code)
        nobody = c.request(method, path.replace(a_run, "no-such-run"), headers=b)
        assert r.json()["detail"].replace(a_run, "X") == nobody.json()["detail"].replace(
            "no-such-run", "X"
        )
    assert c.post(f"/v1/runs/{a_run}/fork", json={"step": 0}, headers=b).status_code == 404
    assert [r["run_id"] for r in c.get("/v1/runs", headers=b).json()["items"]] == [b_run]
    assert [r["run_id"] for r in c.get("/v1/runs", headers=h(keyed, "a_all")).json()["items"]] == [
        a_run
    ]
    assert c.get("/v1/interrupts", headers=b).json()["items"] == []
    assert [
        i["run_id"] for i in c.get("/v1/interrupts", headers=h(keyed, "a_all")).json()["items"]
    ] == [a_run]
    # tenant A's run still waits: B's cancel and resume touched nothing
    assert c.get(f"/v1/runs/{a_run}", headers=h(keyed, "a_all")).json()["status"] == "ESCALATED"
    run = c.get(f"/v1/runs/{b_run}", headers=b).json()
    assert run["tenant"] == "globex"


def test_idempotency_keys_are_per_tenant(keyed: Server) -> None:
    c = keyed.client
    body = {"workflow": "echo", "input": {"text": "x"}, "idempotency_key": "k1"}
    a = c.post("/v1/runs", json=body, headers=h(keyed, "a_all")).json()["run_id"]
    b = c.post("/v1/runs", json=body, headers=h(keyed, "b_all")).json()["run_id"]
    assert a != b
    again = c.post("/v1/runs", json=body, headers=h(keyed, "a_all")).json()["run_id"]
    assert again == a


def test_a_key_reused_for_another_workflow_is_a_conflict(keyed: Server) -> None:
    """Both workflows take ``{}``: the second submit used to get the first workflow's run."""
    c, a = keyed.client, h(keyed, "a_all")
    first = c.post(
        "/v1/runs", json={"workflow": "echo", "input": {}, "idempotency_key": "k2"}, headers=a
    )
    assert first.status_code == 202
    other = c.post(
        "/v1/runs", json={"workflow": "ask", "input": {}, "idempotency_key": "k2"}, headers=a
    )
    assert other.status_code == 409, other.text
    assert other.headers["content-type"].startswith("application/problem+json")
    assert "of workflow 'echo', not 'ask'" in other.json()["detail"]


def test_a_fork_stays_in_its_tenant(keyed: Server) -> None:
    c = keyed.client
    run_id = keyed.submit("count", {"n": 2}, key="a_all")
    keyed.wait(run_id, "COMPLETED", key="a_all")
    fork = c.post(f"/v1/runs/{run_id}/fork", json={"step": 1}, headers=h(keyed, "a_all")).json()
    assert fork["tenant"] == "acme"
    assert c.get(f"/v1/runs/{fork['run_id']}", headers=h(keyed, "b_all")).status_code == 404


def _approver(db: Path, tenant: str = "acme", approver: str = "alice") -> tuple[object, str]:
    key = generate_key()

    async def register() -> None:
        store = SqliteStore(db)
        await store.setup()
        try:
            await Approvals(store).register_approver(approver, "finance", key, tenant=tenant)
        finally:
            await store.close()

    asyncio.run(register())
    return key, approver


def _pending(server: Server, key: str) -> dict[str, object]:
    run_id = server.submit("refunds", {"amount": 40}, key=key)
    server.wait(run_id, "ESCALATED", key=key)
    items = server.client.get(
        "/v1/approvals", params={"status": "pending"}, headers=h(server, key)
    ).json()["items"]
    assert [a["run_id"] for a in items] == [run_id]
    return dict(items[0])


def test_approvals_are_tenant_scoped_and_decided_with_a_signature(keyed: Server) -> None:
    from tether.store.approvals import ApprovalRecord

    c = keyed.client
    private, approver = _approver(keyed.db)
    ap = _pending(keyed, "a_all")
    aid, run_id = str(ap["approval_id"]), str(ap["run_id"])
    assert ap["tool"] == "refund" and ap["arguments"] == {"amount": 40}
    assert ap["required_approvers"] == 1 and ap["votes"] == []
    b = h(keyed, "b_all")
    assert c.get("/v1/approvals", headers=b).json()["items"] == []
    assert c.get(f"/v1/approvals/{aid}", headers=b).status_code == 404
    rec = ApprovalRecord(aid, run_id, str(ap["intent_hash"]), dict(ap["intent"]), "", {})  # type: ignore[arg-type]
    token = sign(private, rec, "approve")  # type: ignore[arg-type]
    r = c.post(
        f"/v1/approvals/{aid}/approve", json={"approver": approver, "signature": token}, headers=b
    )
    assert r.status_code == 404
    # acme's key sending globex's approver's signature: refused, not counted (before: approvers
    # were global, and this approved acme's refund)
    gus, gus_id = _approver(keyed.db, tenant="globex", approver="gus")
    r = c.post(
        f"/v1/approvals/{aid}/approve",
        json={"approver": gus_id, "signature": sign(gus, rec, "approve")},  # type: ignore[arg-type]
        headers=h(keyed, "a_approve"),
    )
    assert r.status_code == 403 and "not registered for tenant 'acme'" in r.json()["detail"]
    forged = sign(generate_key(), rec, "approve")
    r = c.post(
        f"/v1/approvals/{aid}/approve",
        json={"approver": approver, "signature": forged},
        headers=h(keyed, "a_approve"),
    )
    assert r.status_code == 403 and "does not verify" in r.json()["detail"]
    r = c.post(
        f"/v1/approvals/{aid}/approve",
        json={"approver": approver, "signature": token},
        headers=h(keyed, "a_approve"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved" and r.json()["votes"][0]["approver"] == "alice"
    done = keyed.wait(run_id, "COMPLETED", key="a_all")
    assert done["state"]["out"] == ["refunded 40"] and done["usage"]["tool_calls"] == 1
    again = c.post(
        f"/v1/approvals/{aid}/approve",
        json={"approver": approver, "signature": token},
        headers=h(keyed, "a_approve"),
    )
    assert again.status_code == 409


def test_signing_payload_lets_a_client_sign_without_the_python_library(keyed: Server) -> None:
    import base64

    c = keyed.client
    private, approver = _approver(keyed.db)
    ap = _pending(keyed, "a_all")
    aid = ap["approval_id"]
    got = c.get(
        f"/v1/approvals/{aid}/signing-payload",
        params={"decision": "reject", "expires_at": 4_000_000_000},
        headers=h(keyed, "a_all"),
    ).json()
    raw = base64.b64decode(got["payload"])
    sig = private.sign(raw)  # type: ignore[attr-defined]
    token = f"ed25519:{got['expires_at']!r}:{base64.urlsafe_b64encode(sig).decode()}"
    r = c.post(
        f"/v1/approvals/{aid}/reject",
        json={"approver": approver, "signature": token, "reason": "too much"},
        headers=h(keyed, "a_all"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "rejected"
    done = keyed.wait(str(ap["run_id"]), "COMPLETED", "FAILED", key="a_all")
    assert done["state"]["out"] == ["PolicyViolationError"]
    assert (
        c.get(f"/v1/approvals/{aid}/signing-payload", headers=h(keyed, "b_all")).status_code == 404
    )


def test_metrics_show_a_tenant_only_its_runs(keyed: Server) -> None:
    c = keyed.client
    keyed.wait(keyed.submit("echo", {"text": "a"}, key="a_all"), "COMPLETED", key="a_all")
    keyed.wait(keyed.submit("ask", {}, key="b_all"), "ESCALATED", key="b_all")
    a = c.get("/metrics", headers=h(keyed, "a_read")).text
    assert 'tether_runs{status="COMPLETED"} 1.0' in a and 'tether_runs{status="ESCALATED"} 0.0' in a
    assert "tether_queue_depth" not in a and "tether_step_seconds" not in a
    admin = c.get("/metrics", headers=h(keyed, "admin")).text
    assert 'tether_runs{status="COMPLETED"} 0.0' in admin  # the admin key's own tenant (ops)
    assert "tether_workers" in admin and "tether_step_seconds_count" in admin
    assert c.get("/metrics").status_code == 401


async def test_verifier_checks_one_hash_and_caches_by_digest() -> None:
    from tether.server.keys import create_key

    now = [0.0]
    store = MemoryStore()
    rec, key = await create_key(store, "acme", ["read"])
    v = KeyVerifier(store, cache_ttl=30.0, now=lambda: now[0])
    got = await v.verify(key)
    assert got is not None and got.tenant == "acme" and got.scopes == {"read"}
    assert key_id_of(key) == rec.key_id and key not in str(v._cache)
    await store.revoke_api_key(rec.key_id)
    assert await v.verify(key) == got  # cached for its TTL...
    now[0] += 31
    assert await v.verify(key) is None  # ...then the revocation holds
    _, key2 = await create_key(store, "acme", ["read"])
    assert await v.verify(key2) is not None
    v.forget(key_id_of(key2) or "")
    assert not v._cache
    with pytest.raises(Exception, match="unknown scope"):
        await create_key(store, "acme", ["root"])
    with pytest.raises(Exception, match="tenant"):
        await create_key(store, "", ["read"])


async def test_text_that_is_not_utf8_is_refused_by_keys_and_approvals(tmp_path: Path) -> None:
    """A key name, an approver's id or role, or a rejection's reason holding a lone surrogate
    (argv bytes in another encoding): before, SQLite raised its driver's UnicodeEncodeError and
    the memory store took it; now every store refuses it alike, before writing."""
    from tether.core.errors import InvalidInputError
    from tether.server.keys import create_key

    latin1 = b"caf\xe9".decode("utf-8", "surrogateescape")
    for store in (MemoryStore(), SqliteStore(tmp_path / "keys.db")):
        await store.setup()
        with pytest.raises(InvalidInputError, match=r"name=.*not valid UTF-8"):
            await create_key(store, "acme", ["read"], name=latin1)
        assert await store.list_api_keys() == []
        ap = Approvals(store)
        with pytest.raises(InvalidInputError, match=r"approver_id=.*not valid UTF-8"):
            await ap.register_approver(latin1, "finance", generate_key())
        with pytest.raises(InvalidInputError, match=r"role=.*not valid UTF-8"):
            await ap.register_approver("amy", latin1, generate_key())
        assert await ap.approvers() == []
        with pytest.raises(InvalidInputError, match=r"reason=.*not valid UTF-8"):
            await ap.reject("apr_any", "amy", "ed25519:1:x", reason=latin1)
        await store.close()


def test_a_server_that_requires_keys_never_falls_back_to_local_mode(tmp_path: Path) -> None:
    from tests.server.conftest import open_server

    for srv in open_server(tmp_path, require_keys=True):
        r = srv.client.get("/v1/runs")  # no key in the store at all
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
        assert srv.client.get("/healthz").status_code == 200


def test_threads_are_per_tenant(keyed: Server) -> None:
    """Tenant B's run on thread "t1" used to continue tenant A's conversation: A's input and
    answer in B's state, A's run id in its metadata."""
    c, a, b = keyed.client, h(keyed, "a_all"), h(keyed, "b_all")
    body = {"workflow": "echo", "input": {"text": "acme's secret"}, "thread_id": "t1"}
    first = c.post("/v1/runs", json=body, headers=a).json()["run_id"]
    keyed.wait(first, "COMPLETED", key="a_all")
    body = {"workflow": "echo", "input": {}, "thread_id": "t1"}
    theirs = c.post("/v1/runs", json=body, headers=b).json()
    assert theirs["metadata"]["thread_base"] is None
    keyed.wait(theirs["run_id"], "COMPLETED", key="b_all")
    state = c.get(f"/v1/runs/{theirs['run_id']}", headers=b).json()["state"]
    assert "acme" not in json.dumps(state), state
    # and another workflow on B's "t1" is refused naming B's run, never A's
    other = c.post("/v1/runs", json={"workflow": "ask", "thread_id": "t1"}, headers=b)
    assert other.status_code == 409 and first not in other.text, other.text
    listed = c.get("/v1/runs", params={"thread_id": "t1"}, headers=b).json()["items"]
    assert [r["run_id"] for r in listed] == [theirs["run_id"]]


@pytest.fixture
def colon_tenants(tmp_path: Path) -> Iterator[Server]:
    scopes = ["read", "submit"]
    yield from open_server(tmp_path, {"plain": ("acme", scopes), "colon": ("acme:x", scopes)})


def test_keys_of_tenants_whose_names_hold_a_colon_stay_apart(colon_tenants: Server) -> None:
    """Keys were ``tenant:{tenant}:{key}``: tenant "acme" with key "x:k" and tenant "acme:x"
    with key "k" were one key, and the second tenant got the first one's run."""
    c = colon_tenants.client
    body = {"workflow": "echo", "input": {"text": "same"}}
    first = c.post(
        "/v1/runs", json={**body, "idempotency_key": "x:k"}, headers=h(colon_tenants, "plain")
    )
    second = c.post(
        "/v1/runs", json={**body, "idempotency_key": "k"}, headers=h(colon_tenants, "colon")
    )
    assert first.status_code == second.status_code == 202, second.text
    assert first.json()["run_id"] != second.json()["run_id"]
    assert second.json()["tenant"] == "acme:x"


def test_interrupts_and_approvals_page_with_a_cursor_of_the_callers_own(keyed: Server) -> None:
    """Both lists ended at one page (500 waiting runs, 100 requests) with no next_cursor:
    what lay past it could not be reached over HTTP. A cursor of another tenant's is as
    unknown as a made-up one."""
    c, a = keyed.client, h(keyed, "a_all")
    for n in range(3):  # three runs parked on an approval, three on an interrupt
        refund = keyed.submit("refunds", {"amount": 10 + n}, key="a_all")
        question = keyed.submit("ask", {"question": f"q{n}"}, key="a_all")
        keyed.wait(refund, "ESCALATED", key="a_all")
        keyed.wait(question, "ESCALATED", key="a_all")
    for path, workflow in (("/v1/approvals", "refunds"), ("/v1/interrupts", "ask")):
        page = c.get(path, params={"limit": 2}, headers=a).json()
        assert len(page["items"]) == 2 and page["next_cursor"], page
        seen = [str(x["run_id"]) for x in page["items"]]
        rest = c.get(path, params={"limit": 2, "cursor": page["next_cursor"]}, headers=a).json()
        assert len(rest["items"]) == 1 and rest["next_cursor"] is None, rest
        seen += [str(x["run_id"]) for x in rest["items"]]
        assert len(set(seen)) == 3
        runs = {r["run_id"]: r["workflow"] for r in c.get("/v1/runs", headers=a).json()["items"]}
        assert {runs[s] for s in seen} == {workflow}
        # globex's key holding acme's cursor: the same 422 as a cursor naming nothing
        other = c.get(path, params={"cursor": page["next_cursor"]}, headers=h(keyed, "b_all"))
        assert other.status_code == 422 and "first page" in other.json()["detail"]
