"""迁移在办实例 pages: the preview, the reason, single and bulk moves, progress, CSRF and who may do it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import load_scope
from engine.clock import FrozenClock
from engine.migration import start_batch
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.migrations import MigrationBatch, MigrationItem
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.worker import Worker
from tests.fixtures.directory import Org
from tests.fixtures.web import csrf_token
from tests.web.conftest import page, text_of

V1 = 'tests/engine/bpmn/migration_v1.bpmn'
ADDED = 'tests/engine/bpmn/migration_added.bpmn'
REMOVED = 'tests/engine/bpmn/migration_removed.bpmn'
KEY = 'migration_case'
PREVIEW = f'/designer/migrations/new/{KEY}'
REASON = '修正流程：增加核查环节'


@pytest.fixture
def versions(session: Session, org: Org, people: dict[str, User], clock: FrozenClock,
             deploy_file: Callable[[str], ProcessDefinition]) -> tuple[ProcessDefinition, ProcessDefinition]:
    """Version 1 with two cases (one at 登记, one at 审核), then version 2 with 审核 removed."""
    v1 = deploy_file(V1)
    for name, at_review in (('甲某', False), ('乙某', True)):
        _, [task] = runtime.start_case(session, KEY, {'person_name': name}, actor=people['staff'],
                                       org_unit=org.township)
        session.commit()
        if at_review:
            runtime.complete_task(session, task.id, {}, actor=people['staff'],
                                  scope=load_scope(session, people['staff']))
            session.commit()
    return v1, deploy_file(REMOVED)


def _instances(session: Session) -> dict[str, ProcessInstance]:
    """Instances by their case's person name."""
    session.expire_all()
    rows = session.execute(sa.select(Case.person_name, ProcessInstance).join(ProcessInstance.case)).all()
    return {name: instance for name, instance in rows}


def _state(session: Session) -> list[object]:
    """What a refused request must leave as it was."""
    instances = [(i.id, i.definition_id, i.revision) for i in _instances(session).values()]
    counts = [session.scalar(sa.select(sa.func.count()).select_from(model))
              for model in (MigrationBatch, MigrationItem, AuditEvent)]
    tasks = session.execute(sa.select(HumanTask.id, HumanTask.status, HumanTask.title).order_by(HumanTask.id)).all()
    return [*instances, *counts, *tasks]


def _form(client: FlaskClient, **values: object) -> dict[str, object]:
    return {'csrf_token': csrf_token(client, f'{PREVIEW}?from=1&to=2'), 'from': '1', 'to': '2', **values}


# -- the preview -----------------------------------------------------------------------------------------

def test_preview_lists_each_instance_its_steps_and_result(client_for: Callable[[str], FlaskClient],
                                                         session: Session, versions: object) -> None:
    response = client_for('designer').get(PREVIEW)  # defaults: from the older version to the newest
    assert response.status_code == 200
    html = page(response)
    assert html.xpath('//select[@id="pair-from"]/option[@selected]')[0].get('value') == '1'
    assert html.xpath('//select[@id="pair-to"]/option[@selected]')[0].get('value') == '2'
    instances = _instances(session)
    rows = {int(r.get('data-instance-id')): r for r in html.xpath('//tr[@data-instance-id]')}
    assert set(rows) == {instances['甲某'].id, instances['乙某'].id}
    movable, blocked = rows[instances['甲某'].id], rows[instances['乙某'].id]
    case_numbers = {name: i.case.number for name, i in instances.items()}
    assert case_numbers['甲某'] in text_of(movable) and '桃花江镇司法所' in text_of(movable)
    assert '登记' in text_of(movable) and '保留' in text_of(movable) and '可迁移' in text_of(movable)
    assert not movable.xpath('.//input[@name="instance"]')[0].get('disabled')
    assert '不可迁移' in text_of(blocked) and '当前步骤“审核”在新版本中已删除。' in text_of(blocked)
    assert blocked.xpath('.//input[@name="instance"]')[0].get('disabled') is not None
    assert not blocked.xpath('.//button[@formaction]')  # no single move for a blocked instance


def test_unknown_key_or_version_is_not_found(client_for: Callable[[str], FlaskClient], versions: object) -> None:
    designer = client_for('designer')
    assert designer.get('/designer/migrations/new/no_such_process').status_code == 404
    assert designer.get(f'{PREVIEW}?from=1&to=9').status_code == 404


# -- moving ------------------------------------------------------------------------------------------------

def test_reason_is_required_and_nothing_changes(client_for: Callable[[str], FlaskClient], session: Session,
                                               versions: object) -> None:
    designer = client_for('designer')
    movable = _instances(session)['甲某']
    before = _state(session)
    response = designer.post(PREVIEW, data=_form(designer, instance=[str(movable.id)], reason='  '))
    assert response.status_code == 400
    html = page(response)
    assert '请填写迁移原因。' in text_of(html.xpath('//div[contains(@class, "has-error")]')[0])
    assert html.xpath(f'//input[@name="instance"][@value="{movable.id}"]')[0].get('checked') is not None
    single = designer.post(f'/designer/migrations/instances/{movable.id}',
                           data=_form(designer, revision=str(movable.revision)))
    assert single.status_code == 400 and '请填写迁移原因。' in single.get_data(as_text=True)
    assert _state(session) == before


def test_no_instance_ticked_is_refused(client_for: Callable[[str], FlaskClient], session: Session,
                                      versions: object) -> None:
    designer = client_for('designer')
    before = _state(session)
    response = designer.post(PREVIEW, data=_form(designer, reason=REASON))
    assert response.status_code == 400 and '请至少选择一个流程实例。' in response.get_data(as_text=True)
    assert _state(session) == before


def test_bulk_move_shows_progress_until_each_instance_is_settled(
        client_for: Callable[[str], FlaskClient], session: Session, session_factory: sessionmaker[Session],
        versions: tuple[ProcessDefinition, ProcessDefinition]) -> None:
    designer = client_for('designer')
    instances = _instances(session)
    ids = [instances['甲某'].id, instances['乙某'].id]  # the second became blocked: it fails, the first moves
    response = designer.post(PREVIEW, data=_form(designer, instance=[str(i) for i in ids], reason=REASON))
    assert response.status_code == 302
    batch = session.scalars(sa.select(MigrationBatch)).one()
    assert response.headers['Location'] == f'/designer/migrations/batches/{batch.id}'
    waiting = designer.get(f'/designer/migrations/batches/{batch.id}')
    assert waiting.status_code == 200
    panel = page(waiting).xpath('//*[@data-progress-url]')[0]
    assert panel.get('data-done') == 'false' and text_of(panel.xpath('.//*[@data-count="pending"]')[0]) == '2'
    progress = designer.get(panel.get('data-progress-url')).get_json()
    assert (progress['status'], progress['pending'], progress['done']) == ('queued', 2, False)

    Worker(session_factory, name='web-test', poll_interval=0).run_once()

    progress = designer.get(panel.get('data-progress-url')).get_json()
    assert (progress['status'], progress['migrated'], progress['failed'], progress['done']) == ('done', 1, 1, True)
    results = {item['instance_id']: (item['status'], item['message']) for item in progress['items']}
    assert results[ids[0]][0] == 'migrated'
    assert results[ids[1]][0] == 'failed' and '当前步骤“审核”在新版本中已删除。' in results[ids[1]][1]
    done = page(designer.get(f'/designer/migrations/batches/{batch.id}'))
    assert done.xpath('//*[@data-progress-url]')[0].get('data-done') == 'true'
    assert '已迁移' in text_of(done.xpath('//tr[@data-item-id]//*[@data-item-status]')[0])
    listing = page(designer.get('/designer/migrations/'))
    assert REASON in text_of(listing) and '1 / 1 / 0 / 2' in text_of(listing)


def test_single_move_from_the_preview_row(client_for: Callable[[str], FlaskClient], session: Session,
                                          versions: tuple[ProcessDefinition, ProcessDefinition]) -> None:
    designer = client_for('designer')
    movable = _instances(session)['甲某']
    response = designer.post(f'/designer/migrations/instances/{movable.id}',
                             data=_form(designer, reason=REASON, revision=str(movable.revision)))
    assert response.status_code == 302 and response.headers['Location'] == f'{PREVIEW}?from=1&to=2'
    assert '已将案件' in designer.get(response.headers['Location']).get_data(as_text=True)
    moved = _instances(session)['甲某']
    assert moved.definition_id == versions[1].id
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'instance.migrated')).one()
    assert event.instance_id == movable.id and event.note == REASON


def test_single_move_with_a_stale_revision_is_refused(client_for: Callable[[str], FlaskClient], session: Session,
                                                      versions: object) -> None:
    designer = client_for('designer')
    movable = _instances(session)['甲某']
    before = _state(session)
    response = designer.post(f'/designer/migrations/instances/{movable.id}',
                             data=_form(designer, reason=REASON, revision=str(movable.revision - 1)))
    assert response.status_code == 302
    assert '案件已被他人更新，请刷新后重试。' in designer.get(response.headers['Location']).get_data(as_text=True)
    assert _state(session) == before


def test_blocked_single_move_is_refused_with_the_reasons(client_for: Callable[[str], FlaskClient],
                                                         session: Session, versions: object) -> None:
    designer = client_for('designer')
    blocked = _instances(session)['乙某']
    before = _state(session)
    response = designer.post(f'/designer/migrations/instances/{blocked.id}',
                             data=_form(designer, reason=REASON, revision=str(blocked.revision)))
    assert response.status_code == 302
    text = designer.get(response.headers['Location']).get_data(as_text=True)
    assert '该实例不能迁移到目标版本。' in text and '当前步骤“审核”在新版本中已删除。' in text
    assert _state(session) == before


# -- security ---------------------------------------------------------------------------------------------

def test_posts_without_the_csrf_token_are_refused(client_for: Callable[[str], FlaskClient], session: Session,
                                                  versions: object) -> None:
    designer = client_for('designer')
    movable = _instances(session)['甲某']
    before = _state(session)
    for path, data in ((PREVIEW, {'from': '1', 'to': '2', 'instance': str(movable.id), 'reason': REASON}),
                       (f'/designer/migrations/instances/{movable.id}',
                        {'from': '1', 'to': '2', 'reason': REASON, 'revision': str(movable.revision)})):
        response = designer.post(path, data=data)
        assert response.status_code == 400 and '页面已过期' in response.get_data(as_text=True)
    assert _state(session) == before


def _batch(session: Session, people: dict[str, User]) -> MigrationBatch:
    """A batch of the designer's, not run yet."""
    v1, v2 = session.scalars(sa.select(ProcessDefinition).order_by(ProcessDefinition.version)).all()
    batch = start_batch(session, v1, v2, [_instances(session)['甲某'].id], actor=people['designer'], reason=REASON)
    session.commit()
    return batch


@pytest.mark.parametrize('username', ['staff', 'officer'])
def test_only_designers_may_use_the_pages(client_for: Callable[[str], FlaskClient], session: Session,
                                          versions: object, people: dict[str, User], username: str) -> None:
    batch = _batch(session, people)
    client = client_for(username)
    movable = _instances(session)['甲某']
    before = _state(session)
    for path in (PREVIEW, '/designer/migrations/', f'/designer/migrations/batches/{batch.id}'):
        assert client.get(path).status_code == 403, path
    progress = client.get(f'/designer/migrations/batches/{batch.id}/progress')
    assert progress.status_code == 403 and progress.get_json()['error'] == 'forbidden'
    token = csrf_token(client, '/tasks')
    for path in (PREVIEW, f'/designer/migrations/instances/{movable.id}'):
        response = client.post(path, data={'csrf_token': token, 'from': '1', 'to': '2', 'reason': REASON,
                                           'instance': str(movable.id), 'revision': str(movable.revision)})
        assert response.status_code == 403, path
    assert _state(session) == before


def test_anonymous_callers_are_sent_to_log_in(client: FlaskClient, session: Session, versions: object,
                                              people: dict[str, User]) -> None:
    batch = _batch(session, people)
    response = client.get(PREVIEW)
    assert response.status_code == 302 and response.headers['Location'].startswith('/login')
    assert client.get(f'/designer/migrations/batches/{batch.id}/progress').status_code == 401


def test_designers_of_another_subtree_see_nothing_of_it(client_for: Callable[[str], FlaskClient], session: Session,
                                                        versions: object, people: dict[str, User], org: Org,
                                                        create_member: Callable[..., User]) -> None:
    batch = _batch(session, people)
    create_member('designer2', 'designer', org.other_county)
    other = client_for('designer2')
    assert page(other.get(PREVIEW)).xpath('//tr[@data-instance-id]') == []
    assert other.get(f'/designer/migrations/batches/{batch.id}').status_code == 404
    assert other.get(f'/designer/migrations/batches/{batch.id}/progress').status_code == 404
    assert other.get('/designer/migrations/batches/999999').status_code == 404
    movable = _instances(session)['甲某']
    before = _state(session)
    response = other.post(f'/designer/migrations/instances/{movable.id}',
                          data={'csrf_token': csrf_token(other, PREVIEW), 'from': '1', 'to': '2', 'reason': REASON,
                                'revision': str(movable.revision)})
    assert response.status_code == 404
    assert _state(session) == before
    assert session.scalar(sa.select(sa.func.count()).select_from(Job).where(Job.kind == 'migration')) == 1


def test_same_version_twice_is_refused(client_for: Callable[[str], FlaskClient], session: Session,
                                       versions: object) -> None:
    designer = client_for('designer')
    movable = _instances(session)['甲某']
    before = _state(session)
    response = designer.post(PREVIEW, data=_form(designer, instance=[str(movable.id)], reason=REASON, to='1'))
    assert response.status_code == 400 and '目标版本须不同于当前版本。' in response.get_data(as_text=True)
    assert _state(session) == before


def test_pages_render_in_english(client_for: Callable[[str], FlaskClient], session: Session, versions: object,
                                 people: dict[str, User]) -> None:
    batch = _batch(session, people)
    designer = client_for('designer')
    for path in (f'{PREVIEW}?lang=en', f'/designer/migrations/batches/{batch.id}', '/designer/migrations/'):
        response = designer.get(path)
        assert response.status_code == 200, path
        assert page(response).get('lang') == 'en'
