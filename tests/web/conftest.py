"""Fixtures of the web tests: people at two townships, the demo diagram, clients per user, HTML helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from lxml import html
from sqlalchemy.orm import Session

from engine import runtime
from engine.models.cases import Case
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import PASSWORD, Org
from tests.fixtures.web import csrf_token, form_tokens

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
START = {'person_name': '谢某某', 'received_on': '2025-09-26', 'summary': '测试案件',
         'id_number': '431381198503120015'}
REGISTER = {'visit_count': '2', 'risk_level': 'high', 'findings': '走访属实，情况清楚'}


CATALOGUE = Path(__file__).resolve().parents[2] / 'translations' / 'en' / 'LC_MESSAGES'


@pytest.fixture(scope='session', autouse=True)
def english_catalogue() -> None:
    """Compile the English catalogue if set-up has not (or the .po changed since): the .mo is not committed."""
    po, mo = CATALOGUE / 'messages.po', CATALOGUE / 'messages.mo'
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return
    with po.open('rb') as source:
        catalogue = read_po(source, locale='en')
    with mo.open('wb') as target:
        write_mo(target, catalogue, use_fuzzy=True)


@pytest.fixture
def people(org: Org, create_member: Callable[..., User]) -> dict[str, User]:
    """Staff at the township, an officer at its county, staff elsewhere, a designer at the province."""
    return {
        'staff': create_member('staff', 'township_staff', org.township, display_name='刘晓燕'),
        'staff2': create_member('staff2', 'township_staff', org.township, display_name='王芳'),
        'officer': create_member('officer', 'county_officer', org.county, display_name='曾志强'),
        'outsider': create_member('outsider', 'township_staff', org.other_township, display_name='黄磊'),
        'designer': create_member('designer', 'designer', org.province, display_name='设计员'),
    }


@pytest.fixture
def demo_case(session: Session, org: Org, people: dict[str, User],
              deploy_file: Callable[[str], object]) -> tuple[Case, HumanTask]:
    """A demo case at the township, waiting at ``register`` (unclaimed)."""
    deploy_file(DEMO)
    case, tasks = runtime.start_case(session, 'demo_intake', START, actor=people['staff'], org_unit=org.township)
    session.commit()
    return case, tasks[0]


@pytest.fixture
def client_for(app: Flask) -> Callable[[str], FlaskClient]:
    """A new client logged in as ``username`` (several users in one test each need their own)."""
    def do(username: str) -> FlaskClient:
        client = app.test_client()
        response = client.post('/login', data={'username': username, 'password': PASSWORD,
                                                'csrf_token': csrf_token(client)})
        assert response.status_code == 302
        return client
    return do


def post_form(client: FlaskClient, path: str, data: dict[str, str], *, token_from: str = '/tasks',
              **kwargs: object) -> object:
    """POST ``data`` to ``path`` with the hidden tokens of the form on ``token_from`` (CSRF, nonce)."""
    return client.post(path, data={**data, **form_tokens(client, token_from)}, **kwargs)


def page(response: object) -> html.HtmlElement:
    """The response body parsed as HTML."""
    return html.fromstring(response.get_data(as_text=True))  # type: ignore[attr-defined]


def text_of(element: html.HtmlElement) -> str:
    """All text of ``element`` with whitespace collapsed."""
    return ' '.join(element.text_content().split())


DEADLINE = 'tests/web/bpmn/deadline_task.bpmn'


@pytest.fixture
def chief(org: Org, create_member: Callable[..., User]) -> User:
    """The county's supervisor: sees everything below the county, escalations of its tasks come to them."""
    return create_member('chief', 'supervisor', org.county, display_name='邓志刚')


@pytest.fixture
def assess(session: Session, org: Org, people: dict[str, User], chief: User, clock: object,
           deploy_file: Callable[[str], object]) -> HumanTask:
    """An 调查评估 task at the township, due 2025-10-16 (10 working days from the 委托函 of 2025-09-26).

    Reminders at 09:00 on 10-10, 10-14 and 10-16; escalation to the county's supervisors after the due day.
    The engine clock stands at 2025-09-26 09:00.
    """
    deploy_file(DEADLINE)
    _, [task] = runtime.start_case(session, 'web_assessment', {'person_name': '谢某某',
                                                               'commission_received_on': '2025-09-26'},
                                   actor=people['staff'], org_unit=org.township)
    session.commit()
    return task
