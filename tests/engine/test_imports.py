"""Bulk import (engine.imports): the dry run's problems per row, cases at the right step with the right due
date, an idempotent worker job, and files that must be refused."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from openpyxl import Workbook
from sqlalchemy.orm import Session, sessionmaker

from engine import imports, runtime
from engine.access import load_scope
from engine.clock import set_clock
from engine.errors import ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.imports import ImportBatch, ImportRow
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.tasks import HumanTask
from engine.worker import Worker
from tests.engine.import_support import (
    FEMALE_ID,
    MALE_ID,
    MALE_ID_2,
    World,
    build_world,
    csv_file,
    dispute,
    frozen_clock,
    offender,
)


@pytest.fixture
def world(session: Session, create_member: Any) -> Iterator[World]:
    previous = set_clock(frozen_clock())
    try:
        yield build_world(session, create_member)
    finally:
        set_clock(previous)


def _check(session: Session, world: World, kind: str, content: bytes, user: str = 'officer',
           filename: str = 'rows.csv') -> imports.DryRun:
    return imports.check_file(session, kind, content, filename, scope=load_scope(session, world.users[user]))


def _import(session: Session, session_factory: sessionmaker[Session], world: World, kind: str, content: bytes,
            user: str = 'officer') -> ImportBatch:
    actor = world.users[user]
    batch = imports.start_import(session, kind, content, 'rows.csv', actor=actor, scope=load_scope(session, actor))
    session.commit()
    worker = Worker(session_factory, name='import-test', batch_size=100, clock=frozen_clock())
    while worker.run_once():
        pass
    session.expire_all()
    return batch


def _counts(session: Session) -> tuple[int, ...]:
    return tuple(session.scalar(sa.select(sa.func.count()).select_from(model)) or 0
                 for model in (Case, ImportBatch, ImportRow, Job, AuditEvent, HumanTask))


def _open(session: Session, case_id: int) -> list[HumanTask]:
    return list(session.scalars(sa.select(HumanTask).join(ProcessInstance).where(
        HumanTask.case_id == case_id, HumanTask.status == 'open', ProcessInstance.is_lifecycle.is_(True))))


# -- the dry run ---------------------------------------------------------------------------------------

def test_dry_run_lists_every_rows_problems_and_writes_nothing(session: Session, world: World) -> None:
    rows = [offender(),
            offender(**{'姓名': '', '公民身份号码': '431381198503120016', '当前阶段': '解除'}),
            offender(**{'公民身份号码': FEMALE_ID, '机构代码': '430181'}),
            offender(**{'公民身份号码': MALE_ID}),
            offender(**{'公民身份号码': MALE_ID_2, '管理类别': '', '矫正结束日': '2025-01-01',
                        '矫正起始日': '2024-06-01', '判决生效日期': '2024-06-01', '报到日期': '2024-06-03'})]
    before = _counts(session)
    result = _check(session, world, 'offenders', csv_file('offenders', rows))
    assert _counts(session) == before
    problems = {row.line: row.problems for row in result.rows}
    assert problems[2] == []
    assert any(p.startswith('姓名：') for p in problems[3])
    assert any(p.startswith('公民身份号码：') for p in problems[3])
    assert any(p.startswith('当前阶段：只能是 交付接收、矫正执行') for p in problems[3])
    assert problems[4] == ['机构代码：机构代码“430181”不存在，或不在您的管辖范围内。']
    assert problems[5] == ['公民身份号码：与第 2 行重复。']
    assert '管理类别：处于“矫正执行”阶段的，此项为必填项。' in problems[6]
    assert '矫正结束日：矫正期已满，不能作为在矫人员导入。' in problems[6]
    assert result.problem_count == 4 and not result.ok


def test_dry_run_finds_an_open_case_and_a_unit_of_the_wrong_level(session: Session, world: World) -> None:
    officer = world.users['officer']
    runtime.start_case(session, 'corrections_reception', {
        'person_name': '李某', 'id_number': MALE_ID, 'correction_type': '缓刑', 'decision_body': '冷水江市人民法院',
        'crime': '危险驾驶罪', 'judgment_effective_on': '2025-11-10', 'term_start': '2025-11-10',
        'term_end': '2026-11-09'}, actor=officer, org_unit=world.county, scope=load_scope(session, officer))
    session.commit()
    result = _check(session, world, 'offenders', csv_file('offenders', [
        offender(), offender(**{'公民身份号码': FEMALE_ID, '机构代码': '431381'})]))
    assert result.rows[0].problems == ['公民身份号码：该公民身份号码已有在办的同类案件 SJ-2025-000001。']
    assert result.rows[1].problems == ['机构代码：处于“矫正执行”阶段的案件不能属于该级机构。']


def test_a_role_that_does_not_work_on_the_kind_may_not_import_it(session: Session, world: World) -> None:
    result = _check(session, world, 'disputes', csv_file('disputes', [dispute()]), user='officer')
    assert result.rows[0].problems == ['机构代码：您在该机构的角色不办理此类案件。']


# -- bad files ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(('content', 'filename', 'message'), [
    (b'', 'rows.csv', '文件中没有数据行。'),
    ('\ufeff姓名\r\n'.encode(), 'rows.csv', '文件中没有数据行。'),
    ('姓名,身高\r\n李某,170\r\n'.encode(), 'rows.csv', '缺少必需的列'),
    ('姓名,公民身份号码\r\n李某,1\r\n'.encode('utf-16'), 'rows.csv', '无法识别文件编码'),
    (b'PK\x03\x04not really a zip', 'rows.xlsx', '无法读取该 XLSX 文件'),
    (b'x' * (imports.limits.max_bytes + 1), 'rows.csv', '文件过大'),
    (b'a,b\r\n', 'rows.pdf', '只能导入 CSV 或 XLSX 文件。'),
])
def test_a_bad_file_is_refused_as_a_whole(session: Session, world: World, content: bytes, filename: str,
                                          message: str) -> None:
    with pytest.raises(ValidationFailed) as error:
        _check(session, world, 'offenders', content, filename=filename)
    assert message in error.value.message


def test_too_many_rows_are_refused(session: Session, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, 'limits', imports.ImportLimits(max_rows=3))
    with pytest.raises(ValidationFailed, match='数据行过多'):
        _check(session, world, 'offenders', csv_file('offenders', [offender()] * 4))


def test_a_gb18030_csv_reads_like_utf8(session: Session, world: World) -> None:
    result = _check(session, world, 'offenders', csv_file('offenders', [offender()], encoding='gb18030'))
    assert result.ok and result.rows[0].values['person_name'] == '李某'


def test_formula_cells_are_refused_in_csv_and_xlsx(session: Session, world: World) -> None:
    evil = offender(**{'姓名': '=HYPERLINK("http://evil.example","李某")', '居住地': '@SUM(1+1)'})
    result = _check(session, world, 'offenders', csv_file('offenders', [evil]))
    assert '姓名：单元格内容不能以 = + - @ 开头（可能是公式）。' in result.rows[0].problems
    assert '居住地：单元格内容不能以 = + - @ 开头（可能是公式）。' in result.rows[0].problems
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    headers = [c.header for c in imports.import_kind('offenders').all_columns]
    sheet.append(headers)
    sheet.append([offender().get(h, '') for h in headers])
    sheet['A2'] = '=CONCATENATE("李","某")'
    out = io.BytesIO()
    book.save(out)
    result = _check(session, world, 'offenders', out.getvalue(), filename='rows.xlsx')
    assert '姓名：单元格内容不能以 = + - @ 开头（可能是公式）。' in result.rows[0].problems


def test_the_xlsx_template_filled_in_is_read_back(session: Session, world: World) -> None:
    from openpyxl import load_workbook

    kind = imports.import_kind('offenders')
    book = load_workbook(io.BytesIO(imports.template_xlsx(kind)))
    sheet = book.worksheets[0]
    headers = [cell.value for cell in sheet[1]]
    assert headers == [c.header for c in kind.all_columns]
    for position, header in enumerate(headers, start=1):
        sheet.cell(2, position, offender()[str(header)])
    out = io.BytesIO()
    book.save(out)
    result = _check(session, world, 'offenders', out.getvalue(), filename='filled.xlsx')
    assert result.ok and result.rows[0].values['id_number'] == MALE_ID
    assert imports.template_csv(kind).startswith('\ufeff姓名,'.encode())


# -- the import ----------------------------------------------------------------------------------------

def test_an_offender_imported_at_supervision_waits_for_the_end_of_the_term(
        session: Session, session_factory: sessionmaker[Session], world: World) -> None:
    batch = _import(session, session_factory, world, 'offenders', csv_file('offenders', [offender()]))
    row = session.scalars(sa.select(ImportRow).where(ImportRow.batch_id == batch.id)).one()
    assert row.status == 'imported', row.message
    case = session.get(Case, row.case_id)
    assert case is not None and case.org_unit_id == world.township.id and case.management_level == '普管'
    assert _open(session, case.id) == []
    lifecycle = next(i for i in case.instances if i.is_lifecycle)
    assert lifecycle.status == 'waiting'
    kinds = sorted(i.definition.key for i in case.instances if not i.is_lifecycle)
    assert 'corrections_release' in kinds and 'corrections_report' in kinds
    done = session.scalars(sa.select(HumanTask).where(HumanTask.case_id == case.id,
                                                      HumanTask.status == 'completed')).all()
    assert {t.bpmn_id for t in done} >= {'receipt', 'declare', 'team', 'approve_level'}
    assert all(t.completed_by_id is None for t in done)
    events = session.scalars(sa.select(AuditEvent).where(AuditEvent.case_id == case.id)).all()
    assert any(e.kind == 'import.row_imported' for e in events)
    assert any(e.kind == 'task.completed' and e.note == '批量导入' and (e.after or {}).get('imported') for e in events)
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                          .where(AuditEvent.kind == 'import.started')) == 1
    assert session.get(ImportBatch, batch.id).status == 'done'  # type: ignore[union-attr]


def test_an_offender_imported_at_reception_gets_the_due_date_counted_from_the_judgment(
        session: Session, session_factory: sessionmaker[Session], world: World) -> None:
    row = offender(**{'当前阶段': '交付接收', '判决生效日期': '2025-11-14', '矫正起始日': '2025-11-14',
                      '收到法律文书日期': '2025-11-17', '报到日期': ''})
    batch = _import(session, session_factory, world, 'offenders', csv_file('offenders', [row]))
    imported = session.scalars(sa.select(ImportRow).where(ImportRow.batch_id == batch.id)).one()
    assert imported.status == 'imported', imported.message
    by_hand, _ = runtime.start_case(session, 'corrections_reception', {
        **imports.import_kind('offenders').start_data({**imported.data, 'id_number': FEMALE_ID})},
        actor=world.users['officer'], org_unit=world.township, scope=load_scope(session, world.users['officer']))
    due = {t.bpmn_id: t.due_dt for t in _open(session, imported.case_id or 0)}
    expected = {t.bpmn_id: t.due_dt for t in _open(session, by_hand.id)}
    assert set(due) == {'receipt', 'report'}
    assert due == expected
    # 10 days from 2025-11-14 is 11-24 (a Monday), the end of that day in Beijing
    assert due['report'] is not None and due['report'].isoformat() == '2025-11-24T15:59:59+00:00'


def test_a_dispute_imported_at_mediation_counts_30_working_days_from_acceptance(
        session: Session, session_factory: sessionmaker[Session], world: World) -> None:
    batch = _import(session, session_factory, world, 'disputes', csv_file('disputes', [dispute()]), user='mediator')
    row = session.scalars(sa.select(ImportRow).where(ImportRow.batch_id == batch.id)).one()
    assert row.status == 'imported', row.message
    (task,) = _open(session, row.case_id or 0)
    assert task.bpmn_id == 'session_county'
    # 30 working days after 2025-11-05 (Wednesday): 2025-12-17, end of day in Beijing
    assert task.due_dt is not None and task.due_dt.isoformat() == '2025-12-17T15:59:59+00:00'
    assert (task.due_rule or {}).get('start_on', '2025-11-05') == '2025-11-05'


def test_rerunning_a_batch_imports_nothing_twice(session: Session, session_factory: sessionmaker[Session],
                                                 world: World) -> None:
    batch = _import(session, session_factory, world, 'offenders', csv_file('offenders', [
        offender(), offender(**{'公民身份号码': FEMALE_ID, '姓名': '张某', '当前阶段': '交付接收'})]))
    before = _counts(session)
    for job in session.scalars(sa.select(Job).where(Job.kind == imports.JOB_KIND)).all():
        imports.run_import_job(session, job)
    session.commit()
    assert _counts(session) == before
    assert session.get(ImportBatch, batch.id).imported_count == 2  # type: ignore[union-attr]


def test_a_row_that_fails_when_its_turn_comes_leaves_nothing_and_the_others_go_on(
        session: Session, session_factory: sessionmaker[Session], world: World,
        monkeypatch: pytest.MonkeyPatch) -> None:
    officer = world.users['officer']
    content = csv_file('offenders', [offender(), offender(**{'公民身份号码': FEMALE_ID, '姓名': '张某'})])
    batch = imports.start_import(session, 'offenders', content, 'rows.csv', actor=officer,
                                 scope=load_scope(session, officer))
    session.commit()
    # Meanwhile someone opens a case for the first person by hand.
    runtime.start_case(session, 'corrections_reception', imports.import_kind('offenders').start_data(
        {k: v for k, v in session.scalars(sa.select(ImportRow).where(ImportRow.row_number == 2)).one().data.items()}),
        actor=officer, org_unit=world.township, scope=load_scope(session, officer))
    session.commit()
    cases_before = session.scalar(sa.select(sa.func.count()).select_from(Case))
    worker = Worker(session_factory, name='import-test', batch_size=100, clock=frozen_clock())
    while worker.run_once():
        pass
    session.expire_all()
    rows = {r.row_number: r for r in session.scalars(sa.select(ImportRow).where(ImportRow.batch_id == batch.id))}
    assert rows[2].status == 'failed' and '已有在办的同类案件' in (rows[2].message or '')
    assert rows[2].case_id is None
    assert rows[3].status == 'imported'
    assert session.scalar(sa.select(sa.func.count()).select_from(Case)) == (cases_before or 0) + 1


def test_a_file_with_problems_cannot_be_imported(session: Session, world: World) -> None:
    before = _counts(session)
    officer = world.users['officer']
    with pytest.raises(ValidationFailed, match='1 行存在问题'):
        imports.start_import(session, 'offenders', csv_file('offenders', [offender(**{'姓名': ''})]), 'x.csv',
                             actor=officer, scope=load_scope(session, officer))
    session.rollback()
    assert _counts(session) == before
