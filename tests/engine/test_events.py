"""engine.events: alarms correlated and delivered, referrals opened or joined, one effect per key, nothing
dropped; machine clients and their tokens; the migration matches the models."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session

from engine import events, runtime
from engine.clock import FrozenClock
from engine.errors import AccessDenied, Conflict, ValidationFailed
from engine.models.audit import AuditEvent
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.events import InboundEvent, MachineClient
from engine.models.instances import ProcessInstance
from engine.models.users import User
from tests.engine.events_support import (
    OFFENDER_ID,
    STRANGER_ID,
    EventWorld,
    alarm,
    build_world,
    dispute_cases,
    open_tasks,
    referral,
)
from tests.fixtures.directory import Org


@pytest.fixture
def world(session: Session, org: Org, create_member: Callable[..., User], clock: FrozenClock) -> EventWorld:
    return build_world(session, org, create_member)


def _events(session: Session) -> list[InboundEvent]:
    session.expire_all()
    return list(session.scalars(sa.select(InboundEvent).order_by(InboundEvent.id)))


def test_alarm_starts_the_check_on_the_open_case_with_its_deadline(session: Session, world: EventWorld) -> None:
    outcome = events.receive_event(session, world.client, 'alarm', 'gps-1', alarm())
    session.commit()
    event = outcome.event
    assert (event.status, event.effect, event.case_id, outcome.created) == ('delivered', 'request_started',
                                                                           world.case.id, True)
    [verify] = open_tasks(session, world.case.id, 'verify')
    # 2 hours from the alarm (10:15 Beijing), not from when the event arrived
    assert verify.due_dt == datetime(2025, 10, 10, 4, 15, tzinfo=UTC)
    request = session.get(ProcessInstance, verify.instance_id)
    assert request is not None and request.definition.key == 'corrections_alarm' and not request.is_lifecycle
    data = runtime.task_data(session, verify)
    assert (data['alarm_type'], data['location'], data['alarm_source']) == ('越界', '桃江县与安化县交界',
                                                                           '桃江县电子定位平台')


def test_alarm_for_an_unknown_person_is_recorded_unmatched_and_audited(session: Session,
                                                                       world: EventWorld) -> None:
    outcome = events.receive_event(session, world.client, 'alarm', 'gps-2', alarm(id_number=STRANGER_ID))
    session.commit()
    assert (outcome.event.status, outcome.event.case_id, outcome.created) == ('unmatched', None, False)
    assert outcome.event.org_path == world.client.org_unit.path
    assert not open_tasks(session, world.case.id, 'verify')
    audited = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'event.unmatched')).one()
    assert audited.org_path == world.client.org_unit.path and audited.after['key'] == 'gps-2'


def test_alarm_for_a_closed_case_is_unmatched_and_names_the_case(session: Session, world: EventWorld) -> None:
    case = session.get(Case, world.case.id)
    assert case is not None
    case.close(datetime(2025, 10, 1, tzinfo=UTC))
    session.commit()
    event = events.receive_event(session, world.client, 'alarm', 'gps-3', alarm()).event
    session.commit()
    assert (event.status, event.case_id) == ('unmatched', case.id)
    assert case.number in event.message
    assert session.scalar(sa.select(sa.func.count()).select_from(ProcessInstance)
                          .where(ProcessInstance.case_id == case.id)) == 1


def test_a_client_of_another_county_cannot_reach_the_case(session: Session, world: EventWorld) -> None:
    event = events.receive_event(session, world.other_client, 'alarm', 'gps-4', alarm()).event
    session.commit()
    assert (event.status, event.case_id) == ('unmatched', None)
    assert not open_tasks(session, world.case.id, 'verify')


def test_the_same_key_twice_has_one_effect(session: Session, world: EventWorld) -> None:
    first = events.receive_event(session, world.client, 'alarm', 'gps-5', alarm())
    session.commit()
    again = events.receive_event(session, world.client, 'alarm', 'gps-5', alarm())
    session.commit()
    assert again.replayed and not first.replayed and again.event.id == first.event.id
    assert len(open_tasks(session, world.case.id, 'verify')) == 1 and len(_events(session)) == 1


def test_the_same_key_for_another_event_is_a_conflict(session: Session, world: EventWorld) -> None:
    events.receive_event(session, world.client, 'alarm', 'gps-6', alarm())
    session.commit()
    with pytest.raises(Conflict):
        events.receive_event(session, world.client, 'alarm', 'gps-6', alarm(alarm_type='关机'))
    session.rollback()
    assert len(open_tasks(session, world.case.id, 'verify')) == 1


def test_keys_of_different_clients_never_meet(session: Session, world: EventWorld) -> None:
    events.receive_event(session, world.client, 'alarm', 'same', alarm())
    other = events.receive_event(session, world.other_client, 'alarm', 'same', alarm(alarm_type='关机'))
    session.commit()
    assert not other.replayed and len(_events(session)) == 2


@pytest.mark.parametrize(('payload', 'field'), [
    (alarm(id_number='12345'), 'id_number'),
    (alarm(alarm_type='掉线'), 'alarm_type'),
    (alarm(occurred_at='昨天'), 'occurred_at'),
    (alarm(battery=5), 'battery'),
    ({'alarm_type': '越界'}, 'id_number'),
])
def test_bad_alarms_are_refused_and_record_nothing(session: Session, world: EventWorld, payload: dict[str, object],
                                                   field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        events.receive_event(session, world.client, 'alarm', 'bad', payload)
    session.rollback()
    assert field in caught.value.fields and not _events(session)


def test_a_client_may_send_only_its_kinds(session: Session, world: EventWorld, org: Org) -> None:
    alarms_only, _token = events.create_client(session, '只报警', org.county, ['alarm'], actor=None)
    with pytest.raises(AccessDenied):
        events.receive_event(session, alarms_only, 'referral', 'r-1', referral())
    events.set_client_active(session, world.client, False, actor=None)
    with pytest.raises(AccessDenied):
        events.receive_event(session, world.client, 'alarm', 'a-1', alarm())


def test_referral_opens_a_dispute_case_with_its_source(session: Session, world: EventWorld, org: Org) -> None:
    outcome = events.receive_event(session, world.client, 'referral', 'ref-1', referral())
    session.commit()
    [case] = dispute_cases(session)
    assert (outcome.event.effect, outcome.event.case_id, outcome.created) == ('case_started', case.id, True)
    assert (case.dispute_source, case.org_unit_id, case.hospital) == ('警源', org.county.id, '桃江县人民医院')
    assert 'reference' not in case.start_data
    assert open_tasks(session, case.id, 'accept_review')


def test_referral_for_the_same_patient_and_hospital_joins_the_open_case(session: Session,
                                                                        world: EventWorld) -> None:
    events.receive_event(session, world.client, 'referral', 'ref-2', referral())
    joined = events.receive_event(session, world.client, 'referral', 'ref-3',
                                  referral(source='访源', reference='桃信转〔2025〕3号'))
    session.commit()
    [case] = dispute_cases(session)
    assert (joined.event.effect, joined.event.case_id, joined.created) == ('case_attached', case.id, False)
    attached = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'case.referral_attached')).one()
    assert attached.case_id == case.id and attached.after['referral']['source'] == '访源'


def test_referral_without_id_number_matches_by_name(session: Session, world: EventWorld) -> None:
    events.receive_event(session, world.client, 'referral', 'ref-4', referral(id_number=None))
    events.receive_event(session, world.client, 'referral', 'ref-5', referral(id_number=None, source='网源'))
    events.receive_event(session, world.client, 'referral', 'ref-6',
                         referral(id_number=None, hospital='桃江县中医医院'))
    session.commit()
    assert [c.hospital for c in dispute_cases(session)] == ['桃江县人民医院', '桃江县中医医院']


def test_referral_of_another_county_opens_its_own_case(session: Session, world: EventWorld) -> None:
    events.receive_event(session, world.client, 'referral', 'ref-7', referral())
    events.receive_event(session, world.other_client, 'referral', 'ref-7', referral())
    session.commit()
    assert len(dispute_cases(session)) == 2


@pytest.mark.parametrize(('payload', 'field'), [
    (referral(source='当事人申请'), 'source'),
    (referral(hospital=''), 'hospital'),
    (referral(claimed_amount=None), 'claimed_amount'),
    (referral(applied_on='2025/09/26'), 'applied_on'),
])
def test_bad_referrals_are_refused_and_record_nothing(session: Session, world: EventWorld,
                                                      payload: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        events.receive_event(session, world.client, 'referral', 'bad', payload)
    session.rollback()
    assert field in caught.value.fields and not _events(session) and not dispute_cases(session)


def test_an_effect_the_engine_refuses_leaves_the_event_rejected(session: Session, world: EventWorld) -> None:
    # The alarm process withdrawn (no version of it left): nothing can take the alarm, yet it is kept.
    session.execute(sa.update(ProcessDefinition).where(ProcessDefinition.key == 'corrections_alarm')
                    .values(key='corrections_alarm_withdrawn'))
    session.commit()
    outcome = events.receive_event(session, world.client, 'alarm', 'gps-9', alarm())
    session.commit()
    assert (outcome.event.status, outcome.event.effect, outcome.created) == ('rejected', None, False)
    assert outcome.event.message and not open_tasks(session, world.case.id, 'verify')
    assert session.scalars(sa.select(AuditEvent.kind).where(AuditEvent.kind.like('event.%'))).all() == [
        'event.rejected']
    assert events.count_attention(session, (world.client.org_unit.path,)) == 1


def test_client_token_is_kept_only_as_a_digest(session: Session, world: EventWorld) -> None:
    assert events.client_for_token(session, world.tokens['tj']) == world.client
    assert world.client.token_hash != world.tokens['tj'] and len(world.client.token_hash) == 64
    events.set_client_active(session, world.client, False, actor=None)
    assert events.client_for_token(session, world.tokens['tj']) is None
    assert events.client_for_token(session, '') is None


def test_client_names_are_unique_and_kinds_known(session: Session, world: EventWorld, org: Org) -> None:
    with pytest.raises(ValidationFailed) as caught:
        events.create_client(session, '桃江县电子定位平台', org.county, ['fax'], actor=None)
    assert set(caught.value.fields) == {'name', 'kinds'}


def test_supervisor_list_counts_what_was_not_delivered(session: Session, world: EventWorld, org: Org) -> None:
    events.receive_event(session, world.client, 'alarm', 'c-1', alarm())
    events.receive_event(session, world.client, 'alarm', 'c-2', alarm(id_number=STRANGER_ID))
    events.receive_event(session, world.other_client, 'alarm', 'c-3', alarm(id_number=OFFENDER_ID))
    session.commit()
    assert events.count_attention(session, (org.county.path,)) == 1
    assert events.count_attention(session, (org.city.path,)) == 2
    assert events.count_attention(session, (org.other_township.path,)) == 0
    listed = session.scalars(events.events_query((org.county.path,), attention_only=False)).all()
    assert [e.key for e in listed] == ['c-2', 'c-1']


EVENT_TABLES = {'machine_clients', 'inbound_events'}


def _concerns(diff: object) -> bool:
    text = repr(diff)
    return any(table in text for table in EVENT_TABLES)


def test_the_migration_matches_the_models(session: Session) -> None:
    from engine.db import Base
    context = MigrationContext.configure(session.connection())
    assert [d for d in compare_metadata(context, Base.metadata) if _concerns(d)] == []
    assert session.scalar(sa.select(sa.func.count()).select_from(MachineClient)) == 0
