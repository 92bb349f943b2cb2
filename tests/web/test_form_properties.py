"""Property-based tests of the web forms (task completion and case start): arbitrary fields never yield a 500;
a rejection is a 400 page naming what is wrong, and it writes nothing.

The examples of one test share its database; a submission that happens to be valid is accepted (a redirect) and
the next example sees its effect, which is fine: only rejections must leave everything as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.test import TestResponse

from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.comments import Attachment, Comment
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.web import csrf_token
from tests.web.conftest import DEMO

BOUNDED = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _repeat(spec: tuple[str, int]) -> str:
    return spec[0] * spec[1]


VALUE = st.one_of(
    st.text(max_size=30),
    st.sampled_from([('x', 20_000), ('案', 5_000), ('9', 400)]).map(_repeat),
    st.sampled_from(['', ' ', '\x00', '0', '2', '50', '51', '-1', '1e3', '2.5', 'NaN', 'high', 'low', 'true',
                     'on', '2025-09-26', '2025-02-30', '9999-12-31', '谢某某', '431381198503120015',
                     '43138119850312001X', '走访属实，情况清楚', '<script>alert(1)</script>']))
TASK_FIELDS = st.sampled_from(['visit_count', 'risk_level', 'findings', 'approved', 'review_opinion'])
START_FIELDS = st.sampled_from(['person_name', 'id_number', 'received_on', 'summary', 'org_unit'])
# What happens to the CSRF token: sent as issued, left out, or forged.
CSRF = st.sampled_from(['valid', 'valid', 'valid', 'missing', 'forged'])


def _form(names: st.SearchStrategy[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Pairs of (field, value): the form's own fields, unknown ones, and repeated names."""
    return st.lists(st.tuples(st.one_of(names, names, st.text(max_size=10)), VALUE), max_size=8)


def _state(session: Session) -> tuple[Any, ...]:
    """Everything a rejected submission must leave as it was."""
    session.expire_all()
    counts = tuple(session.scalar(sa.select(sa.func.count()).select_from(model))
                   for model in (Case, ProcessInstance, HumanTask, AuditEvent, Comment, Attachment, Job))
    revisions = tuple(session.scalars(sa.select(ProcessInstance.revision).order_by(ProcessInstance.id)))
    tasks = tuple(session.execute(sa.select(HumanTask.id, HumanTask.status, HumanTask.assignee_id)
                                  .order_by(HumanTask.id)).all())
    return counts, revisions, tasks


def _submit(session: Session, client: FlaskClient, path: str, pairs: list[tuple[str, str]], token: str,
            csrf: str) -> TestResponse:
    """POST the pairs; check: no 5xx, a rejection is a 400 page saying why and writes nothing."""
    data = MultiDict([(k, v) for k, v in pairs if k != 'csrf_token'])
    if csrf != 'missing':
        data.add('csrf_token', token if csrf == 'valid' else token[::-1])
    before = _state(session)
    response = client.post(path, data=data)
    if currently_in_test_context():  # the spread of statuses shows under --hypothesis-show-statistics
        event(f'status {response.status_code}')
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400:
        assert response.status_code == 400, response.status_code
        html = response.get_data(as_text=True)
        assert 'Traceback' not in html
        assert 'field-error' in html or 'role="alert"' in html or csrf != 'valid', html[:500]
        assert _state(session) == before
    else:
        assert response.status_code == 302, response.status_code
    return response


@pytest.fixture
def staff(client_for: Callable[[str], FlaskClient], people: dict[str, User]) -> FlaskClient:
    """Staff logged in once for all the examples of a test (logging in per example would hit the rate limit)."""
    return client_for('staff')


@pytest.fixture
def demo(deploy_file: Callable[[str], object]) -> object:
    return deploy_file(DEMO)


@given(pairs=_form(TASK_FIELDS), csrf=CSRF)
@BOUNDED
def test_task_form_never_fails_and_rejections_write_nothing(staff: FlaskClient, session: Session,
                                                            demo_case: tuple[Case, HumanTask],
                                                            pairs: list[tuple[str, str]], csrf: str) -> None:
    path = f'/tasks/{demo_case[1].id}'
    _submit(session, staff, path, pairs, csrf_token(staff, path), csrf)


@given(pairs=_form(START_FIELDS), csrf=CSRF)
@BOUNDED
def test_start_form_never_fails_and_rejections_write_nothing(staff: FlaskClient, session: Session,
                                                             demo: object, pairs: list[tuple[str, str]],
                                                             csrf: str) -> None:
    path = '/cases/new/demo_intake'
    _submit(session, staff, path, pairs, csrf_token(staff, path), csrf)
