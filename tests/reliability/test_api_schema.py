"""Schemathesis against the running API's own OpenAPI schema: no 5xx, responses match what the schema promises.

Every operation the schema lists (uploads, submissions, events, search, staff ... whatever exists) gets a
bounded number of generated requests, derandomised so CI sees the same cases every run. Loopback only.

    .venv/bin/pytest tests/reliability/test_api_schema.py             # 8 cases per operation
    .venv/bin/pytest tests/reliability/test_api_schema.py -m slow     # 200 cases per operation
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.reliability.conftest import ApiUnderTest
from tests.reliability.nightly import skip_unless_slow_selected

pytestmark = pytest.mark.integration
# Hard requirements: no 5xx; every status the API answers with is declared in the schema (so clients generated from
# it can expect it), with the declared shape and media type.
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance, content_type_conformance]
_BOUNDED = dict(derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="session")
def api_schema(load_api: ApiUnderTest) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{load_api.base_url}/openapi.json")


def fuzz_every_operation(
    schema: schemathesis.BaseSchema, max_examples: int, checks: list[Any] = CHECKS
) -> dict[str, str]:
    """Run each operation's generated cases; a failure message per failing operation (empty: all passed).

    (schemathesis.pytest.from_fixture does not run on pytest 9: it reads `Function._nodeid`, which is gone.)
    """
    failures: dict[str, str] = {}
    results = list(schema.get_all_operations())
    broken = [result for result in results if not isinstance(result, Ok)]
    assert not broken, f"operations the schema cannot describe: {broken}"
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) >= 5, f"only {len(operations)} operations in the schema"
    for operation in operations:

        @settings(max_examples=max_examples, **_BOUNDED)  # type: ignore[arg-type]
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(checks=checks, timeout=30)

        try:
            run()
        except (Exception, BaseExceptionGroup) as failure:  # collect every operation's failure, report them together
            failures[operation.label] = f"{type(failure).__name__}: {str(failure)[:1500]}"
    return failures


def test_api_honours_its_schema(api_schema: schemathesis.BaseSchema) -> None:
    failures = fuzz_every_operation(api_schema, max_examples=8)
    assert not failures, "\n\n".join(f"{label}: {message}" for label, message in failures.items())


@pytest.mark.slow
def test_api_honours_its_schema_nightly(request: pytest.FixtureRequest, api_schema: schemathesis.BaseSchema) -> None:
    skip_unless_slow_selected(request)
    failures = fuzz_every_operation(api_schema, max_examples=200)
    assert not failures, "\n\n".join(f"{label}: {message}" for label, message in failures.items())
