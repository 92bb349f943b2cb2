"""Events from outside systems: monitoring alarms and 五源 dispute referrals, each with one effect.

A machine client (the positioning platform, a referral channel) acts for one org unit and posts events with
its own key. :func:`receive_event` records every event in ``inbound_events`` together with its effect, in the
caller's transaction:

* an **alarm** names the offender by ID number. It is correlated to the open corrections case
  (``corrections_reception``) within the client's subtree and delivered by starting the case's
  ``corrections_alarm`` request with the catalogue's start fields, which opens the 核查 task with its short
  deadline counted from ``occurred_at``. The start of that request *is* the delivery: the shipped
  ``alarm.bpmn`` begins with a start form that staff also fill in by hand, so a BPMN message start event
  (which SpiffWorkflow 3.2 can only catch on an instance that already exists) would add nothing but a
  second way in. An alarm for nobody known, or for a case already closed, is recorded ``unmatched``,
  audited at the client's unit and listed to its supervisors: never dropped.
* a **referral** from one of the five sources joins the open dispute case of the same patient (ID number,
  or name when there is none) and hospital within the client's subtree, or else opens a
  ``dispute_mediation`` case at the client's unit with its ``source`` set.

The same key again is answered with the first outcome and does nothing: the key is unique per client on
``inbound_events`` (no expiry, unlike :mod:`engine.idempotency`'s keys, which belong to users; its
fingerprint and key rules are reused). A twin arriving while the first is still running waits on that
unique index and then answers as the first did. Input that is wrong changes nothing (ValidationFailed); an
effect the engine refuses (a process not deployed, a workflow fault) leaves the event recorded ``rejected``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine import audit, runtime
from engine.access import path_filter
from engine.clock import now
from engine.db import starts_with
from engine.definitions import latest_definition, process_bundle
from engine.errors import AccessDenied, Conflict, EngineError, NotFound, ValidationFailed
from engine.forms import FormSpec, validate_form
from engine.i18n import N_, _
from engine.idempotency import MSG_KEY_REUSED, check_key, fingerprint
from engine.models.cases import Case
from engine.models.events import EVENT_KINDS, InboundEvent, MachineClient
from engine.models.org_units import OrgUnit
from engine.models.users import User

#: the catalogue's process keys (ARCHITECTURE.md, "Process catalogue": part of the API contract)
CORRECTIONS_CASE = 'corrections_reception'
ALARM_PROCESS = 'corrections_alarm'
DISPUTE_PROCESS = 'dispute_mediation'
ALARM_TYPES = ('越界', '关机', '人机分离', '异常签到')
#: 五源: the referral channels (a party's own application comes through the start form, not as an event)
REFERRAL_SOURCES = ('警源', '政源', '诉源', '访源', '网源')

_ID_NUMBER = re.compile(r'\d{17}[\dX]')
_CLIENT_NAME_MAX = 100
#: the alarm form's ``alarm_source`` field holds at most this many characters
_ALARM_SOURCE_MAX = 60

MSG_INVALID = N_('事件数据有误，请检查标出的字段。')
MSG_REQUIRED = N_('此项为必填项。')
MSG_TEXT = N_('应为文本。')
MSG_TOO_LONG = N_('不能超过 {max} 个字符。')
MSG_UNKNOWN = N_('未知字段。')
MSG_ID_NUMBER = N_('公民身份号码应为 18 位（最后一位可为 X）。')
MSG_ALARM_TYPE = N_('报警类型只能是 越界、关机、人机分离、异常签到。')
MSG_OCCURRED_AT = N_('请输入 ISO 8601 格式的报警时间，例如 2025-10-10T10:15:00+08:00。')
MSG_SOURCE = N_('案件来源只能是 警源、政源、诉源、访源、网源。')
MSG_DATE = N_('请输入 YYYY-MM-DD 格式的日期。')
MSG_PAYLOAD = N_('payload 应为 JSON 对象。')
MSG_KIND = N_('事件类型只能是 alarm（监管报警）或 referral（纠纷移交）。')
MSG_KIND_NOT_ALLOWED = N_('该接入方无权发送此类事件。')
MSG_CLIENT_NAME = N_('接入方名称须为 1 至 100 个字符，且不能与已有接入方重名。')
MSG_CLIENT_KINDS = N_('请至少选择一种事件类型（alarm、referral）。')
MSG_CLIENT_NOT_FOUND = N_('接入方不存在')
MSG_NO_START_FORM = N_('医疗纠纷调解流程没有开始表单，无法接收移交。')
MSG_NO_PERSON = N_('本辖区内没有该公民身份号码的在册社区矫正对象。')
MSG_CASE_CLOSED = N_('该社区矫正对象的案件 {number} 已结案，报警未送达任何流程。')
MSG_ALARM_DELIVERED = N_('已送达案件 {number}，已生成核查任务。')
MSG_REFERRAL_STARTED = N_('已立案 {number}。')
MSG_REFERRAL_ATTACHED = N_('已并入办理中的案件 {number}（同一患者、同一医疗机构）。')

Problems = dict[str, list[str]]


@dataclass(frozen=True)
class EventOutcome:
    """What :func:`receive_event` answers: the recorded event, and whether it was an earlier one's replay."""

    event: InboundEvent
    replayed: bool

    @property
    def created(self) -> bool:
        """Whether the event started something new (an alarm check, a case)."""
        return self.event.effect in ('request_started', 'case_started')


# -- machine clients --------------------------------------------------------------------------------------

def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


def create_client(session: Session, name: str, org_unit: OrgUnit, kinds: list[str] | tuple[str, ...], *,
                  actor: User | None) -> tuple[MachineClient, str]:
    """Create a machine client and its token; only the token's digest is kept.

    :param kinds: the event kinds it may send (``alarm``, ``referral``)
    :param actor: the system administrator (None from the command line)
    :return: the client and its token, to be shown once
    :raise ValidationFailed: a blank, too long or taken name, or no valid kind
    """
    name = name.strip()
    wanted = sorted({kind.strip() for kind in kinds if kind.strip()})
    problems: Problems = {}
    taken = session.scalars(sa.select(MachineClient.id).where(MachineClient.name == name)).first()
    if not name or len(name) > _CLIENT_NAME_MAX or taken is not None:
        problems['name'] = [_(MSG_CLIENT_NAME)]
    if not wanted or any(kind not in EVENT_KINDS for kind in wanted):
        problems['kinds'] = [_(MSG_CLIENT_KINDS)]
    if problems:
        raise ValidationFailed(_(MSG_INVALID), problems)
    token = secrets.token_urlsafe(32)
    client = MachineClient(name=name, org_unit_id=org_unit.id, org_unit=org_unit, kinds=wanted,
                           token_hash=_token_digest(token), is_active=True,
                           created_by_id=actor.id if actor else None, created_dt=now())
    session.add(client)
    session.flush()
    audit.record(session, 'machine_client.created', actor=actor, org_path=org_unit.path,
                 after={'id': client.id, 'name': name, 'org_unit': org_unit.code, 'kinds': wanted})
    return client, token


def set_client_active(session: Session, client: MachineClient, active: bool, *, actor: User | None) -> None:
    """Deactivate a client (its token stops working at once) or activate it again; audited."""
    if client.is_active == active:
        return
    client.is_active = active
    audit.record(session, 'machine_client.activated' if active else 'machine_client.deactivated', actor=actor,
                 org_path=client.org_unit.path, before={'is_active': not active}, after={'is_active': active},
                 note=client.name)


def client_for_token(session: Session, token: str) -> MachineClient | None:
    """The active client ``token`` belongs to, or None."""
    if not token:
        return None
    client = session.scalars(sa.select(MachineClient).where(
        MachineClient.token_hash == _token_digest(token))).one_or_none()
    return client if client is not None and client.is_active else None


def list_clients(session: Session, paths: tuple[str, ...]) -> list[MachineClient]:
    """The clients acting for units below ``paths``, by name."""
    return list(session.scalars(sa.select(MachineClient).join(OrgUnit, OrgUnit.id == MachineClient.org_unit_id)
                                .where(path_filter(OrgUnit.path, paths)).order_by(MachineClient.name)))


def get_client(session: Session, client_id: int, paths: tuple[str, ...]) -> MachineClient:
    """One client acting below ``paths``; NotFound for any other, as for one that does not exist."""
    client = session.get(MachineClient, client_id)
    if client is None or not any(client.org_unit.path.startswith(path) for path in paths):
        raise NotFound(_(MSG_CLIENT_NOT_FOUND))
    return client


# -- payloads -----------------------------------------------------------------------------------------------

def _text(data: Mapping[str, Any], name: str, problems: Problems, *, required: bool, limit: int) -> str | None:
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems[name] = [_(MSG_REQUIRED)]
        return None
    if not isinstance(value, str):
        problems[name] = [_(MSG_TEXT)]
        return None
    value = value.strip()
    if len(value) > limit or '\x00' in value:
        problems[name] = [_(MSG_TOO_LONG).format(max=limit)]
        return None
    return value


def _check(problems: Problems, name: str, ok: bool, message: str) -> None:
    if not ok and name not in problems:
        problems[name] = [_(message)]


def _id_number(data: Mapping[str, Any], problems: Problems, *, required: bool) -> str | None:
    value = _text(data, 'id_number', problems, required=required, limit=18)
    if value is not None:
        value = value.upper()
        _check(problems, 'id_number', _ID_NUMBER.fullmatch(value) is not None, MSG_ID_NUMBER)
    return value


def _instant(text: str | None) -> bool:
    """Whether ``text`` is an ISO date and time (the alarm form's 16 to 25 characters)."""
    if text is None or not 16 <= len(text) <= 25:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _iso_date(text: str | None) -> bool:
    try:
        date.fromisoformat(text or '')
    except ValueError:
        return False
    return text is not None and len(text) == 10


def clean_alarm(data: Mapping[str, Any]) -> dict[str, Any]:
    """An alarm payload checked: ``id_number``, ``alarm_type``, ``occurred_at``, optional ``location`` and
    ``person_name``.

    :raise ValidationFailed: every field's problem at once
    """
    problems: Problems = {name: [_(MSG_UNKNOWN)] for name in data
                          if name not in ('id_number', 'person_name', 'alarm_type', 'occurred_at', 'location')}
    clean = {'id_number': _id_number(data, problems, required=True),
             'person_name': _text(data, 'person_name', problems, required=False, limit=30),
             'alarm_type': _text(data, 'alarm_type', problems, required=True, limit=8),
             'occurred_at': _text(data, 'occurred_at', problems, required=True, limit=25),
             'location': _text(data, 'location', problems, required=False, limit=200)}
    _check(problems, 'alarm_type', clean['alarm_type'] in ALARM_TYPES, MSG_ALARM_TYPE)
    _check(problems, 'occurred_at', _instant(clean['occurred_at']), MSG_OCCURRED_AT)
    if problems:
        raise ValidationFailed(_(MSG_INVALID), problems)
    return {name: value for name, value in clean.items() if value is not None}


def clean_referral(session: Session, data: Mapping[str, Any]) -> dict[str, Any]:
    """A referral payload checked: ``source`` (one of the five), an optional ``reference`` (the sender's own
    number), and the ``dispute_mediation`` start form's fields, checked by that form.

    :raise ValidationFailed: every field's problem at once
    """
    problems: Problems = {}
    source = _text(data, 'source', problems, required=True, limit=8)
    _check(problems, 'source', source in REFERRAL_SOURCES, MSG_SOURCE)
    reference = _text(data, 'reference', problems, required=False, limit=64)
    _id_number(data, problems, required=False)
    form_data = {name: value for name, value in data.items() if name != 'reference'}
    clean: dict[str, Any] = {}
    try:
        clean = validate_form(_dispute_start_form(session), form_data)
    except ValidationFailed as exc:
        problems = {**exc.fields, **problems}
    _check(problems, 'applied_on', _iso_date(str(data.get('applied_on') or '')), MSG_DATE)
    if problems:
        raise ValidationFailed(_(MSG_INVALID), problems)
    if clean.get('id_number'):
        clean['id_number'] = str(clean['id_number']).strip().upper()
    return {**clean, 'reference': reference} if reference else clean


def _dispute_start_form(session: Session) -> FormSpec:
    form = process_bundle(session, latest_definition(session, DISPUTE_PROCESS)).start_form
    if form is None:
        raise NotFound(_(MSG_NO_START_FORM))
    return form


def clean_payload(session: Session, kind: str, payload: Any) -> dict[str, Any]:
    """``payload`` checked for ``kind``.

    :raise ValidationFailed: an unknown kind, a payload that is not an object, or bad fields
    """
    if kind not in EVENT_KINDS:
        raise ValidationFailed(_(MSG_INVALID), {'kind': [_(MSG_KIND)]})
    if not isinstance(payload, Mapping):
        raise ValidationFailed(_(MSG_INVALID), {'payload': [_(MSG_PAYLOAD)]})
    return clean_alarm(payload) if kind == 'alarm' else clean_referral(session, payload)


# -- receiving ----------------------------------------------------------------------------------------------

def receive_event(session: Session, client: MachineClient, kind: str, key: str,
                  payload: Mapping[str, Any]) -> EventOutcome:
    """Record an event from ``client`` and deliver it, or answer a repeat with the first outcome.

    Never commits: the event row and its effect commit or roll back together with the caller.

    :param kind: ``alarm`` or ``referral``
    :param key: the client's idempotency key for this event (1–128 visible ASCII characters)
    :param payload: the event's data (see :func:`clean_alarm`, :func:`clean_referral`)
    :return: the recorded event, ``replayed`` when the key had been used for the same event before
    :raise AccessDenied: the client may not send ``kind``
    :raise ValidationFailed: bad key or payload (nothing is recorded)
    :raise Conflict: the key was used by this client for a different event
    """
    if not client.may_send(kind):
        raise AccessDenied(_(MSG_KIND_NOT_ALLOWED))
    check_key(key)
    digest = fingerprint({'kind': kind, 'payload': payload})
    clean = clean_payload(session, kind, payload)
    event, fresh = _claim(session, client, kind, key, digest, clean)
    if not fresh:
        if event.fingerprint != digest:
            raise Conflict(_(MSG_KEY_REUSED))
        return EventOutcome(event, replayed=True)
    _deliver(session, client, event, clean)
    audit.record(session, f'event.{event.status}', actor=None, case_id=event.case_id, org_path=event.org_path,
                 after={'event': event.id, 'kind': kind, 'client': client.name, 'key': key,
                        'effect': event.effect, 'message': event.message}, note=client.name)
    return EventOutcome(event, replayed=False)


def _claim(session: Session, client: MachineClient, kind: str, key: str, digest: str,
           clean: dict[str, Any]) -> tuple[InboundEvent, bool]:
    """Insert the event under its key, or find the one a twin or an earlier call inserted."""
    event = _find(session, client.id, key)
    if event is not None:
        return event, False
    event = InboundEvent(client_id=client.id, kind=kind, key=key, fingerprint=digest,
                         payload=clean, received_dt=now(), status='received', org_path=client.org_unit.path,
                         message='')
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        # A twin committed the key while this one waited on its unique index: answer as it did.
        found = _find(session, client.id, key)
        if found is None:
            raise
        return found, False
    return event, True


def _find(session: Session, client_id: int, key: str) -> InboundEvent | None:
    return session.scalars(sa.select(InboundEvent).where(InboundEvent.client_id == client_id,
                                                         InboundEvent.key == key)
                           .execution_options(populate_existing=True)).one_or_none()


def _deliver(session: Session, client: MachineClient, event: InboundEvent, clean: dict[str, Any]) -> None:
    """Run the event's effect in a savepoint; an effect the engine refuses leaves the event ``rejected``.

    Bad input (ValidationFailed) is not caught: it is the client's to fix, and nothing is recorded.
    """
    deliver: Callable[[Session, MachineClient, InboundEvent, dict[str, Any]], None] = (
        _deliver_alarm if event.kind == 'alarm' else _deliver_referral)
    try:
        with session.begin_nested():
            deliver(session, client, event, clean)
    except ValidationFailed:
        raise
    except EngineError as exc:
        event.status, event.effect, event.message = 'rejected', None, exc.message[:500]
    session.flush()


def _deliver_alarm(session: Session, client: MachineClient, event: InboundEvent, clean: dict[str, Any]) -> None:
    path = client.org_unit.path
    case = _corrections_case(session, path, clean['id_number'], open_only=True)
    if case is None:
        closed = _corrections_case(session, path, clean['id_number'], open_only=False)
        event.status, event.case_id = 'unmatched', closed.id if closed else None
        event.message = _(MSG_CASE_CLOSED).format(number=closed.number) if closed else _(MSG_NO_PERSON)
        return
    data = {'case_id': case.id, 'alarm_type': clean['alarm_type'], 'occurred_at': clean['occurred_at'],
            'location': clean.get('location'), 'alarm_source': client.name[:_ALARM_SOURCE_MAX]}
    runtime.start_case(session, ALARM_PROCESS, data, actor=None, org_unit=case.org_unit)
    event.status, event.effect, event.case_id = 'delivered', 'request_started', case.id
    event.message = _(MSG_ALARM_DELIVERED).format(number=case.number)


def _corrections_case(session: Session, path: str, id_number: str, *, open_only: bool) -> Case | None:
    """The newest corrections case of ``id_number`` below ``path`` (only open ones if ``open_only``)."""
    query = sa.select(Case).where(Case.kind == CORRECTIONS_CASE, Case.id_number == id_number,
                                  starts_with(Case.org_path, path))
    if open_only:
        query = query.where(Case.status == 'open')
    return session.scalars(query.order_by(Case.id.desc()).limit(1)).first()


def _deliver_referral(session: Session, client: MachineClient, event: InboundEvent,
                      clean: dict[str, Any]) -> None:
    case = _open_dispute(session, client.org_unit.path, clean)
    if case is not None:
        audit.record(session, 'case.referral_attached', actor=None, case_id=case.id, org_path=case.org_path,
                     after={'event': event.id, 'client': client.name, 'referral': clean}, note=client.name)
        event.status, event.effect, event.case_id = 'delivered', 'case_attached', case.id
        event.message = _(MSG_REFERRAL_ATTACHED).format(number=case.number)
        return
    data = {name: value for name, value in clean.items() if name != 'reference'}
    case, _tasks = runtime.start_case(session, DISPUTE_PROCESS, data, actor=None, org_unit=client.org_unit)
    event.status, event.effect, event.case_id = 'delivered', 'case_started', case.id
    event.message = _(MSG_REFERRAL_STARTED).format(number=case.number)


def _open_dispute(session: Session, path: str, clean: dict[str, Any]) -> Case | None:
    """The open dispute below ``path`` of the same patient (ID number, else name) and hospital."""
    patient = (Case.id_number == clean['id_number'] if clean.get('id_number')
               else Case.person_name == str(clean['person_name']).strip())
    return session.scalars(sa.select(Case).where(
        Case.kind == DISPUTE_PROCESS, Case.status == 'open', patient,
        Case.hospital == str(clean['hospital']).strip(), starts_with(Case.org_path, path))
        .order_by(Case.id).limit(1)).first()


# -- the supervisors' list ------------------------------------------------------------------------------------

#: the statuses a supervisor must look at: nothing was delivered
ATTENTION = ('unmatched', 'rejected')


def events_query(paths: tuple[str, ...], *, attention_only: bool) -> sa.Select[tuple[InboundEvent]]:
    """Events received by clients of units below ``paths``, newest first."""
    query = sa.select(InboundEvent).where(path_filter(InboundEvent.org_path, paths))
    if attention_only:
        query = query.where(InboundEvent.status.in_(ATTENTION))
    return query.order_by(InboundEvent.id.desc())


def count_attention(session: Session, paths: tuple[str, ...]) -> int:
    """How many events below ``paths`` were not delivered (the badge on the supervisors' page)."""
    return session.scalar(sa.select(sa.func.count()).select_from(
        events_query(paths, attention_only=True).order_by(None).subquery())) or 0
