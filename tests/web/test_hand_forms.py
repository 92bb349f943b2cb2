"""Hand-made forms: a registered schema rendered generically or by its own template; indexed names → nested data."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import ChoiceLoader, DictLoader
from marshmallow import Schema, fields, validate
from sqlalchemy.orm import Session

from engine import runtime
from engine.forms import _registered_forms, register_form
from engine.models.audit import AuditEvent
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org
from tests.web.conftest import page, post_form, text_of
from web.core.forms import input_name, parse_indexed, schema_form, schema_values

Clients = Callable[[str], FlaskClient]
KEY = 'webtests.agreement'
REQUIRED = {'required': '此项为必填项。'}


class Party(Schema):
    """One party of the agreement."""

    name = fields.String(required=True, validate=validate.Length(min=2, error='长度不能少于 2 个字符。'),
                         error_messages=REQUIRED, metadata={'label': '姓名或名称'})
    role = fields.String(required=True, validate=validate.OneOf(['患方', '医方'], error='请选择列表中的选项。'),
                         error_messages=REQUIRED, metadata={'label': '身份'})


class Agreement(Schema):
    """A mediation agreement: its parties, the amount agreed and when it is paid."""

    parties = fields.List(fields.Nested(Party), required=True, error_messages=REQUIRED,
                          validate=validate.Length(min=2, error='协议至少需要两方当事人。'),
                          metadata={'label': '当事人'})
    amount = fields.Decimal(required=True, places=2, error_messages=REQUIRED,
                            metadata={'label': '协议金额（元）'})
    pay_by = fields.Date(required=True, metadata={'label': '履行期限'})  # marshmallow's own messages


VALID = {'parties-0-name': '张某某', 'parties-0-role': '患方', 'parties-1-name': '', 'parties-1-role': '',
         'parties-2-name': '桃江县人民医院', 'parties-2-role': '医方', 'amount': '86000.00', 'pay_by': '2025-11-30'}


@pytest.fixture
def agreement_form() -> Iterator[None]:
    register_form(KEY, Agreement)
    yield
    _registered_forms.pop(KEY, None)


@pytest.fixture
def agree(session: Session, org: Org, people: dict[str, User], agreement_form: None,
          deploy_file: Callable[[str], object]) -> HumanTask:
    deploy_file('tests/web/bpmn/agreement.bpmn')
    _, [task] = runtime.start_case(session, 'web_agreement', {}, actor=people['staff'], org_unit=org.township)
    session.commit()
    return task


# -- the helper ----------------------------------------------------------------------------------------

def test_indexed_names_become_nested_data() -> None:
    data = parse_indexed(Agreement(), {**VALID, 'csrf_token': 'x', 'parties-x-name': 'ignored', 'other': 'y'})
    assert data == {'parties': [{'name': '张某某', 'role': '患方'}, {'name': '桃江县人民医院', 'role': '医方'}],
                    'amount': '86000.00', 'pay_by': '2025-11-30'}
    # blank values are left out, so that required fields say so; a half-filled row is kept
    assert parse_indexed(Agreement(), {'parties-3-role': '医方', 'amount': ' ', 'pay_by': ''}) == \
        {'parties': [{'role': '医方'}]}
    assert parse_indexed(Agreement(), {}) == {}


def test_stored_data_becomes_indexed_values() -> None:
    data = parse_indexed(Agreement(), VALID)
    assert schema_values(Agreement(), data) == {
        'parties-0-name': '张某某', 'parties-0-role': '患方', 'parties-1-name': '桃江县人民医院',
        'parties-1-role': '医方', 'amount': '86000.00', 'pay_by': '2025-11-30'}
    assert input_name('parties.1.role') == 'parties-1-role'


def test_nested_errors_go_beside_their_inputs(app: Flask) -> None:
    values = schema_values(Agreement(), {'parties': [{'name': '张', 'role': '患方'}]})
    with app.test_request_context('/'):
        form = schema_form(Agreement(), values, {'parties.0.name': ['长度不能少于 2 个字符。'],
                                                 'parties': ['协议至少需要两方当事人。'],
                                                 'pay_by': ['Missing data for required field.'],
                                                 '_schema': ['金额与当事人不符。']})
    parties, amount, pay_by = form.items
    assert parties.errors == ('协议至少需要两方当事人。',)
    assert [w.name for w in parties.rows[0]] == ['parties-0-name', 'parties-0-role']
    assert parties.rows[0][0].errors == ('长度不能少于 2 个字符。',) and parties.rows[0][1].errors == ()
    assert len(parties.rows) == 3  # one filled, two blank
    assert (amount.kind, pay_by.kind) == ('decimal', 'date')
    assert pay_by.errors == ('此项为必填项。',)  # marshmallow's default, in the catalogue's words
    assert form.form_errors == ['金额与当事人不符。']
    assert form['amount'] is amount


# -- the task page -------------------------------------------------------------------------------------

def test_generic_fallback_renders_the_schema(client_for: Clients, agree: HumanTask) -> None:
    doc = page(client_for('staff').get(f'/tasks/{agree.id}'))
    form = doc.xpath('//form[contains(@class, "task-form")]')[0]
    names = form.xpath('.//input[not(@type="hidden")]/@name')
    assert names == ['parties-0-name', 'parties-0-role', 'parties-1-name', 'parties-1-role', 'amount', 'pay_by']
    assert form.xpath('.//input[@name="pay_by"]/@type') == ['date']
    assert form.xpath('.//input[@name="amount"]/@inputmode') == ['decimal']
    assert [text_of(th) for th in form.xpath('.//fieldset//th')] == ['序号', '姓名或名称*', '身份*']
    assert text_of(form.xpath('.//fieldset/legend')[0]) == '当事人*'
    for input_id in form.xpath('.//input[not(@type="hidden")]/@id'):
        assert doc.xpath(f'//label[@for="{input_id}"]'), input_id
    assert 'json' not in text_of(form).lower()


def test_invalid_submission_shows_nested_errors_and_changes_nothing(client_for: Clients, session: Session,
                                                                    agree: HumanTask) -> None:
    events = session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    response = post_form(client_for('staff'), f'/tasks/{agree.id}',
                         {'parties-0-name': '', 'parties-0-role': '', 'parties-1-name': '张', 'parties-1-role': '其他',
                          'amount': 'abc', 'pay_by': ''})
    assert response.status_code == 400
    doc = page(response)

    def error(name: str) -> str:
        return text_of(doc.xpath(f'//div[contains(@class, "field")][.//input[@name="{name}"]]'
                                 f'//p[@class="field-error"]')[0])

    # the blank first row was dropped: the row typed second is now the first, with its errors beside it
    assert doc.xpath('//input[@name="parties-0-name"]/@value') == ['张']
    assert error('parties-0-name') == '长度不能少于 2 个字符。'
    assert error('parties-0-role') == '请选择列表中的选项。'
    assert error('amount') == '请输入数字，最多保留两位小数。'
    assert error('pay_by') == '此项为必填项。'
    assert doc.xpath('//input[@name="parties-0-name"]/@aria-invalid') == ['true']
    assert doc.xpath('//input[@name="amount"]/@value') == ['abc']
    session.expire_all()
    assert session.get(HumanTask, agree.id).status == 'open'
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == events


def test_errors_of_the_whole_list_stand_above_its_rows(client_for: Clients, agree: HumanTask) -> None:
    response = post_form(client_for('staff'), f'/tasks/{agree.id}',
                         {'parties-0-name': '张某某', 'parties-0-role': '患方', 'amount': '100',
                          'pay_by': '2025-11-30'})
    assert response.status_code == 400
    fieldset = page(response).xpath('//fieldset[@id="field-parties"]')[0]
    assert text_of(fieldset.xpath('./p[@class="field-error"]')[0]) == '协议至少需要两方当事人。'
    assert fieldset.get('aria-describedby') == 'field-parties-error'
    assert 'has-error' in fieldset.get('class')


def test_valid_submission_stores_nested_data(client_for: Clients, session: Session, agree: HumanTask,
                                             people: dict[str, User]) -> None:
    staff = client_for('staff')
    response = post_form(staff, f'/tasks/{agree.id}', VALID)
    assert response.status_code == 302, page(response).text_content()[:500]
    session.expire_all()
    assert session.get(HumanTask, agree.id).status == 'completed'
    review = session.scalars(sa.select(HumanTask).where(HumanTask.bpmn_id == 'review')).one()
    data = runtime.task_data(session, review)
    assert data['parties'] == [{'name': '张某某', 'role': '患方'}, {'name': '桃江县人民医院', 'role': '医方'}]
    assert (data['amount'], data['pay_by']) == ('86000.00', '2025-11-30')


def test_add_row_shows_one_more_row_and_completes_nothing(client_for: Clients, session: Session,
                                                          agree: HumanTask) -> None:
    response = post_form(client_for('staff'), f'/tasks/{agree.id}', {**VALID, 'add_row': 'parties'})
    assert response.status_code == 200
    doc = page(response)
    assert len(doc.xpath('//fieldset[@id="field-parties"]//tbody/tr')) == 5  # two filled, two blank, one added
    assert doc.xpath('//input[@name="parties-1-name"]/@value') == ['桃江县人民医院']
    assert doc.xpath('//p[@class="field-error"]') == []
    session.expire_all()
    assert session.get(HumanTask, agree.id).status == 'open'


def test_a_form_with_its_own_template_uses_it(app: Flask, client_for: Clients, agree: HumanTask) -> None:
    own = ('{% from "_macros.html" import schema_input, schema_list %}'
           '<div class="agreement-form">{{ schema_input(form["amount"]) }}{{ schema_list(form["parties"]) }}'
           '{{ schema_input(form["pay_by"]) }}</div>')
    app.jinja_env.loader = ChoiceLoader([DictLoader({'tasks/forms/webtests_agreement.html': own}),
                                         app.jinja_env.loader])
    doc = page(client_for('staff').get(f'/tasks/{agree.id}'))
    names = doc.xpath('//div[@class="agreement-form"]//input/@name')
    assert names[0] == 'amount' and names[-1] == 'pay_by' and 'parties-0-name' in names

