"""Schemathesis against each shipped app's generated OpenAPI document, over real HTTP:
no request, however odd, gets a 500, and every response matches the documented schema
(status codes, content types, bodies). Bounded examples keep it to seconds in CI.

"Schema-valid data is accepted" is not checked: a `filter` is CEL text that no JSON
Schema can describe, and a body valid by schema can still break an entity's rules;
both are answered with a problem document, which the other checks do cover."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from conftest import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def admin_token(server: Server) -> str:
    return server.token("admin")


@pytest.mark.parametrize("app", ["service_desk", "field_service", "procurement"])
def test_generated_api_honours_its_openapi(server: Server, admin_token: str, app: str) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/api/v1/{app}/openapi.json")
    headers = {"Authorization": f"Bearer {admin_token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=6, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server.url, headers=headers,
                                   excluded_checks=[positive_data_acceptance])

        check()
