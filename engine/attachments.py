"""Files kept with a case (scans, photos, PDFs), optionally about one of its tasks.

What a file *is* is decided from its bytes, never from the name or the content type the client sent: a
renamed program or an HTML page called ``.pdf`` is refused. The content lives in the database by default,
or in a configured folder under a random name; its sha256 is stored either way and checked on every
read, so a file changed behind the application's back is reported instead of served.

Files written to the folder during a transaction that then rolls back (or is closed without a commit)
are removed again, so a refused or failed request leaves nothing behind. Like every operation these
functions flush and never commit.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import tempfile
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from defusedxml import ElementTree as SafeElementTree
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction, selectinload

from engine import audit
from engine.access import Scope, can_view_case, refuse
from engine.clock import now
from engine.comments import MAX_RECORD_ID, check_task, ensure_case_visible
from engine.errors import EngineError, NotFound, ValidationFailed
from engine.i18n import N_, _
from engine.models.cases import Case
from engine.models.comments import Attachment
from engine.models.tasks import HumanTask
from engine.models.users import User

#: the default size limit: 10 MiB
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
#: the longest file name kept (the column's length)
MAX_FILENAME_LENGTH = 200
#: the largest ``[Content_Types].xml`` read when checking an Office file (a real one is a few KB)
MAX_CONTENT_TYPES_BYTES = 256 * 1024

MSG_INVALID = N_('数据有误，请检查标出的字段。')
MSG_EMPTY_FILE = N_('文件是空的，请重新选择。')
MSG_TOO_LARGE = N_('文件过大：附件不能超过 {limit}。')
MSG_TYPE_REFUSED = N_('不支持此文件类型。'
                      '只能上传 PDF 文件、JPEG 或 PNG 图片、Word 文档（.docx）或 Excel 表格（.xlsx）。')
MSG_NOT_FOUND = N_('附件不存在')
MSG_DAMAGED = N_('附件“{name}”的内容与上传时不一致，可能已被改动或损坏，系统已拒绝提供。请联系管理员。')
MSG_MISSING = N_('附件“{name}”的文件已不在存放目录中，无法下载。请联系管理员。')
MSG_NO_FOLDER = N_('附件存放目录未配置，无法读取附件“{name}”。请联系管理员。')
#: the name of an upload sent without one (stored as is, whatever the uploader's language)
DEFAULT_STEM = '附件'

_PENDING_FILES_KEY = 'fengqiao_attachment_files'
_STORED_NAME = re.compile(r'^[0-9a-f]{32}$')
_OOXML_TYPES_NS = '{http://schemas.openxmlformats.org/package/2006/content-types}'
# Control characters and the bidi overrides that make ``invoice\u202efdp.exe`` read as ``invoiceexe.pdf``.
_FILENAME_UNWANTED = frozenset({'Cc', 'Cf', 'Cs', 'Co', 'Cn', 'Zl', 'Zp'})


class AttachmentUnreadable(EngineError):
    """A stored attachment cannot be served as uploaded: changed, damaged, missing or unconfigured.

    Not the caller's fault; the web layer answers 500 with :attr:`message` and logs it.
    """

    code = 'attachment_unreadable'


@dataclass(frozen=True)
class AttachmentSettings:
    """Where attachments go and how large they may be (read from the app's config by the web layer).

    :param max_bytes: the largest file accepted
    :param folder: keep contents in this folder instead of the database
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    folder: Path | None = None

    @property
    def storage(self) -> str:
        """``folder`` when a folder is configured, else ``database``."""
        return 'folder' if self.folder is not None else 'database'


@dataclass(frozen=True)
class FileKind:
    """An accepted kind of file: its media type and the extensions a file of it should carry."""

    content_type: str
    extensions: tuple[str, ...]


PDF = FileKind('application/pdf', ('.pdf',))
JPEG = FileKind('image/jpeg', ('.jpg', '.jpeg'))
PNG = FileKind('image/png', ('.png',))
DOCX = FileKind('application/vnd.openxmlformats-officedocument.wordprocessingml.document', ('.docx',))
XLSX = FileKind('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', ('.xlsx',))
#: every accepted kind, in the order the upload form lists them
ACCEPTED_KINDS = (PDF, JPEG, PNG, DOCX, XLSX)
#: the main part of each accepted Office package (macro-enabled variants have other types and are refused)
_OOXML_MAIN_PARTS = {
    'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml': DOCX,
    'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml': XLSX,
}


# -- what a file is -------------------------------------------------------------------------------------

def sniff(data: bytes) -> FileKind | None:
    """The accepted kind ``data`` is, judged by its bytes alone; None for anything else.

    :param data: the whole file
    """
    if data.startswith(b'%PDF-'):
        return PDF
    if data.startswith(b'\xff\xd8\xff'):
        return JPEG
    if data.startswith(b'\x89PNG\r\n\x1a\n'):
        return PNG
    if data.startswith(b'PK\x03\x04'):
        return _sniff_ooxml(data)
    return None


def _sniff_ooxml(data: bytes) -> FileKind | None:
    """A .docx or .xlsx: a zip whose ``[Content_Types].xml`` names a Word or Excel main part it contains."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            types = _read_member(package, '[Content_Types].xml')
            if types is None:
                return None
            return _main_part_kind(types, set(package.namelist()))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, OSError, EOFError, RuntimeError,
            NotImplementedError, ValueError):
        # Damaged, encrypted or using an unsupported compression: not a document we can vouch for.
        return None


def _read_member(package: zipfile.ZipFile, name: str) -> bytes | None:
    """A small member of ``package``, or None when missing or suspiciously large (a zip bomb)."""
    try:
        info = package.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_CONTENT_TYPES_BYTES:
        return None
    with package.open(info) as member:
        content = member.read(MAX_CONTENT_TYPES_BYTES + 1)
    return content if len(content) <= MAX_CONTENT_TYPES_BYTES else None


def _main_part_kind(types_xml: bytes, members: set[str]) -> FileKind | None:
    try:
        root = SafeElementTree.fromstring(types_xml, forbid_dtd=True)
    except (SafeElementTree.ParseError, ValueError):  # defusedxml's refusals are ValueErrors
        return None
    for override in root.iter(f'{_OOXML_TYPES_NS}Override'):
        kind = _OOXML_MAIN_PARTS.get(str(override.get('ContentType', '')).strip())
        if kind is not None and str(override.get('PartName', '')).lstrip('/') in members:
            return kind
    return None


# -- names and sizes ------------------------------------------------------------------------------------

def clean_filename(name: str | None, kind: FileKind) -> str:
    """The name shown for an upload: base name only, no control characters, at most 200 characters.

    The extension is made to match the content (``扫描件`` holding a PDF becomes ``扫描件.pdf``), so the
    name a download is saved under tells the truth about what it is.

    :param name: the name the client sent (may hold a Windows or Unix path)
    :param kind: what the content was found to be
    """
    base = re.split(r'[\\/]', name or '')[-1]
    text = ''.join(ch for ch in unicodedata.normalize('NFC', base)
                   if unicodedata.category(ch) not in _FILENAME_UNWANTED)
    text = text.strip().strip('.').strip()
    stem, extension = os.path.splitext(text)
    if extension.lower() not in kind.extensions:
        stem, extension = text, kind.extensions[0]
    stem = stem or DEFAULT_STEM
    return stem[:MAX_FILENAME_LENGTH - len(extension)].rstrip() + extension


def size_text(size: int) -> str:
    """A size as people read it: ``850 KB``, ``2.4 MB`` (binary units, as the limit is set)."""
    if size < 1024 * 1024:
        return f'{max(1, round(size / 1024))} KB'
    megabytes = size / (1024 * 1024)
    return f'{megabytes:.0f} MB' if megabytes == int(megabytes) else f'{megabytes:.1f} MB'


def _check_content(data: bytes, settings: AttachmentSettings) -> FileKind:
    """Refuse empty, oversized and unaccepted files; return what the file is."""
    if not data:
        raise ValidationFailed(MSG_INVALID, {'file': [MSG_EMPTY_FILE]})
    if len(data) > settings.max_bytes:
        limit = size_text(settings.max_bytes)
        raise ValidationFailed(MSG_INVALID, {'file': [_(MSG_TOO_LARGE).format(limit=limit)]})
    kind = sniff(data)
    if kind is None:
        raise ValidationFailed(MSG_INVALID, {'file': [MSG_TYPE_REFUSED]})
    return kind


# -- storing --------------------------------------------------------------------------------------------

def store_attachment(session: Session, case: Case, filename: str | None, data: bytes, *, actor: User,
                     scope: Scope, task: HumanTask | None = None, settings: AttachmentSettings) -> Attachment:
    """Keep an uploaded file with ``case`` (about ``task`` when given) and audit it.

    Everything is checked before anything is written: the actor's access, the task, the size and what
    the bytes are.

    :param case: the case
    :param filename: the name the client sent (only its cleaned base name is kept)
    :param data: the file's bytes
    :param actor: the uploader
    :param scope: the uploader's grants: they must be able to view the case
    :param task: one of the case's tasks the file is about
    :param settings: the size limit and where to keep the content
    :raise NotFound: when the actor may not view the case
    :raise ValidationFailed: for an empty, too large or unaccepted file, or a task of another case
    :return: the flushed attachment (its content is not loaded again)
    """
    ensure_case_visible(session, case, scope)
    check_task(case, task)
    kind = _check_content(data, settings)
    attachment = Attachment(
        case_id=case.id, task_id=task.id if task else None, filename=clean_filename(filename, kind),
        content_type=kind.content_type, size=len(data), sha256=hashlib.sha256(data).hexdigest(),
        storage=settings.storage, uploaded_by_id=actor.id, created_dt=now())
    if settings.folder is None:
        attachment.content = data
    else:
        attachment.stored_name = _write_file(session, settings.folder, data)
    session.add(attachment)
    session.flush()
    audit.record(session, 'attachment.added', actor=actor, case_id=case.id, task_id=attachment.task_id,
                 org_path=case.org_path,
                 after={'attachment_id': attachment.id, 'filename': attachment.filename, 'size': attachment.size,
                        'sha256': attachment.sha256, 'content_type': attachment.content_type})
    return attachment


def _write_file(session: Session, folder: Path, data: bytes) -> str:
    """Write ``data`` into ``folder`` under a new random name, atomically; return the name.

    The file appears complete or not at all (temp file, fsync, ``os.replace``). It is remembered on the
    session so that a rollback removes it again.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = secrets.token_hex(16)
    handle, temp_path = tempfile.mkstemp(dir=folder, prefix='.upload-', suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as temp:
            temp.write(data)
            temp.flush()
            os.fsync(temp.fileno())
        session.info.setdefault(_PENDING_FILES_KEY, []).append(folder / name)
        os.replace(temp_path, folder / name)
    except BaseException:
        _unlink(Path(temp_path))
        raise
    return name


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


@event.listens_for(Session, 'after_commit')
def _keep_written_files(session: Session) -> None:
    session.info.pop(_PENDING_FILES_KEY, None)


@event.listens_for(Session, 'after_transaction_end')
def _remove_uncommitted_files(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without a commit (after_commit would have emptied the list):
    # the rows naming these files are gone, so the files go too.
    if transaction.parent is None:
        for path in session.info.pop(_PENDING_FILES_KEY, ()):
            _unlink(path)


# -- reading --------------------------------------------------------------------------------------------

def attachments_query(case: Case) -> sa.Select[tuple[Attachment]]:
    """A select of the case's attachments with their uploaders, without their contents (unordered)."""
    return sa.select(Attachment).where(Attachment.case_id == case.id).options(selectinload(Attachment.uploaded_by))


def list_attachments(session: Session, case: Case) -> list[Attachment]:
    """The case's attachments, oldest first, contents not loaded; the caller has checked the case is visible.

    :param case: a case the caller may view
    """
    return list(session.scalars(attachments_query(case).order_by(Attachment.created_dt, Attachment.id)))


def get_attachment(session: Session, attachment_id: int, scope: Scope) -> Attachment:
    """An attachment of a case ``scope`` may view (content not loaded).

    :raise NotFound: when it does not exist or its case is outside the caller's reach
    """
    attachment = session.get(Attachment, attachment_id) if 0 < attachment_id <= MAX_RECORD_ID else None
    if attachment is None:
        raise NotFound(MSG_NOT_FOUND)
    case = session.get(Case, attachment.case_id)
    if case is None:
        raise NotFound(MSG_NOT_FOUND)
    if not can_view_case(session, scope, case):
        raise refuse(session, scope.user_id, 'attachment', attachment_id, case.org_path, MSG_NOT_FOUND)
    return attachment


def read_content(attachment: Attachment, settings: AttachmentSettings) -> bytes:
    """The attachment's bytes, checked against the size and sha256 recorded at upload.

    :param settings: where folder-stored contents live
    :raise AttachmentUnreadable: when the bytes are missing or differ from those uploaded
    """
    data = _stored_bytes(attachment, settings)
    if len(data) != attachment.size or hashlib.sha256(data).hexdigest() != attachment.sha256:
        raise AttachmentUnreadable(_(MSG_DAMAGED).format(name=attachment.filename))
    return data


def _stored_bytes(attachment: Attachment, settings: AttachmentSettings) -> bytes:
    if attachment.storage == 'database':
        return attachment.content or b''
    if settings.folder is None:
        raise AttachmentUnreadable(_(MSG_NO_FOLDER).format(name=attachment.filename))
    # The name comes from the database: refuse anything but the random names this module writes.
    if not _STORED_NAME.match(attachment.stored_name or ''):
        raise AttachmentUnreadable(_(MSG_DAMAGED).format(name=attachment.filename))
    try:
        return (settings.folder / str(attachment.stored_name)).read_bytes()
    except FileNotFoundError:
        raise AttachmentUnreadable(_(MSG_MISSING).format(name=attachment.filename)) from None


def open_attachment(session: Session, attachment_id: int, scope: Scope, *,
                    settings: AttachmentSettings) -> tuple[Attachment, bytes]:
    """An attachment the caller may view, with its verified bytes.

    :param attachment_id: the attachment's id
    :param scope: the caller's grants
    :param settings: where folder-stored contents live
    :raise NotFound: when it does not exist or its case is outside the caller's reach
    :raise AttachmentUnreadable: when the bytes are missing or differ from those uploaded
    """
    attachment = get_attachment(session, attachment_id, scope)
    return attachment, read_content(attachment, settings)

