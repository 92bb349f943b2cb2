"""一案一码: the parties' own view of their case, behind a second factor.

A party reaches ``/c/<public code>`` from the QR code on an acceptance document and proves who they are
with the 6-digit 查询密码 (PIN) issued at case start, or with the last four digits of the phone number
registered in the start data. They then see progress only: the steps done, the steps open with their due
dates, the mediator of a dispute and the list of documents addressed to the parties. Nothing personal,
no comments, no mediation records and no amounts (医疗纠纷预防和处理条例 §42).

Every verification costs one argon2 operation whatever the code, the secret or the lock, so an unknown
code, a locked code and a wrong secret cannot be told apart by their answer or their timing. Five failures
on one code lock it for fifteen minutes. Every view and every failure is an audit event.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import LOCAL_ZONE, now
from engine.directory import hash_password
from engine.errors import NotFound
from engine.i18n import N_
from engine.models.cases import Case, Document
from engine.models.instances import ProcessInstance
from engine.models.public_access import PublicAccess
from engine.models.tasks import HumanTask
from engine.models.users import User

#: digits of a PIN
PIN_LENGTH: Final = 6
#: trailing digits of the registered phone number accepted instead of the PIN
PHONE_DIGITS: Final = 4
#: failed verifications on one code before it locks
MAX_FAILURES: Final = 5
#: how long a code stays locked
LOCK_TIME: Final = timedelta(minutes=15)
MSG_NO_DOCUMENT = N_('文书不存在')
#: documents with this audience are the parties' (see workflows.shared.documents)
PARTIES: Final = 'parties'
#: a public code as ``secrets.token_urlsafe`` makes them; anything else is looked up nowhere
_CODE = re.compile(r'[A-Za-z0-9_-]{1,32}')
_PIN = re.compile(rf'\d{{{PIN_LENGTH}}}')
_PHONE = re.compile(rf'\d{{{PHONE_DIGITS}}}')
#: longest secret hashed for timing; a longer one is cut (argon2 would take it, but why pay for it)
_SECRET_MAX = 64
# Verifying reads the parameters from the hash itself, so the test suite's cheap hashes verify too.
_verifier = PasswordHasher()


@dataclass(frozen=True)
class Verification:
    """The outcome of one attempt: the case and how the party proved themselves, or no case at all."""

    case: Case | None
    #: ``pin`` or ``phone`` when verified
    method: str | None = None


@dataclass(frozen=True)
class Stage:
    """One step of the case as the parties see it: a title and when it was done or is due."""

    title: str
    done_on: date | None = None
    due_on: date | None = None


@dataclass(frozen=True)
class PartyDocument:
    """A document addressed to the parties, by title, number and issue date (its body is opened apart)."""

    id: int
    title: str
    number: str | None
    issued_on: date


@dataclass(frozen=True)
class Progress:
    """What the public page shows of a case."""

    number: str
    process_name: str
    status: str
    opened_on: date
    done: list[Stage]
    current: list[Stage]
    mediator: str | None
    documents: list[PartyDocument]


def valid_code(code: str) -> bool:
    """Whether ``code`` has the shape of a public code (no database is asked about anything else)."""
    return _CODE.fullmatch(code) is not None


def new_pin() -> str:
    """A random 6-digit PIN."""
    return f'{secrets.randbelow(10 ** PIN_LENGTH):0{PIN_LENGTH}d}'


def issue_pin(session: Session, case: Case, *, actor: User | None) -> str:
    """Issue a new PIN for ``case``'s public page, replacing any earlier one, and return it.

    Only its argon2 hash is kept: the caller shows the PIN once (to the staff who hand it to the party)
    and never stores it. Issuing also lifts a lock. Audited as ``public.pin_issued`` (without the PIN).

    :param actor: the staff member issuing it
    :return: the PIN, 6 digits
    """
    row = _access_row(session, case)
    replaced = row.pin_hash is not None
    pin = new_pin()
    row.pin_hash, row.pin_issued_dt = hash_password(pin), now()
    row.failed_count, row.locked_until_dt = 0, None
    session.flush()
    audit.record(session, 'public.pin_issued', actor=actor, case_id=case.id, org_path=case.org_path,
                 after={'replaced': replaced})
    return pin


def has_pin(session: Session, case: Case) -> bool:
    """Whether a PIN has been issued for ``case``."""
    row = _find_access(session, case.id)
    return row is not None and row.pin_hash is not None


def find_case(session: Session, code: str) -> Case | None:
    """The case whose public code is ``code``, or None (also for a code of the wrong shape)."""
    if not valid_code(code):
        return None
    return session.scalars(sa.select(Case).where(Case.public_code == code)).one_or_none()


def verify(session: Session, code: str, secret: str, *, phone_fields: Iterable[str], client: str) -> Verification:
    """Check a party's second factor for the case of public code ``code``.

    A 6-digit ``secret`` is checked against the PIN, a 4-digit one against the last digits of each phone
    number in the case's start data. A failure on an existing code counts towards its lock; every failure
    is audited (``public.refused``, at the case's unit when there is a case). The answer is the same, and
    costs the same, for an unknown code, a locked code and a wrong secret.

    :param phone_fields: start-data keys holding the parties' phone numbers
    :param client: the caller's address, for the audit trail
    """
    case = find_case(session, code)
    row = _find_access(session, case.id) if case is not None else None
    method = _check_secret(case, row, secret.strip(), frozenset(phone_fields))
    if case is None:
        _refused(session, None, code, 'unknown_code', client)
        return Verification(None)
    if row is not None and is_locked(row):
        _refused(session, case, code, 'locked', client)
        return Verification(None)
    if method is None:
        _count_failure(session, case, row)
        _refused(session, case, code, 'wrong_secret', client)
        return Verification(None)
    if row is not None:
        row.failed_count = 0
        if method == 'pin':
            # Keep the hash at the current parameters, so a wrong PIN costs what an unknown code does.
            row.pin_hash = hash_password(secret.strip())
    return Verification(case, method)


def is_locked(row: PublicAccess) -> bool:
    """Whether the code is locked now."""
    return row.locked_until_dt is not None and row.locked_until_dt > now()


def record_view(session: Session, case: Case, *, method: str, client: str) -> None:
    """Audit one view of the public page (``public.viewed`` at the case's unit).

    :param method: ``pin``, ``phone`` or ``session`` (a reload within the verified period)
    """
    audit.record(session, 'public.viewed', actor=None, case_id=case.id, org_path=case.org_path,
                 after={'method': method, 'client': client})


def progress(session: Session, case: Case, *, mediator_groups: Iterable[str] = ()) -> Progress:
    """The case as the parties see it: its lifecycle's steps, the mediator and the parties' documents.

    :param mediator_groups: candidate groups whose assignee is named as 调解员 (empty: no name shown)
    """
    instance = session.scalars(sa.select(ProcessInstance).where(
        ProcessInstance.case_id == case.id, ProcessInstance.is_lifecycle).order_by(ProcessInstance.id)).first()
    tasks = _lifecycle_tasks(session, instance)
    done = [Stage(task.title, done_on=_local_date(task.completed_dt)) for task in tasks
            if task.status == 'completed']
    current = [Stage(task.title, due_on=_local_date(task.due_dt)) for task in tasks if task.status == 'open']
    return Progress(number=case.number, process_name=instance.definition.name if instance else case.kind,
                    status=case.status, opened_on=_local_date(case.created_dt) or date.min, done=done,
                    current=current, mediator=_mediator(tasks, frozenset(mediator_groups)),
                    documents=party_documents(session, case))


def party_documents(session: Session, case: Case) -> list[PartyDocument]:
    """The documents of ``case`` addressed to the parties, oldest first.

    Rule: a document is the parties' when its template declares ``audience=parties`` (the notices served
    on them: 权利义务告知书, 不予受理通知书, 调解终止告知书, 调解协议书, 社区矫正宣告书 ...). Only the
    title, number and date are listed; :func:`party_document` opens one.
    """
    rows = session.execute(sa.select(Document.id, Document.title, Document.number, Document.created_dt).where(
        Document.case_id == case.id, Document.audience == PARTIES).order_by(Document.id))
    return [PartyDocument(id_, title, number, _local_date(created) or date.min)
            for id_, title, number, created in rows]


def party_document(session: Session, case: Case, document_id: int, *, client: str) -> Document:
    """One of ``case``'s documents addressed to the parties, audited as ``public.document_viewed``.

    :raise NotFound: another case's document, or one kept internal (no parties' audience)
    """
    document = session.get(Document, document_id)
    if document is None or document.case_id != case.id or document.audience != PARTIES:
        raise NotFound(MSG_NO_DOCUMENT)
    audit.record(session, 'public.document_viewed', actor=None, case_id=case.id, org_path=case.org_path,
                 after={'document': document.id, 'kind': document.kind, 'client': client})
    return document


# -- steps ------------------------------------------------------------------------------------------------

def _access_row(session: Session, case: Case) -> PublicAccess:
    row = _find_access(session, case.id)
    if row is None:
        row = PublicAccess(case_id=case.id, failed_count=0)
        session.add(row)
    return row


def _find_access(session: Session, case_id: int) -> PublicAccess | None:
    return session.scalars(sa.select(PublicAccess).where(PublicAccess.case_id == case_id)).one_or_none()


def _check_secret(case: Case | None, row: PublicAccess | None, secret: str,
                  phone_fields: frozenset[str]) -> str | None:
    """``pin`` or ``phone`` when ``secret`` matches, else None; always exactly one argon2 operation."""
    pin_hash = row.pin_hash if row is not None else None
    if _PIN.fullmatch(secret) and pin_hash is not None:
        try:
            return 'pin' if _verifier.verify(pin_hash, secret) else None
        except (VerificationError, InvalidHashError):
            return None
    # No hash to check against: hashing costs what verifying would, so the timing tells nothing.
    hash_password(secret[:_SECRET_MAX])
    if case is not None and _PHONE.fullmatch(secret) and _phone_matches(case, secret, phone_fields):
        return 'phone'
    return None


def _phone_matches(case: Case, digits: str, phone_fields: frozenset[str]) -> bool:
    found = False
    for key in sorted(phone_fields):
        value = case.start_data.get(key)
        numbers = ''.join(ch for ch in value if ch.isdigit()) if isinstance(value, str) else ''
        # Compare every candidate, not stopping at the first match: the time does not depend on which.
        if len(numbers) >= 7 and hmac.compare_digest(numbers[-PHONE_DIGITS:], digits):
            found = True
    return found


def _count_failure(session: Session, case: Case, row: PublicAccess | None) -> None:
    row = row if row is not None else _access_row(session, case)
    row.failed_count = (row.failed_count or 0) + 1
    if row.failed_count >= MAX_FAILURES:
        row.failed_count, row.locked_until_dt = 0, now() + LOCK_TIME
        audit.record(session, 'public.locked', actor=None, case_id=case.id, org_path=case.org_path,
                     after={'until': row.locked_until_dt.isoformat()})
    session.flush()


def _refused(session: Session, case: Case | None, code: str, reason: str, client: str) -> None:
    # An unknown code has no unit: the event lies at the root, for the province's supervisors.
    audit.record(session, 'public.refused', actor=None, case_id=case.id if case else None,
                 org_path=case.org_path if case else None,
                 after={'reason': reason, 'code': code[:40], 'client': client})


def _lifecycle_tasks(session: Session, instance: ProcessInstance | None) -> list[HumanTask]:
    if instance is None:
        return []
    return list(session.scalars(sa.select(HumanTask).where(
        HumanTask.instance_id == instance.id, HumanTask.status != 'cancelled').order_by(HumanTask.id)))


def _mediator(tasks: list[HumanTask], groups: frozenset[str]) -> str | None:
    """The display name of whoever holds or last did the case's latest mediation step."""
    for task in reversed(tasks):
        if task.candidate_group not in groups:
            continue
        person = task.completed_by if task.status == 'completed' else task.assignee
        if person is not None:
            return person.display_name
    return None


def _local_date(moment: datetime | None) -> date | None:
    return moment.astimezone(LOCAL_ZONE).date() if moment is not None else None
