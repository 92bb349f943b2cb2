"""The case file (卷宗): a dispute run to agreement and closure, and a corrections case from reception to release,
gathered through the real engine into the standard order, every document and attachment once in its section."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.access import load_scope
from engine.attachments import AttachmentSettings, store_attachment
from engine.casefile import (
    CORRECTIONS_LAYOUT,
    DISPUTE_LAYOUT,
    EMBED_MAX_BYTES,
    AttachmentEntry,
    CaseFile,
    DocumentEntry,
    StartEntry,
    TaskEntry,
    build_case_file,
    check_export,
    record_export,
)
from engine.errors import AccessDenied, NotFound
from engine.models.audit import AuditEvent
from engine.models.cases import Case, CaseAccessGrant, Document
from engine.models.comments import Attachment
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures.files import JPEG, PDF, PNG
from tests.workflows.corrections import conftest as corrections_fixtures
from tests.workflows.corrections.conftest import Corrections
from tests.workflows.disputes import conftest as disputes_fixtures
from tests.workflows.disputes.conftest import Driver, agreement_data, session_data

# The lifecycles' drivers, as the workflow tests use them (pytest finds fixtures by their module-level names).
corrections = corrections_fixtures.corrections
deployed, driver, taojiang, worker = (disputes_fixtures.deployed, disputes_fixtures.driver, disputes_fixtures.taojiang,
                                      disputes_fixtures.worker)

SETTINGS = AttachmentSettings()
FOLLOWUP = {'visit_on': '2025-10-15', 'visit_method': '电话回访', 'performance_status': 'performed',
            'paid_amount': '18000.00', 'satisfaction': '满意'}
#: where each document kind of these runs belongs (the standard order, written out rather than read from the layout)
DISPUTE_HOMES = {'registration_form': 'application', 'rights_notice': 'notices', 'session_record': 'sessions',
                 'agreement': 'agreement', 'followup_record': 'followup'}
CORRECTIONS_HOMES = {'declaration': 'reception', 'leave_approval': 'approvals', 'reprimand': 'rewards_sanctions',
                     'release_certificate': 'release', 'termination_notice': 'release', 'report_notice': 'reception'}


def _attach(session: Session, case: Case, user: User, name: str, data: bytes,
            task: HumanTask | None = None) -> Attachment:
    attachment = store_attachment(session, case, name, data, actor=user, scope=load_scope(session, user), task=task,
                                  settings=SETTINGS)
    session.commit()
    return attachment


def dispute_to_closure(driver: Driver) -> tuple[Case, dict[str, Attachment]]:
    """A dispute accepted, settled at its first county session, confirmed by the court, performed, visited and
    closed; a scan and a photo uploaded on the case, a ruling on the court task, a receipt on the 回访."""
    d, mediator = driver, driver.user('mediator')
    case = d.start()
    d.accept(case)
    files = {'scan': _attach(d.session, case, mediator, '病历复印件.pdf', PDF),
             'photo': _attach(d.session, case, mediator, '现场照片.png', PNG),
             'large': _attach(d.session, case, mediator, '大幅照片.jpg', JPEG + b'\0' * (EMBED_MAX_BYTES + 1))}
    d.complete(case, 'session_county', session_data('agreement', on='2025-09-26'))
    d.complete(case, 'draft_agreement', agreement_data(signed_on='2025-09-26'))
    d.complete(case, 'confirmation', {'confirmation_decision': 'applied', 'confirmation_applied_on': '2025-09-26',
                                      'court_name': '桃江县人民法院'})
    files['ruling'] = _attach(d.session, case, mediator, '民事裁定书.pdf', PDF, d.task(case, 'court_ruling'))
    d.complete(case, 'court_ruling', {'court_case_number': '（2025）湘0922民特12号',
                                      'court_ruling_result': 'confirmed', 'ruling_on': '2025-09-26'})
    d.at('2025-10-15 09:01')
    files['receipt'] = _attach(d.session, case, mediator, '收条.pdf', PDF, d.task(case, 'followup'))
    d.complete(case, 'followup', FOLLOWUP)
    d.complete(case, 'analyse_causes', {'hospital_problems': False})
    d.complete(case, 'close_review', {'review_opinion': '卷宗齐全，同意结案。'})
    return d.fresh(case), files


@pytest.fixture
def dispute_file(driver: Driver) -> tuple[CaseFile, dict[str, Attachment]]:
    case, files = dispute_to_closure(driver)
    assert case.status == 'closed'
    return build_case_file(driver.session, case, actor=driver.user('mediator'), settings=SETTINGS), files


def _keys(case_file: CaseFile) -> list[str]:
    return [section.rule.key for section in case_file.sections]


def _section_of(case_file: CaseFile, predicate: Any) -> list[str]:
    """The keys of the sections holding an entry ``predicate`` accepts, once per entry."""
    return [section.rule.key for section in case_file.sections for item in section.items if predicate(item.entry)]


def test_dispute_file_is_in_the_standard_order(dispute_file: tuple[CaseFile, dict[str, Attachment]]) -> None:
    case_file, _ = dispute_file
    assert case_file.layout is DISPUTE_LAYOUT
    assert _keys(case_file) == ['cover', 'contents', 'application', 'notices', 'evidence', 'sessions', 'agreement',
                                'performance', 'followup', 'confirmation', 'summary', 'back_cover']
    assert [section.ordinal for section in case_file.sections] == list(range(1, 13))
    # nothing fell outside the standard sections
    assert case_file.section('other') is None and case_file.open_tasks == ()


def test_dispute_documents_each_appear_once_in_their_section(driver: Driver, dispute_file: tuple[
        CaseFile, dict[str, Attachment]]) -> None:
    case_file, _ = dispute_file
    issued = driver.documents(case_file.case)
    assert {document.kind for document in issued} >= {'registration_form', 'rights_notice', 'agreement',
                                                       'followup_record'}
    for document in issued:
        homes = _section_of(case_file, lambda e, d=document: isinstance(e, DocumentEntry) and e.document.id == d.id)
        assert homes == [DISPUTE_HOMES[document.kind]], (document.kind, homes)
    assert len(case_file.entries('document')) == len(issued)


def test_dispute_attachments_each_appear_once_in_their_section(dispute_file: tuple[
        CaseFile, dict[str, Attachment]]) -> None:
    case_file, files = dispute_file
    expected = {'scan': 'evidence', 'photo': 'evidence', 'large': 'evidence', 'ruling': 'confirmation',
                'receipt': 'performance'}
    for name, attachment in files.items():
        homes = _section_of(case_file, lambda e, a=attachment: isinstance(e, AttachmentEntry)
                            and e.attachment.id == a.id)
        assert homes == [expected[name]], (name, homes)
    assert len(case_file.entries('attachment')) == len(files)


def test_small_images_are_embedded_and_large_ones_listed(dispute_file: tuple[CaseFile, dict[str, Attachment]]) -> None:
    case_file, files = dispute_file
    by_id = {e.attachment.id: e for e in case_file.entries('attachment') if isinstance(e, AttachmentEntry)}
    photo, large, scan = by_id[files['photo'].id], by_id[files['large'].id], by_id[files['scan'].id]
    assert photo.image_uri is not None and photo.image_uri.startswith('data:image/png;base64,')
    assert large.image_uri is None and not large.unreadable and large.attachment.size > EMBED_MAX_BYTES
    assert scan.image_uri is None
    assert by_id[files['receipt'].id].task_title == '回访'


def test_dispute_tasks_and_start_record_carry_their_data(dispute_file: tuple[CaseFile, dict[str, Attachment]]) -> None:
    case_file, _ = dispute_file
    tasks = {e.task.bpmn_id: e for e in case_file.entries('task') if isinstance(e, TaskEntry)}
    assert _section_of(case_file, lambda e: isinstance(e, TaskEntry) and e.task.bpmn_id == 'court_ruling') == [
        'confirmation']
    assert tasks['court_ruling'].data['court_case_number'] == '（2025）湘0922民特12号'
    assert tasks['close_review'].data['review_opinion'] == '卷宗齐全，同意结案。'
    assert _section_of(case_file, lambda e: isinstance(e, TaskEntry) and e.task.bpmn_id == 'close_review') == [
        'summary']
    [start] = [e for e in case_file.entries('start') if isinstance(e, StartEntry)]
    assert _section_of(case_file, lambda e: isinstance(e, StartEntry)) == ['application']
    assert start.data['hospital'] == '桃江县某医院' and start.fields['hospital'].label and not start.is_request


def test_items_are_numbered_in_print_order_within_time_order(dispute_file: tuple[
        CaseFile, dict[str, Attachment]]) -> None:
    case_file, _ = dispute_file
    assert [item.number for item in case_file.items] == list(range(1, len(case_file.items) + 1))
    for section in case_file.sections:
        times = [item.entry.when for item in section.items]
        assert times == sorted(times), section.rule.key
        if section.rule.generated in ('cover', 'contents', 'back_cover'):
            assert section.items == ()
    history = [event.kind for event in case_file.history]
    assert history[0] == 'case.started' and 'case.closed' in history


def _corrections_to_release(c: Corrections) -> tuple[Case, dict[str, Attachment]]:
    """A 缓刑 case received, on a short leave, reprimanded, and released on expiry."""
    officer = c.users['lsj_officer']
    case = c.receive()
    files = {'judgment': _attach(c.session, case, officer, '判决书.pdf', PDF)}
    c.start('corrections_leave', {'case_id': case.id, 'leave_from': '2025-10-13', 'leave_to': '2025-10-17',
                                  'destination': '长沙市', 'reason': '陪同母亲就医', 'applied_on': '2025-10-10'},
            user='lsj_staff')
    c.complete('township_approve', {'approved': True, 'approval_opinion': '同意外出'}, 'lsj_staff', case)
    c.complete('away', {'returned_on': '2025-10-17', 'checkins': '每日视频核查正常'}, 'lsj_staff', case)
    c.start('corrections_sanction', {'case_id': case.id, 'kind': '训诫', 'facts': '未按规定时间报告'}, user='lsj_staff')
    files['statement'] = _attach(c.session, case, c.users['lsj_staff'], '询问笔录.pdf', PDF,
                                 c.task('investigate', case))
    c.complete('investigate', {'investigation': '经调查属实，本人承认', 'township_opinion': '建议给予'}, 'lsj_staff',
               case)
    c.complete('decide', {'approved': True, 'decided_on': '2025-10-10', 'decision_reason': '违反报告规定，情节轻微'},
               'lsj_officer', case)
    c.complete('serve', {'served_on': '2025-10-10', 'talk_notes': '已教育，本人表示改正'}, 'lsj_staff', case)
    c.clock.set(c.clock.now().replace(year=2026, month=8, day=26, hour=2))
    c.advance(minutes=1)
    c.complete('appraisal', {'self_summary_received': True, 'performance': '表现良好', 'appraisal_opinion': '遵纪守法',
                             'community_opinion': '同意解除', 'resettlement_handover': '已衔接安置帮教'},
               'lsj_staff', case)
    c.clock.set(c.clock.now().replace(month=9, day=24, hour=0))
    c.advance(minutes=1)
    c.complete('declare', {'declared_on': '2026-09-24', 'venue': '锡矿山司法所', 'attendees': '矫正小组'},
               'lsj_officer', case)
    c.complete('notify', {'notified_on': '2026-09-24', 'notified_bodies': '法院、检察院、公安'}, 'lsj_officer', case)
    return c.case(case), files


def test_corrections_file_follows_the_execution_and_work_files(corrections: Corrections) -> None:
    case, files = _corrections_to_release(corrections)
    assert case.status == 'closed'
    case_file = build_case_file(corrections.session, case, actor=corrections.users['lsj_officer'], settings=SETTINGS)
    assert case_file.layout is CORRECTIONS_LAYOUT
    keys = _keys(case_file)
    assert keys[:2] == ['cover', 'contents'] and keys[-2:] == ['summary', 'back_cover']
    # a periodic report (the 普管 monthly one) was started on the way: it is a work record
    assert keys == ['cover', 'contents', 'legal_documents', 'reception', 'approvals', 'rewards_sanctions', 'release',
                    'plan', 'supervision', 'evidence', 'summary', 'back_cover']
    # the 执行档案 comes whole before the 工作档案
    parts = [section.rule.part for section in case_file.sections if section.rule.part]
    assert parts == sorted(parts, key=['执行档案', '工作档案'].index)
    assert case_file.section('other') is None
    issued = list(corrections.session.scalars(sa.select(Document).where(Document.case_id == case.id)))
    assert {document.kind for document in issued} >= {'declaration', 'leave_approval', 'reprimand',
                                                       'release_certificate'}
    for document in issued:
        homes = _section_of(case_file, lambda e, d=document: isinstance(e, DocumentEntry) and e.document.id == d.id)
        assert homes == [CORRECTIONS_HOMES[document.kind]], (document.kind, homes)
    for attachment in files.values():
        homes = _section_of(case_file, lambda e, a=attachment: isinstance(e, AttachmentEntry)
                            and e.attachment.id == a.id)
        assert homes == ['evidence']
    tasks = {(e.task.process_key, e.task.bpmn_id): section.rule.key for section in case_file.sections
             for e in (item.entry for item in section.items) if isinstance(e, TaskEntry)}
    assert tasks[('corrections_reception', 'receipt')] == 'legal_documents'
    assert tasks[('corrections_reception', 'declare')] == 'reception'
    assert tasks[('corrections_release', 'declare')] == 'release'
    assert tasks[('corrections_reception', 'team')] == 'plan'
    assert tasks[('corrections_leave', 'township_approve')] == 'approvals'
    assert tasks[('corrections_sanction', 'decide')] == 'rewards_sanctions'
    starts = {e.process_key: key for key in keys for e in (item.entry for item in case_file.section(key).items)
              if isinstance(e, StartEntry)}  # type: ignore[union-attr]
    assert starts == {'corrections_reception': 'legal_documents', 'corrections_leave': 'approvals',
                      'corrections_sanction': 'rewards_sanctions', 'corrections_release': 'release',
                      'corrections_report': 'supervision'}


def test_export_is_audited_with_what_it_held(driver: Driver, dispute_file: tuple[
        CaseFile, dict[str, Attachment]]) -> None:
    case_file, files = dispute_file
    record_export(driver.session, case_file, b'<html>file</html>', channel='web')
    driver.session.commit()
    [event] = driver.audit(case_file.case, 'case.file_exported')
    assert event.actor_id == driver.user('mediator').id and event.org_path == case_file.case.org_path
    assert event.after['sha256'] == hashlib.sha256(b'<html>file</html>').hexdigest()
    assert event.after['filename'] == f'卷宗-{case_file.case.number}.html' and event.after['channel'] == 'web'
    assert sorted(event.after['attachments']) == sorted(a.id for a in files.values())
    assert event.after['sections'][0] == 'cover'


def test_only_the_cases_own_units_may_export(driver: Driver, dispute_file: tuple[
        CaseFile, dict[str, Attachment]]) -> None:
    session, case = driver.session, dispute_file[0].case
    check_export(session, load_scope(session, driver.user('mediator')), case)
    other = driver.user('other_mediator')
    with pytest.raises(NotFound):
        check_export(session, load_scope(session, other), case)
    session.rollback()
    session.add(CaseAccessGrant(case_id=case.id, org_path=driver.org.other_county.path, reason='移交',
                                granted_dt=case.created_dt))
    session.commit()
    with pytest.raises(AccessDenied):
        check_export(session, load_scope(session, other), case)
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.kind == 'case.file_exported')) == 0
