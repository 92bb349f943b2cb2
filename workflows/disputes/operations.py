"""Business operations on medical-dispute cases: plain functions that change state, flush and audit.

They never commit (the command that runs them does, once) and know nothing of BPMN or HTTP; the
service operations in :mod:`workflows.disputes.services` and the demo loader call them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import audit
from engine.calendar import ancestor_ids
from engine.clock import now
from engine.errors import ValidationFailed
from engine.models.cases import Case
from engine.models.notifications import Notification
from engine.models.org_units import OrgUnit
from engine.models.users import Group, Membership, User
from workflows.disputes.settings import LEVEL_NAMES, LEVELS

RISK_COLOURS = ('green', 'yellow', 'red')


def set_risk_colour(session: Session, case: Case, colour: str, *, reason: str, inputs: dict[str, Any],
                    actor: User | None) -> Case:
    """Record the 三色 triage colour of ``case``; every change is in the audit log (the colour's history).

    :param colour: ``green``, ``yellow`` or ``red``
    :param reason: why, as the decision table phrased it
    :param inputs: the values the decision was taken on
    :param actor: who completed the step that triggered the triage
    """
    if colour not in RISK_COLOURS:
        raise ValidationFailed('数据有误', {'risk_colour': [f'风险等级只能是 {"、".join(RISK_COLOURS)}。']})
    before = case.risk_colour
    case.risk_colour = colour
    session.flush()
    audit.record(session, 'dispute.triaged', actor=actor, case_id=case.id, org_path=case.org_path,
                 before={'risk_colour': before}, after={'risk_colour': colour, 'reason': reason, 'inputs': inputs})
    return case


def township_unit(session: Session, case: Case, code: str | None, *, field: str) -> OrgUnit:
    """The township unit (司法所) with ``code`` inside the case's county, for village and township mediation.

    :param field: the form field to report a problem on
    :raises ValidationFailed: no code, or not a township of the case's subtree
    """
    if not code:
        raise ValidationFailed('数据有误', {field: ['在村（居）或乡镇（街道）调解时，'
                                                '须填写当事人住所地乡镇（司法所）代码。']})
    unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == code)).one_or_none()
    if unit is None or unit.level != 'township' or not unit.path.startswith(case.org_path):
        raise ValidationFailed('数据有误', {field: [f'“{code}”不是本县（区）的乡镇（司法所）代码。']})
    return unit


def change_level(session: Session, case: Case, level: str, *, actor: User | None, note: str) -> Case:
    """Move the case to mediation tier ``level`` (村 / 乡镇 / 县); audited.

    :param note: why (the tier it came from, the "431" count reached...)
    """
    if level not in LEVELS:
        raise ValidationFailed('数据有误', {'mediation_level': [f'调解层级只能是 {"、".join(LEVELS)}。']})
    before = case.mediation_level
    if before == level:
        return case
    case.mediation_level = level
    session.flush()
    audit.record(session, 'dispute.level_changed', actor=actor, case_id=case.id, org_path=case.org_path,
                 before={'mediation_level': before}, after={'mediation_level': level, 'name': LEVEL_NAMES[level]},
                 note=note)
    return case


def increment_counter(session: Session, case: Case, key: str, *, actor: User | None, note: str | None = None) -> int:
    """Add one to the case counter ``key`` ("431" attempts per tier, appraisals...); audited.

    :return: the new count
    """
    counters = dict(case.counters or {})
    before = int(counters.get(key, 0))
    counters[key] = before + 1
    # A new dict, so the JSON column is seen as changed.
    case.counters = counters
    session.flush()
    audit.record(session, 'dispute.counter_changed', actor=actor, case_id=case.id, org_path=case.org_path,
                 before={key: before}, after={key: before + 1}, note=note)
    return before + 1


def init_counters(session: Session, case: Case, *, actor: User | None) -> Case:
    """Give the case a zero count for every tier, so the "431" progress reads 0/4, 0/3, 0/1 from the start."""
    counters = {level: 0 for level in LEVELS}
    counters.update(case.counters or {})
    if counters != case.counters:
        case.counters = counters
        session.flush()
        audit.record(session, 'dispute.counter_changed', actor=actor, case_id=case.id, org_path=case.org_path,
                     before=None, after=counters, note='受理：建立“431”分级调解计数')
    return case


def record_agreement(session: Session, case: Case, amount_agreed: Decimal, *, actor: User | None) -> Case:
    """Store the agreed amount of a signed 调解协议书 on the case; audited.

    :param amount_agreed: the amount in yuan (a Decimal, never a float)
    """
    before = case.agreed_amount
    case.agreed_amount = amount_agreed
    session.flush()
    audit.record(session, 'dispute.agreed', actor=actor, case_id=case.id, org_path=case.org_path,
                 before={'agreed_amount': before}, after={'agreed_amount': amount_agreed})
    return case


def close_dispute(session: Session, case: Case, *, outcome: str, tier: str | None, subsidy: Decimal,
                  actor: User | None) -> Case:
    """Record how the dispute ended and its 个案补贴 tier (以案定补); audited.

    The case's status is closed by the engine when the lifecycle reaches its end event.

    :param outcome: 调解成功 / 调解不成 / 终止 / 不予受理
    :param tier: 一般 / 疑难 / 重大, None when no subsidy applies (不予受理)
    :param subsidy: the amount the tier earns for this outcome, in yuan
    """
    before = {'outcome': case.outcome, 'subsidy_tier': case.subsidy_tier}
    case.outcome, case.subsidy_tier = outcome, tier
    session.flush()
    audit.record(session, 'dispute.closed', actor=actor, case_id=case.id, org_path=case.org_path, before=before,
                 after={'outcome': outcome, 'subsidy_tier': tier, 'subsidy_amount': subsidy})
    return case


def group_members(session: Session, group: str, org_path: str) -> list[User]:
    """Active members of ``group`` at the nearest unit on ``org_path`` (upwards) that has any."""
    for unit_id in reversed(ancestor_ids(org_path)):
        members = list(session.scalars(
            sa.select(User).join(Membership, Membership.user_id == User.id)
            .join(Group, Group.id == Membership.group_id)
            .where(Group.code == group, Membership.org_unit_id == unit_id, User.is_active.is_(True))
            .distinct().order_by(User.id)))
        if members:
            return members
    return []


def notify(session: Session, case: Case, users: Sequence[User], *, kind: str, title: str, body: str, key: str,
           task_id: int | None = None) -> list[User]:
    """Send an in-app notification about ``case`` to each user not yet notified under ``key``; audited.

    :param key: what caused it; a step run twice (a timer job repeated after a crash) notifies once
    :return: the users notified now
    """
    keys = {user.id: f'{key}:{user.id}' for user in users}
    done = set(session.scalars(sa.select(Notification.dedupe_key).where(Notification.dedupe_key.in_(keys.values()))))
    fresh = [user for user in users if keys[user.id] not in done]
    for user in fresh:
        session.add(Notification(user_id=user.id, kind=kind, title=title[:200], body=body, case_id=case.id,
                                 human_task_id=task_id, created_dt=now(), dedupe_key=keys[user.id]))
    session.flush()
    if fresh:
        audit.record(session, 'dispute.notified', actor=None, case_id=case.id, org_path=case.org_path,
                     after={'kind': kind, 'title': title, 'recipients': [user.username for user in fresh]})
    return fresh
