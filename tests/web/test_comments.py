"""The 意见与附件 panel through the test client: posting with CSRF, uploads, downloads, refusals and access."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from engine import runtime
from engine.clock import FrozenClock
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.comments import Attachment, Comment
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.fixtures import files
from tests.fixtures.directory import Org
from tests.fixtures.web import csrf_token
from tests.web.conftest import START, page, text_of

Clients = Callable[[str], FlaskClient]
TYPE_MESSAGE = '不支持此文件类型。只能上传 PDF 文件、JPEG 或 PNG 图片、Word 文档（.docx）或 Excel 表格（.xlsx）。'


def _count(session: Session, model: type) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


def _audited(session: Session, kind: str) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.kind == kind)) or 0


def _comment(client: FlaskClient, case: Case, body: str, *, task: HumanTask | None = None,
             token_from: str | None = None) -> TestResponse:
    """Post the panel's comment form as the task page (or the case page) sends it."""
    origin = f'/tasks/{task.id}' if task else f'/cases/{case.id}'
    data = {'body': body, 'return_to': f'{origin}#discussion', 'csrf_token': csrf_token(client, token_from or origin)}
    if task:
        data['task_id'] = str(task.id)
    return client.post(f'/cases/{case.id}/comments', data=data)


def _upload(client: FlaskClient, case: Case, name: str, content: bytes, *, task: HumanTask | None = None,
            token_from: str | None = None) -> TestResponse:
    """Post the panel's upload form (multipart) as the task page (or the case page) sends it."""
    origin = f'/tasks/{task.id}' if task else f'/cases/{case.id}'
    data: dict[str, Any] = {'file': (io.BytesIO(content), name), 'return_to': f'{origin}#discussion',
                            'csrf_token': csrf_token(client, token_from or origin)}
    if task:
        data['task_id'] = str(task.id)
    return client.post(f'/cases/{case.id}/attachments', data=data, content_type='multipart/form-data')


def _alerts(response: TestResponse) -> list[str]:
    return [text_of(e) for e in page(response).xpath('//div[contains(@class, "alert-error")]')]


def _panel(response: TestResponse) -> Any:
    [panel] = page(response).xpath('//section[@id="discussion"]')
    return panel


def test_task_page_shows_the_panel_with_labelled_forms(client_for: Clients,
                                                       demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    panel = _panel(client_for('staff').get(f'/tasks/{task.id}'))
    assert text_of(panel.xpath('h2')[0]) == '意见与附件'
    assert '暂无意见。' in text_of(panel) and '暂无附件。' in text_of(panel)
    assert text_of(panel.xpath('.//label[@for="comment-body"]')[0]) == '填写意见'
    assert panel.xpath('.//textarea[@id="comment-body"]/@maxlength') == ['2000']
    assert text_of(panel.xpath('.//label[@for="attachment-file"]')[0]) == '上传附件'
    hint = text_of(panel.xpath('.//p[@id="attachment-file-hint"]')[0])
    assert 'PDF' in hint and 'JPEG' in hint and 'PNG' in hint and '.docx' in hint and '.xlsx' in hint
    assert '10 MB' in hint
    upload = panel.xpath('.//form[@enctype="multipart/form-data"]')[0]
    assert upload.get('action') == f'/cases/{case.id}/attachments'
    assert upload.xpath('.//input[@name="task_id"]/@value') == [str(task.id)]
    assert panel.xpath('.//input[@name="return_to"]/@value') == [f'/tasks/{task.id}#discussion'] * 2


def test_comment_posted_on_the_task_page_comes_back_to_it_marked(client_for: Clients, session: Session,
                                                                 demo_case: tuple[Case, HumanTask],
                                                                 clock: FrozenClock) -> None:
    case, task = demo_case
    staff = client_for('staff')
    response = _comment(staff, case, '已电话联系当事人，\n明日上午走访。', task=task)
    assert response.status_code == 302 and response.headers['Location'] == f'/tasks/{task.id}#discussion'
    shown = staff.get(f'/tasks/{task.id}')
    assert '意见已发表。' in text_of(page(shown))
    [entry] = _panel(shown).xpath('.//li[starts-with(@id, "comment-")]')
    assert text_of(entry.xpath('.//span[@class="tl-actor"]')[0]) == '刘晓燕'
    assert text_of(entry.xpath('.//time')[0]) == '2025年9月26日 09:00'
    assert '本任务' in text_of(entry)
    assert entry.xpath('.//p[@class="tl-note"]/br') and '明日上午走访。' in text_of(entry)
    comment = session.scalars(sa.select(Comment)).one()
    assert comment.task_id == task.id and comment.author_id is not None
    # On the case page the same comment names the task it was about.
    [on_case] = _panel(staff.get(f'/cases/{case.id}')).xpath('.//li[starts-with(@id, "comment-")]')
    assert '关于“登记案件情况”' in text_of(on_case) and '本任务' not in text_of(on_case)


def test_comment_posted_on_the_case_page_is_about_the_case(client_for: Clients, session: Session,
                                                           demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    response = _comment(client_for('officer'), case, '县局已阅。')
    assert response.headers['Location'] == f'/cases/{case.id}#discussion'
    assert session.scalars(sa.select(Comment)).one().task_id is None


def test_upload_on_the_task_page_then_download_it(client_for: Clients, session: Session,
                                                 demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    staff = client_for('staff')
    response = _upload(staff, case, '调查笔录.pdf', files.PDF, task=task)
    assert response.status_code == 302 and response.headers['Location'] == f'/tasks/{task.id}#discussion'
    shown = staff.get(f'/tasks/{task.id}')
    assert '已上传附件“调查笔录.pdf”。' in text_of(page(shown))
    [row] = _panel(shown).xpath('.//tr[starts-with(@id, "attachment-")]')
    cells = [text_of(td) for td in row.xpath('td')]
    assert cells[0] == '调查笔录.pdf 本任务' and cells[1] == '1 KB' and cells[2] == '刘晓燕'
    link = row.xpath('.//a/@href')[0]
    attachment = session.scalars(sa.select(Attachment)).one()
    assert link == f'/cases/{case.id}/attachments/{attachment.id}' and attachment.task_id == task.id
    download = staff.get(link)
    assert download.status_code == 200 and download.data == files.PDF
    assert download.mimetype == 'application/pdf'
    assert download.headers['X-Content-Type-Options'] == 'nosniff'
    assert download.headers['Content-Disposition'] == (
        f"attachment; filename=\"attachment.pdf\"; filename*=UTF-8''{quote('调查笔录.pdf')}")
    assert 'no-store' in download.headers['Cache-Control']


def test_county_officer_sees_and_downloads_the_townships_file(client_for: Clients,
                                                              demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    _upload(client_for('staff'), case, 'photo.png', files.PNG, task=task)
    officer = client_for('officer')
    link = _panel(officer.get(f'/cases/{case.id}')).xpath('.//tr[starts-with(@id, "attachment-")]//a/@href')[0]
    assert officer.get(link).data == files.PNG


def test_refused_type_shows_a_clear_message_and_writes_nothing(client_for: Clients, session: Session,
                                                               demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    staff = client_for('staff')
    for name, content in (('scan.pdf', files.EXE), ('report.pdf', files.HTML)):
        response = _upload(staff, case, name, content, task=task)
        assert response.status_code == 302 and response.headers['Location'] == f'/tasks/{task.id}#discussion'
        assert _alerts(staff.get(f'/tasks/{task.id}')) == [TYPE_MESSAGE]
    assert _count(session, Attachment) == 0 and _audited(session, 'attachment.added') == 0


def test_upload_without_a_file_asks_for_one(client_for: Clients, session: Session,
                                            demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    staff = client_for('staff')
    _upload(staff, case, '', b'', task=task)
    assert _alerts(staff.get(f'/tasks/{task.id}')) == ['请选择要上传的文件。']
    assert _count(session, Attachment) == 0


@pytest.mark.parametrize('body, message', [('   ', '请填写意见内容。'), ('长' * 2001, '意见不能超过 2000 个字。')])
def test_invalid_comment_shows_why_and_writes_nothing(client_for: Clients, session: Session,
                                                      demo_case: tuple[Case, HumanTask], body: str,
                                                      message: str) -> None:
    case, task = demo_case
    staff = client_for('staff')
    assert _comment(staff, case, body, task=task).status_code == 302
    assert _alerts(staff.get(f'/tasks/{task.id}')) == [message]
    assert _count(session, Comment) == 0 and _audited(session, 'comment.added') == 0


def test_task_of_another_case_is_refused(client_for: Clients, session: Session,
                                         demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    staff = client_for('staff')
    data = {'body': '意见', 'task_id': '999999', 'csrf_token': csrf_token(staff, f'/tasks/{task.id}')}
    response = staff.post(f'/cases/{case.id}/comments', data=data)
    assert response.headers['Location'] == f'/cases/{case.id}#discussion'
    assert _alerts(staff.get(f'/cases/{case.id}')) == ['该任务不属于此案件。']
    assert _count(session, Comment) == 0


def test_too_large_upload_gets_a_clear_413_page(app: Flask, client_for: Clients, session: Session,
                                                demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    assert app.config['MAX_CONTENT_LENGTH'] > app.config['ATTACHMENT_MAX_BYTES'] == 10 * 1024 * 1024
    staff = client_for('staff')
    response = _upload(staff, case, 'huge.pdf', files.PDF + b'0' * app.config['MAX_CONTENT_LENGTH'], task=task)
    assert response.status_code == 413
    doc = page(response)
    assert text_of(doc.xpath('//h1')[0]) == '上传的文件过大：附件不能超过 10 MB。请压缩或拆分后再上传。'
    assert _count(session, Attachment) == 0


def test_file_between_the_limit_and_the_request_cap_is_refused_by_size(app: Flask, client_for: Clients,
                                                                       session: Session,
                                                                       demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    app.config['ATTACHMENT_MAX_BYTES'] = 1024
    staff = client_for('staff')
    _upload(staff, case, 'big.pdf', files.PDF + b'0' * 2048, task=task)
    assert _alerts(staff.get(f'/tasks/{task.id}')) == ['文件过大：附件不能超过 1 KB。']
    assert _count(session, Attachment) == 0


def test_posts_without_csrf_token_are_refused(client_for: Clients, session: Session,
                                              demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    staff = client_for('staff')
    assert staff.post(f'/cases/{case.id}/comments', data={'body': '意见'}).status_code == 400
    upload = staff.post(f'/cases/{case.id}/attachments', data={'file': (io.BytesIO(files.PDF), 'a.pdf')},
                        content_type='multipart/form-data')
    assert upload.status_code == 400
    assert _count(session, Comment) == 0 and _count(session, Attachment) == 0


def test_outsider_gets_404_everywhere_and_writes_nothing(client_for: Clients, session: Session,
                                                        demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    _upload(client_for('staff'), case, 'a.pdf', files.PDF, task=task)
    attachment = session.scalars(sa.select(Attachment)).one()
    for username in ('outsider', 'designer'):
        client = client_for(username)
        assert client.get(f'/cases/{case.id}/attachments/{attachment.id}').status_code == 404
        assert _comment(client, case, '越权', token_from='/tasks').status_code == 404
        assert _upload(client, case, 'b.pdf', files.PDF, token_from='/tasks').status_code == 404
    assert _count(session, Comment) == 0 and _count(session, Attachment) == 1


def test_attachment_of_another_case_is_not_found_under_this_one(client_for: Clients, session: Session,
                                                                demo_case: tuple[Case, HumanTask],
                                                                org: Org, people: dict[str, User]) -> None:
    case, task = demo_case
    other, _ = runtime.start_case(session, 'demo_intake', START, actor=people['staff'], org_unit=org.township)
    session.commit()
    staff = client_for('staff')
    _upload(staff, case, 'a.pdf', files.PDF, task=task)
    attachment = session.scalars(sa.select(Attachment)).one()
    assert staff.get(f'/cases/{other.id}/attachments/{attachment.id}').status_code == 404
    assert staff.get(f'/cases/{case.id}/attachments/99999999999999999999').status_code == 404


def test_anonymous_is_sent_to_log_in(client: FlaskClient, demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    download = client.get(f'/cases/{case.id}/attachments/1')
    assert download.status_code == 302 and download.headers['Location'].startswith('/login')
    token = csrf_token(client)
    assert client.post(f'/cases/{case.id}/comments', data={'body': 'x', 'csrf_token': token}).status_code == 302


def test_tampered_file_gets_a_clear_error_page_not_a_crash(client_for: Clients, session: Session,
                                                           demo_case: tuple[Case, HumanTask]) -> None:
    case, task = demo_case
    staff = client_for('staff')
    _upload(staff, case, '笔录.pdf', files.PDF, task=task)
    attachment = session.scalars(sa.select(Attachment)).one()
    session.execute(sa.update(Attachment).values(content=files.PDF + b'tampered'))
    session.commit()
    response = staff.get(f'/cases/{case.id}/attachments/{attachment.id}')
    assert response.status_code == 500 and response.mimetype == 'text/html'
    assert '附件“笔录.pdf”的内容与上传时不一致' in text_of(page(response).xpath('//h1')[0])


def test_folder_storage_is_used_when_configured(app: Flask, client_for: Clients, session: Session,
                                                demo_case: tuple[Case, HumanTask], tmp_path: Path) -> None:
    case, task = demo_case
    app.config['ATTACHMENT_FOLDER'] = str(tmp_path / 'files')
    staff = client_for('staff')
    _upload(staff, case, '协议.docx', files.docx(), task=task)
    attachment = session.scalars(sa.select(Attachment)).one()
    assert attachment.storage == 'folder' and (tmp_path / 'files' / str(attachment.stored_name)).exists()
    download = staff.get(f'/cases/{case.id}/attachments/{attachment.id}')
    assert download.data == files.docx()
    assert download.headers['Content-Type'].startswith(
        'application/vnd.openxmlformats-officedocument.wordprocessingml.document')


def test_task_page_of_a_case_the_reader_cannot_see_has_no_panel(client_for: Clients, session: Session,
                                                               demo_case: tuple[Case, HumanTask],
                                                               org: Org) -> None:
    case, task = demo_case
    _comment(client_for('staff'), case, '内部意见', task=task)
    # A task handed to another unit (as a residence change does) while the case stays where it was.
    moved = session.get(HumanTask, task.id)
    assert moved is not None
    moved.org_unit_id, moved.org_path = org.other_township.id, org.other_township.path
    session.commit()
    shown = client_for('outsider').get(f'/tasks/{task.id}')
    assert shown.status_code == 200
    doc = page(shown)
    assert doc.xpath('//section[@id="discussion"]') == [] and doc.xpath('//li[starts-with(@id, "comment-")]') == []


def test_panel_in_english(client_for: Clients, demo_case: tuple[Case, HumanTask]) -> None:
    case, _ = demo_case
    panel = _panel(client_for('staff').get(f'/cases/{case.id}?lang=en'))
    assert text_of(panel.xpath('h2')[0]) == 'Comments and attachments'
    assert 'No comments yet.' in text_of(panel) and 'Post comment' in text_of(panel)
