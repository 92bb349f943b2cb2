"""Contract tests: schemathesis drives every operation of /api/v1/openapi.json against the real app.

Each operation is one test: schemathesis sends the document's examples, boundary values and random valid and
invalid requests, and checks every response: no 5xx, only documented status codes and content types, and a
body that matches the documented schema. The caller holds a bearer token and has data to find: the demo and
the medical-dispute diagrams are deployed and a case of each is open, so reads and task actions reach real
records (the document's path examples name id 1) as well as missing ones.

Nothing is excluded. ``POST /auth/token`` is rate limited (web.auth.util), so after some attempts it answers
429, which its operation documents. The document's own endpoint is the schema schemathesis loads, which
tests/api/test_openapi.py checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from config import TestConfig as AppConfig  # aliased: pytest would try to collect a Test* name
from engine.directory import add_membership, get_group
from engine.models.definitions import ProcessDefinition
from engine.models.users import User
from tests.api.conftest import Api, start_demo_case
from tests.fixtures.directory import Org
from web.api.schemas import EXAMPLE_START_DATA
from web.app import create_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
DISPUTES = ('bpmn/disputes/triage.dmn', 'bpmn/disputes/subsidy.dmn', 'bpmn/disputes/dispute_mediation.bpmn')
#: the document as the app serves it (it needs no database: an app on an empty in-memory one is enough)
schema = schemathesis.openapi.from_wsgi('/api/v1/openapi.json', create_app(AppConfig()))


@pytest.fixture
def contract_headers(as_user: Callable[[str | None], Api], people: dict[str, User], org: Org, session: Session,
                     demo: object, deploy_file: Callable[[str], ProcessDefinition]) -> dict[str, str]:
    """A bearer token of township staff who is also mediator, supervisor and designer, so every operation can
    succeed; with a demo case and a dispute case (the document's own start example) open."""
    staff = people['staff']
    for group, unit in (('designer', org.province), ('supervisor', org.county), ('mediator', org.county)):
        add_membership(session, staff, get_group(session, group, group), unit, actor=None)
    session.commit()
    for path in DISPUTES:
        deploy_file(path)
    api = as_user('staff')
    start_demo_case(api)
    started = api.post('/cases', {'process_key': 'dispute_mediation', 'data': EXAMPLE_START_DATA,
                                  'org_unit': '430922'})
    assert started.status_code == 201, started.get_json()
    return api.headers


@schema.parametrize()
# The same examples on every run (derandomize): a suite that fails one run in ten teaches nobody anything.
# To hunt for new failures, run this file with HYPOTHESIS_SEED unset and derandomize off, and more examples.
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case: Any, app: Flask, contract_headers: dict[str, str]) -> None:
    case.call_and_validate(app=app, headers=contract_headers, checks=CHECKS)
