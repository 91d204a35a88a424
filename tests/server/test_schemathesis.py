"""schemathesis against the live OpenAPI of a real server (uvicorn on a free port, SQLite, an
embedded worker): every operation with generated valid and invalid input, then stateful
sequences that follow the spec's links (submit a run, then get, cancel, resume, fork, page its
history and events). No 5xx, every response as documented (status, content type, schema).
Example counts stay modest: the test is a smoke net over the whole API, not a soak."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from tests.server import apps
from tests.server.conftest import make_keys
from tests.server.uvicorn_thread import served
from tether.server.app import create_app
from tether.server.settings import ServerSettings

SKIP = r"(stream|metrics)"
"""Never-ending streams (tested in test_sse) and Prometheus text (test_auth_tenants)."""
EXCLUDED = [positive_data_acceptance]
"""Schema-valid is not always acceptable: an input a workflow's state refuses, a resume of a
run that waits for nothing, a fork past the run's last step are 4xx by design (each tested in
test_runs_routes). Every other check holds: no 5xx, statuses, content types and bodies as
documented, schema-invalid input rejected."""
SETTINGS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)


@pytest.fixture(scope="module")
def key(base: tuple[str, str]) -> str:
    return base[1]


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The server's URL and an API key of every scope (so auth is checked, not skipped)."""
    db = tmp_path_factory.mktemp("schemathesis") / "runs.db"
    key = make_keys(db, {"all": ("acme", ["admin"])})["all"]
    app = create_app(
        ServerSettings(store=f"sqlite:///{db}", workflows=apps.workflows, embedded_workers=8)
    )
    with served(app) as url:
        yield url, key


@pytest.fixture(scope="module")
def api(base: tuple[str, str]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{base[0]}/openapi.json").exclude(path_regex=SKIP)


def test_every_operation_answers_as_documented(api: schemathesis.BaseSchema, key: str) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=op.as_strategy(generation_mode=mode))
            @SETTINGS
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(timeout=60, headers=auth, excluded_checks=EXCLUDED)

            try:
                check()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, op.label  # nothing to get wrong (/healthz)


def test_stateful_sequences_follow_the_links(api: schemathesis.BaseSchema, key: str) -> None:
    base_machine = api.as_state_machine()
    rules = [r for r in dir(base_machine) if r.startswith("POST_v1_runs___202_")]
    for link in ("GetRun", "CancelRun", "ResumeRun", "ForkRun", "RunHistory", "RunEvents"):
        assert any(link in r for r in rules), (link, rules)  # the spec's links are followed

    class Machine(base_machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {key}"}, "timeout": 60}

        def validate_response(
            self, response: Any, case: schemathesis.Case, additional_checks: Any = None, **kw: Any
        ) -> None:
            case.validate_response(response, excluded_checks=EXCLUDED)

    Machine.run(
        settings=settings(
            max_examples=10,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
    )
