"""The audit log as supervisors read it: scoped to their subtree, filtered, paged; CSV and XLSX exports that
parse back, hold nothing from outside the subtree and are audited themselves."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from engine import audit, audit_log, runtime
from engine.access import load_scope
from engine.audit_log import (
    AuditFilter,
    count_events,
    export_csv,
    export_rows,
    export_xlsx,
    list_events,
    prepare_export,
)
from engine.clock import FrozenClock
from engine.definitions import deploy
from engine.errors import AccessDenied, ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.users import User
from tests.fixtures.directory import Org

DEMO = Path(__file__).resolve().parents[1] / 'fixtures' / 'bpmn' / 'demo_intake.bpmn'


@pytest.fixture
def log(session: Session, org: Org, people: dict[str, User], clock: FrozenClock) -> dict[str, Case]:
    """A deployment (a system event), a case at the county's township, one at the other county, and an event
    of the first case recorded without a unit (as older engine events were)."""
    deploy(session, DEMO.read_bytes(), actor=None, accept_warnings=True)
    session.commit()
    clock.advance(timedelta(days=1))
    mine, _ = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-27'},
                                 actor=people['staff'], org_unit=org.township)
    session.commit()
    clock.advance(timedelta(days=1))
    theirs, _ = runtime.start_case(session, 'demo_intake', {'person_name': '黄某', 'received_on': '2025-09-28'},
                                   actor=people['outsider'], org_unit=org.other_township)
    audit.record(session, 'instance.completed', actor=None, case_id=mine.id, note='=HYPERLINK("http://x")')
    session.commit()
    return {'mine': mine, 'theirs': theirs}


def _events(session: Session, user: User, **criteria: str) -> list[AuditEvent]:
    page = list_events(session, load_scope(session, user), AuditFilter.from_dict(criteria), limit=200)
    return page.events


def _case_ids(events: list[AuditEvent]) -> set[int | None]:
    return {event.case_id for event in events}


def test_each_reader_sees_their_part(session: Session, org: Org, people: dict[str, User], log: dict[str, Case],
                                    create_member: Callable[..., User]) -> None:
    mine, theirs = log['mine'].id, log['theirs'].id
    chief = _events(session, people['chief'])
    # The county's cases, and the users and roles given at its units; no deployment, nothing of the other county.
    assert _case_ids(chief) == {mine, None} and all(e.org_path and e.org_path.startswith(org.county.path)
                                                    for e in chief if e.case_id is None)
    assert {e.kind for e in chief if e.case_id is None} == {'user.created', 'membership.added'}
    assert any(e.org_path is None and e.case_id == mine for e in chief)  # follows its case's unit
    other = create_member('other_chief', 'supervisor', org.other_county)
    assert _case_ids(_events(session, other)) == {theirs, None}
    assert all(e.case_id == theirs or (e.org_path or '').startswith(org.other_county.path)
               for e in _events(session, other))
    province = create_member('province_chief', 'supervisor', org.province)
    everything = _events(session, province)
    assert _case_ids(everything) == {None, mine, theirs} and len(everything) == count_events(
        session, load_scope(session, province), AuditFilter(), cap=10_000)
    # 三员: the audit administrator reads the log, the system administrator (legacy ``admin``) does not.
    auditor = create_member('auditor', 'audit_admin', org.province)
    county_auditor = create_member('county_auditor', 'audit_admin', org.county)
    assert [e.id for e in _events(session, auditor)] == [e.id for e in _events(session, province)]
    system = {e.id for e in everything if e.org_path is None and e.case_id is None}
    assert {e.kind for e in everything if e.id in system} == {'definition.deployed'}
    county = {e.id for e in _events(session, people['chief'])}
    assert {e.id for e in _events(session, county_auditor)} == county | system
    for user in (people['staff'], create_member('admin1', 'admin', org.province),
                 create_member('sysadmin', 'system_admin', org.province),
                 create_member('secadmin', 'security_admin', org.province)):
        with pytest.raises(AccessDenied):
            _events(session, user)


def test_a_minors_case_events_are_read_from_its_county_down_only(session: Session, org: Org,
                                                                  people: dict[str, User], log: dict[str, Case],
                                                                  create_member: Callable[..., User]) -> None:
    # 社区矫正法 §54: the city and the province read nothing of a minor's case, the county reads it all
    minor = log['mine']
    minor.is_minor = True
    session.commit()
    city = create_member('city_chief', 'supervisor', org.city)
    province_auditor = create_member('auditor', 'audit_admin', org.province)
    for reader in (city, province_auditor):
        seen = _case_ids(_events(session, reader))
        assert minor.id not in seen and log['theirs'].id in seen, reader.username
        export = _export_csv(session, reader, AuditFilter())
        assert minor.number not in {row[5] for row in export}
    assert minor.id in _case_ids(_events(session, people['chief']))


def test_filters_narrow(session: Session, org: Org, people: dict[str, User], log: dict[str, Case],
                        create_member: Callable[..., User]) -> None:
    province = create_member('province_chief', 'supervisor', org.province)
    assert {e.kind for e in _events(session, province, kind='task.created')} == {'task.created'}
    assert {e.kind.split('.')[0] for e in _events(session, province, kind='case.*')} == {'case'}
    assert {e.actor_name for e in _events(session, province, actor='staff')} == {'staff'}
    assert {e.actor_name for e in _events(session, province, actor='系统')} == {'系统'}
    assert _case_ids(_events(session, province, case=log['theirs'].number)) == {log['theirs'].id}
    assert _case_ids(_events(session, province, org_unit=org.other_county.code)) == {log['theirs'].id, None}
    assert _case_ids(_events(session, province, date_from='2025-09-27', date_to='2025-09-27')) == {log['mine'].id}
    assert _case_ids(_events(session, province, date_to='2025-09-26')) == {None}
    with pytest.raises(ValidationFailed) as refused:
        _events(session, people['chief'], org_unit=org.other_county.code)
    assert refused.value.fields == {'org_unit': ['该机构不在您的辖区内。']}


@pytest.mark.parametrize('criteria, field', [
    ({'kind': 'task.completed; drop'}, 'kind'), ({'kind': 'Task'}, 'kind'), ({'date_from': '2025-02-30'}, 'date_from'),
    ({'date_from': '2025-10-02', 'date_to': '2025-10-01'}, 'date_to'), ({'actor': 'x' * 65}, 'actor'),
])
def test_bad_filters_name_their_field(criteria: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        AuditFilter.from_dict(criteria)
    assert set(refused.value.fields) == {field}


def test_keyset_paging_walks_newest_first(session: Session, people: dict[str, User], log: dict[str, Case]) -> None:
    scope, seen, cursor = load_scope(session, people['chief']), [], None
    while True:
        page = list_events(session, scope, AuditFilter(), before=cursor, limit=3)
        seen += [event.id for event in page.events]
        assert all(page.case_numbers[e.case_id] == log['mine'].number for e in page.events if e.case_id)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen))
    assert len(seen) == count_events(session, scope, AuditFilter())


def _export_csv(session: Session, user: User, wanted: AuditFilter) -> list[list[str]]:
    scope = load_scope(session, user)
    up_to = prepare_export(session, scope, wanted, actor=user, fmt='csv')
    text = ''.join(export_csv(export_rows(session, scope, wanted, up_to=up_to)))
    session.commit()
    assert text.startswith('\ufeff')
    return list(csv.reader(io.StringIO(text[1:])))


def test_csv_export_parses_back_and_holds_the_subtree_only(session: Session, people: dict[str, User],
                                                           log: dict[str, Case]) -> None:
    chief = people['chief']
    expected = sorted(_events(session, chief), key=lambda e: e.id)
    rows = _export_csv(session, chief, AuditFilter())
    assert rows[0] == list(audit_log.headers())
    body = rows[1:]
    assert [int(row[0]) for row in body] == [e.id for e in expected]
    assert {row[5] for row in body} == {log['mine'].number, ''}
    assert log['theirs'].number not in ''.join(''.join(row) for row in body)
    assert not any(row[6] in ('龙光桥司法所', '赫山区司法局') for row in body)
    assert [row[10] for row in body] == [e.hash for e in expected]
    started = next(row for row in body if row[4] == 'case.started')
    assert started[2] == 'staff' and started[6] == '桃花江镇司法所' and '谢某某' in started[8]
    # A note a user typed never becomes a live formula in the supervisor's spreadsheet.
    assert next(row for row in body if row[4] == 'instance.completed')[9] == '\'=HYPERLINK("http://x")'


def test_export_is_itself_audited_and_not_in_its_own_file(session: Session, people: dict[str, User],
                                                          log: dict[str, Case], org: Org) -> None:
    wanted = AuditFilter(kind='task.*')
    rows = _export_csv(session, people['chief'], wanted)
    exported = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'audit.exported')).one()
    assert exported.actor_id == people['chief'].id and exported.org_path == org.county.path
    assert exported.after == {'format': 'csv', 'rows': len(rows) - 1, 'up_to_id': exported.id - 1,
                              'filters': {'kind': 'task.*'}}
    assert all(row[4].startswith('task.') for row in rows[1:])
    assert audit.verify_chain(session).ok


def test_xlsx_export_parses_back(session: Session, people: dict[str, User], log: dict[str, Case]) -> None:
    chief = people['chief']
    scope = load_scope(session, chief)
    expected = sorted(_events(session, chief), key=lambda e: e.id)
    up_to = prepare_export(session, scope, AuditFilter(), actor=chief, fmt='xlsx')
    labels = {'case.started': '立案'}
    data = export_xlsx(export_rows(session, scope, AuditFilter(), up_to=up_to,
                                   label=lambda kind: labels.get(kind, kind)), title='审计日志')
    session.commit()
    sheet = load_workbook(io.BytesIO(data.read()), read_only=True).active
    rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert rows[0] == list(audit_log.headers())
    assert [row[0] for row in rows[1:]] == [e.id for e in expected]
    assert {row[5] for row in rows[1:]} == {log['mine'].number, None}
    started = next(row for row in rows[1:] if row[4] == 'case.started')
    assert started[3] == '立案' and started[1].date().isoformat() == '2025-09-27'
    formula = next(row for row in rows[1:] if row[4] == 'instance.completed')
    assert formula[9] == '=HYPERLINK("http://x")'  # stored as text, not as a formula


def test_too_wide_an_export_is_refused(session: Session, people: dict[str, User], log: dict[str, Case],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_log, 'EXPORT_MAX', 2)
    with pytest.raises(ValidationFailed) as refused:
        prepare_export(session, load_scope(session, people['chief']), AuditFilter(), actor=people['chief'],
                       fmt='csv')
    assert '2' in refused.value.message
    session.rollback()
    assert session.scalar(sa.select(sa.func.count()).where(AuditEvent.kind == 'audit.exported')) == 0
