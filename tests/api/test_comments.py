"""Comments and attachments through /api/v1: shapes, validation, uploads, downloads, access and the document."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from engine.models.audit import AuditEvent
from engine.models.comments import Attachment, Comment
from engine.models.users import User
from tests.api.conftest import Api, assert_error, start_demo_case
from tests.fixtures import files
from tests.fixtures.web import csrf_token

COMMENT_KEYS = {'id', 'case_id', 'task_id', 'author', 'body', 'created_at'}
ATTACHMENT_KEYS = {'id', 'case_id', 'task_id', 'filename', 'content_type', 'size', 'sha256', 'uploaded_by',
                   'created_at'}
ROLES = ('anonymous', 'staff', 'outsider', 'chief', 'designer')


def _upload(api: Api, case_id: int, name: str, content: bytes, **form: str) -> TestResponse:
    data: dict[str, Any] = {'file': (io.BytesIO(content), name), **form}
    return api.post(f'/cases/{case_id}/attachments', data=data, content_type='multipart/form-data')


def _count(session: Session, model: type) -> int:
    return session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


@pytest.fixture
def case(as_user: Callable[[str | None], Api], people: dict[str, User], demo: object) -> dict[str, Any]:
    """A demo case at the township, started by staff through the API."""
    return start_demo_case(as_user('staff'))


# -- comments ------------------------------------------------------------------------------------------

def test_comment_is_created_and_listed_oldest_first(as_user: Callable[[str | None], Api], case: dict[str, Any],
                                                    people: dict[str, User]) -> None:
    staff, chief = as_user('staff'), as_user('chief')
    task_id = case['tasks'][0]['id']
    created = staff.post(f'/cases/{case["id"]}/comments', {'body': '  已联系当事人。 ', 'task_id': task_id})
    assert created.status_code == 201, created.get_json()
    comment = created.get_json()
    assert set(comment) == COMMENT_KEYS
    assert comment['body'] == '已联系当事人。' and comment['task_id'] == task_id and comment['case_id'] == case['id']
    assert comment['author'] == {'id': people['staff'].id, 'username': 'staff', 'name': 'staff'}
    assert chief.post(f'/cases/{case["id"]}/comments', {'body': '同意。'}).status_code == 201
    page = chief.get(f'/cases/{case["id"]}/comments?limit=1').get_json()
    assert [c['body'] for c in page['items']] == ['已联系当事人。'] and page['next']
    rest = chief.get(f'/cases/{case["id"]}/comments?limit=1&cursor={page["next"]}').get_json()
    assert [(c['body'], c['task_id']) for c in rest['items']] == [('同意。', None)] and rest['next'] is None


@pytest.mark.parametrize('body, field', [({'body': ''}, 'body'), ({'body': ' \n '}, 'body'),
                                         ({'body': '长' * 2001}, 'body'), ({}, 'body'),
                                         ({'body': 1}, 'body'), ({'body': 'x', 'task_id': 999999}, 'task_id'),
                                         ({'body': 'x', 'task_id': 'abc'}, 'task_id'),
                                         ({'body': 'x', 'colour': 'red'}, 'colour')])
def test_invalid_comment_is_refused_with_the_field_named(as_user: Callable[[str | None], Api],
                                                        case: dict[str, Any], session: Session,
                                                        body: dict[str, Any], field: str) -> None:
    refused = as_user('staff').post(f'/cases/{case["id"]}/comments', body)
    assert field in assert_error(refused, 400, 'invalid')['fields']
    assert _count(session, Comment) == 0


def test_session_writes_need_the_csrf_token(login: Callable[[str], FlaskClient], case: dict[str, Any],
                                            session: Session) -> None:
    client = login('staff')
    path = f'/api/v1/cases/{case["id"]}/comments'
    assert_error(client.post(path, json={'body': '意见'}), 400, 'csrf')
    assert _count(session, Comment) == 0
    token = csrf_token(client, '/tasks')
    done = client.post(path, json={'body': '意见'}, headers={'X-CSRFToken': token})
    assert done.status_code == 201
    # A browser form posting a file carries the token as a field instead of a header.
    upload = client.post(f'/api/v1/cases/{case["id"]}/attachments', content_type='multipart/form-data',
                         data={'file': (io.BytesIO(files.PDF), 'a.pdf'), 'csrf_token': token})
    assert upload.status_code == 201, upload.get_json()


# -- attachments ---------------------------------------------------------------------------------------

def test_upload_list_and_download(as_user: Callable[[str | None], Api], case: dict[str, Any],
                                  people: dict[str, User], session: Session) -> None:
    staff = as_user('staff')
    task_id = case['tasks'][0]['id']
    created = _upload(staff, case['id'], '调解协议.docx', files.docx(), task_id=str(task_id))
    assert created.status_code == 201, created.get_json()
    attachment = created.get_json()
    assert set(attachment) == ATTACHMENT_KEYS
    assert attachment['filename'] == '调解协议.docx' and attachment['task_id'] == task_id
    assert attachment['content_type'] == 'application/vnd.openxmlformats-officedocument.wordprocessingml.document'
    assert attachment['size'] == len(files.docx()) and len(attachment['sha256']) == 64
    assert attachment['uploaded_by']['id'] == people['staff'].id
    listed = as_user('chief').get(f'/cases/{case["id"]}/attachments').get_json()
    assert listed == {'items': [attachment], 'next': None}  # never the content
    download = as_user('chief').get(f'/cases/{case["id"]}/attachments/{attachment["id"]}/content')
    assert download.status_code == 200 and download.data == files.docx()
    assert download.mimetype == attachment['content_type']
    assert download.headers['X-Content-Type-Options'] == 'nosniff'
    assert download.headers['Content-Disposition'].endswith(f"filename*=UTF-8''{quote('调解协议.docx')}")
    assert session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                          .where(AuditEvent.kind == 'attachment.added')) == 1


@pytest.mark.parametrize('name, content, field, message', [
    ('setup.pdf', files.EXE, 'file',
     '不支持此文件类型。只能上传 PDF 文件、JPEG 或 PNG 图片、Word 文档（.docx）或 Excel 表格（.xlsx）。'),
    ('page.pdf', files.HTML, 'file',
     '不支持此文件类型。只能上传 PDF 文件、JPEG 或 PNG 图片、Word 文档（.docx）或 Excel 表格（.xlsx）。'),
    ('empty.pdf', b'', 'file', '文件是空的，请重新选择。'),
])
def test_refused_upload_names_the_reason_and_writes_nothing(as_user: Callable[[str | None], Api],
                                                           case: dict[str, Any], session: Session, name: str,
                                                           content: bytes, field: str, message: str) -> None:
    refused = _upload(as_user('staff'), case['id'], name, content)
    assert assert_error(refused, 400, 'invalid')['fields'] == {field: [message]}
    assert _count(session, Attachment) == 0


def test_upload_form_problems_are_400(as_user: Callable[[str | None], Api], case: dict[str, Any],
                                     session: Session) -> None:
    staff, path = as_user('staff'), f'/cases/{case["id"]}/attachments'
    no_file = staff.post(path, data={'task_id': str(case['tasks'][0]['id'])}, content_type='multipart/form-data')
    assert assert_error(no_file, 400)['fields'] == {'file': ['请选择要上传的文件。']}
    assert 'task_id' in assert_error(_upload(staff, case['id'], 'a.pdf', files.PDF, task_id='abc'), 400)['fields']
    assert 'task_id' in assert_error(_upload(staff, case['id'], 'a.pdf', files.PDF, task_id='999999'), 400)['fields']
    assert 'note' in assert_error(_upload(staff, case['id'], 'a.pdf', files.PDF, note='x'), 400)['fields']
    assert 'file' in assert_error(staff.post(path, {'file': 'a'}), 400)['fields']
    assert _count(session, Attachment) == 0


def test_too_large_request_is_a_json_413(app: Flask, as_user: Callable[[str | None], Api],
                                         case: dict[str, Any], session: Session) -> None:
    response = _upload(as_user('staff'), case['id'], 'huge.pdf', files.PDF + b'0' * app.config['MAX_CONTENT_LENGTH'])
    assert_error(response, 413)
    assert _count(session, Attachment) == 0


def test_tampered_content_is_refused_with_a_clear_error(as_user: Callable[[str | None], Api],
                                                       case: dict[str, Any], session: Session) -> None:
    staff = as_user('staff')
    attachment = _upload(staff, case['id'], '笔录.pdf', files.PDF).get_json()
    session.execute(sa.update(Attachment).values(content=files.PDF + b'x'))
    session.commit()
    body = assert_error(staff.get(f'/cases/{case["id"]}/attachments/{attachment["id"]}/content'), 500,
                        'attachment_unreadable')
    assert '笔录.pdf' in body['message']


@pytest.mark.parametrize('role, upload_status, download_status', [
    ('anonymous', 401, 401), ('staff', 201, 200), ('outsider', 404, 404), ('chief', 201, 200),
    ('designer', 404, 404)])
def test_upload_and_download_access_by_role(as_user: Callable[[str | None], Api], case: dict[str, Any],
                                            role: str, upload_status: int, download_status: int) -> None:
    attachment = _upload(as_user('staff'), case['id'], 'a.png', files.PNG).get_json()
    api = as_user(None if role == 'anonymous' else role)
    assert _upload(api, case['id'], 'b.png', files.PNG).status_code == upload_status
    download = api.get(f'/cases/{case["id"]}/attachments/{attachment["id"]}/content')
    assert download.status_code == download_status
    if download_status >= 400:
        assert_error(download, download_status)


def test_attachment_is_only_found_under_its_own_case(as_user: Callable[[str | None], Api],
                                                     case: dict[str, Any]) -> None:
    staff = as_user('staff')
    other = start_demo_case(staff)
    attachment = _upload(staff, case['id'], 'a.pdf', files.PDF).get_json()
    assert_error(staff.get(f'/cases/{other["id"]}/attachments/{attachment["id"]}/content'), 404, 'not_found')


# -- the document --------------------------------------------------------------------------------------

def test_openapi_documents_comments_and_attachments(client: FlaskClient) -> None:
    document = client.get('/api/v1/openapi.json').get_json()
    paths, schemas = document['paths'], document['components']['schemas']
    assert {'get', 'post'} == set(paths['/api/v1/cases/{case_id}/comments'])
    assert {'get', 'post'} == set(paths['/api/v1/cases/{case_id}/attachments'])
    assert 'get' in paths['/api/v1/cases/{case_id}/attachments/{attachment_id}/content']
    upload = paths['/api/v1/cases/{case_id}/attachments']['post']
    form = upload['requestBody']['content']['multipart/form-data']['schema']
    form = schemas[form['$ref'].rsplit('/', 1)[1]] if '$ref' in form else form
    assert form['properties']['file']['format'] == 'binary' and 'task_id' in form['properties']
    assert set(upload['responses']) == {'201', '400', '401', '404'}
    assert set(schemas['Attachment']['properties']) == ATTACHMENT_KEYS
    assert set(schemas['Comment']['properties']) == COMMENT_KEYS
