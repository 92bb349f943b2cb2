"""Attachments: size limits, type sniffing, file names, database and folder storage, integrity, access, audit."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from engine import runtime
from engine.access import load_scope
from engine.attachments import (
    DEFAULT_MAX_BYTES,
    DOCX,
    JPEG,
    PDF,
    PNG,
    XLSX,
    AttachmentSettings,
    AttachmentUnreadable,
    clean_filename,
    get_attachment,
    list_attachments,
    open_attachment,
    size_text,
    sniff,
    store_attachment,
)
from engine.errors import NotFound, ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.comments import Attachment
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures import files
from tests.fixtures.directory import Org

DEMO = 'tests/fixtures/bpmn/demo_intake.bpmn'
START = {'person_name': '谢某某', 'received_on': '2025-09-26', 'summary': '测试'}
SMALL = AttachmentSettings(max_bytes=4096)
REFUSED_TYPE = '不支持此文件类型。只能上传 PDF 文件、JPEG 或 PNG 图片、Word 文档（.docx）或 Excel 表格（.xlsx）。'


@pytest.fixture
def demo_case(session: Session, org: Org, people: dict[str, User],
              deploy_file: Callable[[str], object]) -> tuple[Case, HumanTask]:
    deploy_file(DEMO)
    case, tasks = runtime.start_case(session, 'demo_intake', START, actor=people['staff'], org_unit=org.township)
    session.commit()
    return case, tasks[0]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return tmp_path / 'attachments'


def _store(session: Session, case: Case, name: str | None, data: bytes, user: User, *,
           settings: AttachmentSettings = SMALL, task: HumanTask | None = None) -> Attachment:
    return store_attachment(session, case, name, data, actor=user, scope=load_scope(session, user), task=task,
                            settings=settings)


def _rows(session: Session) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(Attachment)) or 0


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- what a file is ------------------------------------------------------------------------------------

@pytest.mark.parametrize('data, kind', [(files.PDF, PDF), (files.PNG, PNG), (files.JPEG, JPEG),
                                        (files.docx(), DOCX), (files.xlsx(), XLSX)],
                         ids=['pdf', 'png', 'jpeg', 'docx', 'xlsx'])
def test_accepted_kinds_are_recognised_by_their_bytes(data: bytes, kind: object) -> None:
    assert sniff(data) is kind


@pytest.mark.parametrize('data', [
    files.EXE, files.HTML, b'plain text, not a document', b'%PD', files.docm(),
    files.zip_of({'readme.txt': 'a plain zip'}),
    files.zip_of({'[Content_Types].xml': files.content_types('word/document.xml', files.WORD_MAIN)}),
    files.zip_of({'[Content_Types].xml': '<!DOCTYPE t [<!ENTITY a "aaaa">]><Types>&a;</Types>'}),
    files.zip_of({'[Content_Types].xml': 'not xml at all'}),
    b'PK\x03\x04 a truncated zip',
], ids=['exe', 'html', 'text', 'short', 'docm', 'zip', 'docx-without-main-part', 'doctype', 'bad-xml',
        'broken-zip'])
def test_anything_else_is_not_recognised(data: bytes) -> None:
    assert sniff(data) is None


def test_zip_bomb_content_types_are_not_read() -> None:
    bomb = files.zip_of({'[Content_Types].xml': ' ' * (2 * 1024 * 1024), 'word/document.xml': '<w/>'})
    assert sniff(bomb) is None


@pytest.mark.parametrize('name, data', [('scan.pdf', files.EXE), ('report.pdf', files.HTML),
                                        ('photo.jpg', b'GIF89a\x01\x00\x01\x00'), ('macro.docx', files.docm())],
                         ids=['renamed-exe', 'html-as-pdf', 'gif-as-jpg', 'docm-as-docx'])
def test_disguised_file_is_refused_with_the_allowed_types_and_nothing_written(
        session: Session, demo_case: tuple[Case, HumanTask], people: dict[str, User], folder: Path,
        name: str, data: bytes) -> None:
    case, _ = demo_case
    with pytest.raises(ValidationFailed) as caught:
        _store(session, case, name, data, people['staff'], settings=AttachmentSettings(folder=folder))
    assert caught.value.fields == {'file': [REFUSED_TYPE]}
    session.rollback()
    assert _rows(session) == 0 and _files(folder) == []


# -- size ----------------------------------------------------------------------------------------------

def test_default_limit_is_ten_mebibytes() -> None:
    assert AttachmentSettings().max_bytes == DEFAULT_MAX_BYTES == 10 * 1024 * 1024
    assert size_text(DEFAULT_MAX_BYTES) == '10 MB'


def test_file_over_the_limit_is_refused_and_one_at_the_limit_accepted(
        session: Session, demo_case: tuple[Case, HumanTask], people: dict[str, User]) -> None:
    case, _ = demo_case
    at_limit = files.PDF + b'0' * (SMALL.max_bytes - len(files.PDF))
    with pytest.raises(ValidationFailed) as caught:
        _store(session, case, 'big.pdf', at_limit + b'0', people['staff'])
    assert caught.value.fields == {'file': ['文件过大：附件不能超过 4 KB。']}
    session.rollback()
    assert _rows(session) == 0
    assert _store(session, case, 'ok.pdf', at_limit, people['staff']).size == SMALL.max_bytes


def test_empty_file_is_refused(session: Session, demo_case: tuple[Case, HumanTask], people: dict[str, User]) -> None:
    case, _ = demo_case
    with pytest.raises(ValidationFailed) as caught:
        _store(session, case, 'empty.pdf', b'', people['staff'])
    assert caught.value.fields == {'file': ['文件是空的，请重新选择。']}


@pytest.mark.parametrize('size, text', [(100, '1 KB'), (850 * 1024, '850 KB'), (2_516_582, '2.4 MB'),
                                        (5 * 1024 * 1024, '5 MB')])
def test_size_text_reads_in_kb_and_mb(size: int, text: str) -> None:
    assert size_text(size) == text


# -- names ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize('sent, kept', [
    ('C:\\Users\\刘晓燕\\Desktop\\调查笔录.pdf', '调查笔录.pdf'),
    ('../../etc/passwd.pdf', 'passwd.pdf'),
    ('报告\x00\x07\n.pdf', '报告.pdf'),
    ('invoice\u202efdp.exe.pdf', 'invoicefdp.exe.pdf'),
    ('扫描件', '扫描件.pdf'),
    ('scan.PDF', 'scan.PDF'),
    ('photo.jpg', 'photo.jpg.pdf'),
    ('', '附件.pdf'),
    (None, '附件.pdf'),
    ('  ...  ', '附件.pdf'),
])
def test_filename_keeps_the_clean_base_name_with_a_truthful_extension(sent: str | None, kept: str) -> None:
    assert clean_filename(sent, PDF) == kept


def test_long_filename_is_cut_to_200_characters_keeping_its_extension() -> None:
    name = clean_filename('案' * 300 + '.docx', DOCX)
    assert len(name) == 200 and name.endswith('.docx')


# -- storage -------------------------------------------------------------------------------------------

def test_database_storage_keeps_content_hash_and_size(session: Session, demo_case: tuple[Case, HumanTask],
                                                       people: dict[str, User]) -> None:
    case, task = demo_case
    attachment = _store(session, case, '现场照片.png', files.PNG, people['staff'], task=task)
    session.commit()
    stored = session.get(Attachment, attachment.id, populate_existing=True)
    assert stored is not None and stored.storage == 'database' and stored.stored_name is None
    assert stored.content_type == 'image/png' and stored.size == len(files.PNG) and stored.task_id == task.id
    assert stored.sha256 == hashlib.sha256(files.PNG).hexdigest()
    found, data = open_attachment(session, attachment.id, load_scope(session, people['chief']), settings=SMALL)
    assert found.id == attachment.id and data == files.PNG


def test_folder_storage_writes_a_random_name_and_reads_it_back(
        session: Session, demo_case: tuple[Case, HumanTask], people: dict[str, User], folder: Path) -> None:
    case, _ = demo_case
    settings = AttachmentSettings(folder=folder)
    attachment = _store(session, case, '协议.docx', files.docx(), people['staff'], settings=settings)
    session.commit()
    assert attachment.storage == 'folder' and attachment.content is None
    assert attachment.stored_name is not None and len(attachment.stored_name) == 32
    assert _files(folder) == [attachment.stored_name]  # no temp file left, no trace of the uploaded name
    assert (folder / attachment.stored_name).read_bytes() == files.docx()
    _, data = open_attachment(session, attachment.id, load_scope(session, people['staff']), settings=settings)
    assert data == files.docx()


def test_folder_file_is_removed_when_the_transaction_rolls_back(
        session: Session, demo_case: tuple[Case, HumanTask], people: dict[str, User], folder: Path) -> None:
    case, _ = demo_case
    _store(session, case, 'a.pdf', files.PDF, people['staff'], settings=AttachmentSettings(folder=folder))
    assert len(_files(folder)) == 1
    session.rollback()
    assert _files(folder) == [] and _rows(session) == 0


def test_folder_file_is_removed_when_the_session_closes_without_commit(
        session_factory: sessionmaker[Session], demo_case: tuple[Case, HumanTask], people: dict[str, User],
        folder: Path) -> None:
    case, _ = demo_case
    with session_factory() as other:
        staff = other.get(User, people['staff'].id)
        assert staff is not None
        store_attachment(other, other.get(Case, case.id), 'a.pdf', files.PDF, actor=staff,  # type: ignore[arg-type]
                         scope=load_scope(other, staff), settings=AttachmentSettings(folder=folder))
        assert len(_files(folder)) == 1
    assert _files(folder) == []


def test_tampered_folder_file_is_detected(session: Session, demo_case: tuple[Case, HumanTask],
                                          people: dict[str, User], folder: Path) -> None:
    case, _ = demo_case
    settings = AttachmentSettings(folder=folder)
    attachment = _store(session, case, '笔录.pdf', files.PDF, people['staff'], settings=settings)
    session.commit()
    (folder / str(attachment.stored_name)).write_bytes(files.PDF.replace(b'Catalog', b'Catalob'))  # same size
    with pytest.raises(AttachmentUnreadable) as caught:
        open_attachment(session, attachment.id, load_scope(session, people['staff']), settings=settings)
    assert '笔录.pdf' in caught.value.message and '不一致' in caught.value.message


def test_tampered_database_content_is_detected(session: Session, demo_case: tuple[Case, HumanTask],
                                               people: dict[str, User]) -> None:
    case, _ = demo_case
    attachment = _store(session, case, '笔录.pdf', files.PDF, people['staff'])
    session.commit()
    session.execute(sa.update(Attachment).where(Attachment.id == attachment.id).values(content=files.PDF + b'x'))
    session.commit()
    with pytest.raises(AttachmentUnreadable):
        open_attachment(session, attachment.id, load_scope(session, people['staff']), settings=SMALL)


def test_missing_folder_file_and_bad_stored_name_are_reported(
        session: Session, demo_case: tuple[Case, HumanTask], people: dict[str, User], folder: Path) -> None:
    case, _ = demo_case
    settings, scope = AttachmentSettings(folder=folder), load_scope(session, people['staff'])
    attachment = _store(session, case, '笔录.pdf', files.PDF, people['staff'], settings=settings)
    session.commit()
    (folder / str(attachment.stored_name)).unlink()
    with pytest.raises(AttachmentUnreadable) as caught:
        open_attachment(session, attachment.id, scope, settings=settings)
    assert '已不在存放目录中' in caught.value.message
    attachment.stored_name = '../../secret_key'
    session.commit()
    with pytest.raises(AttachmentUnreadable):
        open_attachment(session, attachment.id, scope, settings=settings)
    with pytest.raises(AttachmentUnreadable):
        open_attachment(session, attachment.id, scope, settings=AttachmentSettings())  # no folder configured


# -- access, listing, audit ----------------------------------------------------------------------------

def test_outsider_can_neither_store_nor_open(session: Session, demo_case: tuple[Case, HumanTask],
                                             people: dict[str, User]) -> None:
    case, _ = demo_case
    with pytest.raises(NotFound):
        _store(session, case, 'a.pdf', files.PDF, people['outsider'])
    session.rollback()
    attachment = _store(session, case, 'a.pdf', files.PDF, people['staff'])
    session.commit()
    for user in ('outsider', 'designer'):
        with pytest.raises(NotFound):
            open_attachment(session, attachment.id, load_scope(session, people[user]), settings=SMALL)
    scope = load_scope(session, people['staff'])
    for missing in (attachment.id + 1, 0, 10**30):
        with pytest.raises(NotFound):
            get_attachment(session, missing, scope)


def test_task_of_another_case_is_refused(session: Session, demo_case: tuple[Case, HumanTask], org: Org,
                                         people: dict[str, User]) -> None:
    case, _ = demo_case
    _, [other_task] = runtime.start_case(session, 'demo_intake', START, actor=people['staff'],
                                         org_unit=org.township)
    session.commit()
    with pytest.raises(ValidationFailed) as caught:
        _store(session, case, 'a.pdf', files.PDF, people['staff'], task=other_task)
    assert caught.value.fields == {'task_id': ['该任务不属于此案件。']}


def test_list_attachments_leaves_contents_unloaded(session_factory: sessionmaker[Session], session: Session,
                                                   demo_case: tuple[Case, HumanTask], people: dict[str, User]) -> None:
    case, _ = demo_case
    _store(session, case, 'a.pdf', files.PDF, people['staff'])
    _store(session, case, 'b.png', files.PNG, people['chief'])
    session.commit()
    with session_factory() as fresh:
        listed = list_attachments(fresh, fresh.get(Case, case.id))  # type: ignore[arg-type]
        assert [(a.filename, a.uploaded_by.display_name) for a in listed] == [('a.pdf', 'staff'), ('b.png', 'chief')]
        assert all('content' not in a.__dict__ for a in listed)


def test_upload_is_audited_with_name_size_and_hash(session: Session, demo_case: tuple[Case, HumanTask],
                                                   people: dict[str, User]) -> None:
    case, task = demo_case
    attachment = _store(session, case, '表格.xlsx', files.xlsx(), people['staff'], task=task)
    session.commit()
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'attachment.added')).one()
    assert event.case_id == case.id and event.human_task_id == task.id and event.actor_id == people['staff'].id
    assert event.after == {'attachment_id': attachment.id, 'filename': '表格.xlsx', 'size': len(files.xlsx()),
                           'sha256': hashlib.sha256(files.xlsx()).hexdigest(), 'content_type': XLSX.content_type}


def test_refused_upload_is_not_audited(session: Session, demo_case: tuple[Case, HumanTask],
                                       people: dict[str, User]) -> None:
    case, _ = demo_case
    with pytest.raises(ValidationFailed):
        _store(session, case, 'a.pdf', files.HTML, people['staff'])
    session.rollback()
    session.commit()
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                          .where(AuditEvent.kind == 'attachment.added')) == 0
