"""Comments on a case: validation, access (404 outside the subtree), the task check, ordering and audit."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import runtime
from engine.access import load_scope
from engine.audit import verify_chain
from engine.clock import FrozenClock
from engine.comments import MAX_BODY_LENGTH, add_comment, case_task, list_comments
from engine.errors import NotFound, ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.comments import Comment
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.directory import Org

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
START = {'person_name': '谢某某', 'received_on': '2025-09-26', 'summary': '测试'}


@pytest.fixture
def demo_case(session: Session, org: Org, people: dict[str, User],
              deploy_file: Callable[[str], object]) -> tuple[Case, HumanTask]:
    deploy_file(DEMO)
    case, tasks = runtime.start_case(session, 'demo_intake', START, actor=people['staff'], org_unit=org.township)
    session.commit()
    return case, tasks[0]


def _comment(session: Session, case: Case, body: str, user: User, task: HumanTask | None = None) -> Comment:
    return add_comment(session, case, body, actor=user, scope=load_scope(session, user), task=task)


def _count(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Comment)) or 0


def test_comment_is_stored_trimmed_with_author_and_task(session: Session, demo_case: tuple[Case, HumanTask],
                                                        people: dict[str, User]) -> None:
    case, task = demo_case
    comment = _comment(session, case, '  已电话联系当事人。\r\n明日走访。  ', people['staff'], task)
    session.commit()
    stored = session.get(Comment, comment.id, populate_existing=True)
    assert stored is not None and stored.body == '已电话联系当事人。\n明日走访。'
    assert stored.author_id == people['staff'].id and stored.task_id == task.id and stored.case_id == case.id
    assert stored.created_dt.tzinfo is not None


def test_comment_without_task_is_about_the_case(session: Session, demo_case: tuple[Case, HumanTask],
                                               people: dict[str, User]) -> None:
    case, _ = demo_case
    assert _comment(session, case, '案件情况说明', people['chief']).task_id is None


@pytest.mark.parametrize('body', ['', '   ', '\n\t', '\x00\x1b'])
def test_empty_comment_is_refused(session: Session, demo_case: tuple[Case, HumanTask], people: dict[str, User],
                                  body: str) -> None:
    case, _ = demo_case
    with pytest.raises(ValidationFailed) as caught:
        _comment(session, case, body, people['staff'])
    assert caught.value.fields == {'body': ['请填写意见内容。']}
    session.rollback()
    assert _count(session) == 0


def test_comment_longer_than_the_limit_is_refused_and_the_limit_itself_accepted(
        session: Session, demo_case: tuple[Case, HumanTask], people: dict[str, User]) -> None:
    case, _ = demo_case
    with pytest.raises(ValidationFailed) as caught:
        _comment(session, case, '意' * (MAX_BODY_LENGTH + 1), people['staff'])
    assert caught.value.fields['body'] == ['意见不能超过 2000 个字。']
    session.rollback()
    assert _count(session) == 0
    assert len(_comment(session, case, '意' * MAX_BODY_LENGTH, people['staff']).body) == MAX_BODY_LENGTH


def test_control_characters_are_dropped_but_line_breaks_kept(session: Session, demo_case: tuple[Case, HumanTask],
                                                             people: dict[str, User]) -> None:
    case, _ = demo_case
    comment = _comment(session, case, '第一行\x00\n第二行\u202e反向', people['staff'])
    assert comment.body == '第一行\n第二行反向'


def test_outsider_gets_not_found_and_nothing_is_written(session: Session, demo_case: tuple[Case, HumanTask],
                                                        people: dict[str, User]) -> None:
    case, _ = demo_case
    for user in (people['outsider'], people['designer']):
        with pytest.raises(NotFound):
            _comment(session, case, '越权意见', user)
        session.rollback()
    assert _count(session) == 0
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                          .where(AuditEvent.kind == 'comment.added')) == 0


def test_task_of_another_case_is_refused(session: Session, demo_case: tuple[Case, HumanTask], org: Org,
                                         people: dict[str, User]) -> None:
    case, _ = demo_case
    _, [other_task] = runtime.start_case(session, 'demo_intake', START, actor=people['staff'],
                                         org_unit=org.township)
    session.commit()
    with pytest.raises(ValidationFailed) as caught:
        _comment(session, case, '意见', people['staff'], other_task)
    assert caught.value.fields == {'task_id': ['该任务不属于此案件。']}
    for bad_id in (other_task.id, 999_999, 0, 10**30):
        with pytest.raises(ValidationFailed):
            case_task(session, case, bad_id)


def test_case_task_finds_the_cases_own_task(session: Session, demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    assert case_task(session, case, task.id) is task
    assert case_task(session, case, None) is None


def test_list_comments_is_oldest_first_with_authors(session: Session, demo_case: tuple[Case, HumanTask],
                                                    people: dict[str, User], clock: FrozenClock) -> None:
    case, task = demo_case
    _comment(session, case, '第一条', people['staff'], task)
    clock.advance(timedelta(minutes=5))
    _comment(session, case, '第二条', people['chief'])
    session.commit()
    comments = list_comments(session, case)
    assert [(c.body, c.author.display_name) for c in comments] == [('第一条', 'staff'), ('第二条', 'chief')]


def test_comment_is_audited_with_id_and_excerpt(session: Session, demo_case: tuple[Case, HumanTask],
                                                people: dict[str, User]) -> None:
    case, task = demo_case
    comment = _comment(session, case, '当事人情绪稳定，' + '详' * 100, people['staff'], task)
    session.commit()
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'comment.added')).one()
    assert event.case_id == case.id and event.human_task_id == task.id and event.actor_id == people['staff'].id
    assert event.after is not None and event.after['comment_id'] == comment.id
    excerpt = event.after['excerpt']
    assert excerpt.startswith('当事人情绪稳定，') and excerpt.endswith('…') and len(excerpt) == 60
    assert verify_chain(session).ok
