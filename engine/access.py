"""Who may see and act on what: every case and task query is scoped through here.

A membership (user, group, org unit) grants its group's tasks at that unit and everything below it.
A ``supervisor`` membership grants every case and task below its unit. Nothing outside the union of a
user's subtrees is ever returned; callers turn "not visible" into a 404, never a 403.

Within a subtree three rules narrow what a case role sees (``Reach``):

- lifecycles: the domain registers which roles work on which case kinds (``register_lifecycle``); a role sees
  the cases of its lifecycles only (卫健局 no corrections case, 司法所 no medical dispute). Supervisors see
  every lifecycle; a kind no lifecycle names stays visible to every case role, as before.
- hospitals: a role the lifecycle marks as tied to a hospital (医院医患办) sees only the cases whose
  ``Case.hospital`` is a hospital the user is tied to, by holding a group ``hospital:<name>``
  (``HOSPITAL_PREFIX``).
- minors (社区矫正法 §54): a minor's case is seen only from grants at its county or below, by whoever holds or
  delegated one of its tasks, and a task by candidates of the very unit it is addressed to; city and province
  supervisors count such cases in the statistics' aggregates only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from engine import audit
from engine.db import starts_with
from engine.errors import NotFound
from engine.models.cases import Case, CaseAccessGrant
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import Group, Membership, User

SUPERVISOR = 'supervisor'
DESIGNER = 'designer'
#: 三员: 系统管理员 keeps accounts, org units and the working calendar
SYSTEM_ADMIN = 'system_admin'
#: 三员: 安全保密管理员 grants and revokes roles (memberships) and second factors
SECURITY_ADMIN = 'security_admin'
#: 三员: 安全审计员 reads the audit log
AUDIT_ADMIN = 'audit_admin'
#: the legacy administrator role of installs older than the 三员 split: a system administrator by another name
#: (it keeps the calendar, ranking weights and, with ``SYSTEM_ADMIN``, the account pages); new installs use
#: ``SYSTEM_ADMIN``
ADMIN = 'admin'
#: the group codes that make a system administrator
SYSTEM_ADMIN_ROLES = frozenset({SYSTEM_ADMIN, ADMIN})
#: the 三员 a person may hold one of only, each with the codes that count as it
THREE_ROLES = {SYSTEM_ADMIN: SYSTEM_ADMIN_ROLES, SECURITY_ADMIN: frozenset({SECURITY_ADMIN}),
               AUDIT_ADMIN: frozenset({AUDIT_ADMIN})}
#: supervisors at this depth or above (``/1/`` province, ``/1/4/`` city) see a large share of all tasks
WIDE_SUBTREE_DEPTH = 3
#: roles that grant no case visibility by themselves (三员: administration is not case work)
NON_CASE_ROLES = frozenset({DESIGNER, ADMIN, SYSTEM_ADMIN, SECURITY_ADMIN, AUDIT_ADMIN})


# -- lifecycles: which roles see which kinds of case -----------------------------------------------------

#: a group with a code of this form (``hospital:桃江县人民医院``, the name as dispute cases record it) ties its
#: holder to that hospital; it grants nothing by itself
HOSPITAL_PREFIX = 'hospital:'
#: a path with this many slashes is a county's (``/1/4/9/``): minors' cases are seen from there down only (§54)
COUNTY_DEPTH = 4


@dataclass(frozen=True)
class Lifecycle:
    """A family of process keys (case kinds) and the roles that work on its cases.

    :param name: what to call it, e.g. ``corrections``
    :param kinds: the process keys whose cases belong to it
    :param roles: the groups that see those cases: the candidate groups of its tasks (supervisors see all)
    :param hospital_roles: those of ``roles`` that see only the cases against a hospital they are tied to
    """

    name: str
    kinds: frozenset[str]
    roles: frozenset[str]
    hospital_roles: frozenset[str] = frozenset()


_lifecycles: dict[str, Lifecycle] = {}


def register_lifecycle(name: str, kinds: Iterable[str], roles: Iterable[str], *,
                       hospital_roles: Iterable[str] = ()) -> None:
    """Declare which roles see the cases of ``kinds``; the domain packages call this, and calling it again
    replaces the lifecycle of that name.

    :param hospital_roles: roles that see only the cases against a hospital they are tied to
        (``HOSPITAL_PREFIX``)
    """
    _lifecycles[name] = Lifecycle(name, frozenset(kinds), frozenset(roles), frozenset(hospital_roles))


def registered_lifecycles() -> tuple[Lifecycle, ...]:
    """Every lifecycle registered so far."""
    return tuple(_lifecycles.values())


def is_case_role(group: str) -> bool:
    """Whether holding ``group`` shows cases at all (neither administration nor a hospital tie)."""
    return group not in NON_CASE_ROLES and not group.startswith(HOSPITAL_PREFIX)


@dataclass(frozen=True)
class Reach:
    """What a user's grants at some paths show of the cases below them.

    :param paths: the subtrees
    :param hidden_kinds: the lifecycle kinds these grants do not see
    :param hospital_kinds: kinds seen only where the case's hospital is one the user is tied to
    :param sees_minors: whether minors' cases are seen (grants at a county or below)
    """

    paths: tuple[str, ...]
    hidden_kinds: frozenset[str] = frozenset()
    hospital_kinds: frozenset[str] = frozenset()
    sees_minors: bool = True

    def covers(self, path: str) -> bool:
        """Whether a record at ``path`` lies in one of the subtrees."""
        return any(path.startswith(p) for p in self.paths)


def sees_minors_from(path: str) -> bool:
    """Whether a grant at ``path`` sees minors' cases below it: at a county or a township, not above (§54)."""
    return path.count('/') >= COUNTY_DEPTH


def _lifecycle_kinds(group: str) -> tuple[frozenset[str], frozenset[str]]:
    """The registered kinds ``group`` does not see, and those it sees only for its hospitals."""
    known: set[str] = set()
    seen: set[str] = set()
    tied: set[str] = set()
    for lifecycle in _lifecycles.values():
        known |= lifecycle.kinds
        if group == SUPERVISOR or group in lifecycle.roles:
            seen |= lifecycle.kinds
        if group in lifecycle.hospital_roles:
            tied |= lifecycle.kinds
    return frozenset(known - seen), frozenset(tied)


def _reaches(grants: Iterable[tuple[str, str]]) -> tuple[Reach, ...]:
    """One Reach per distinct rule set, holding every path the rules apply at."""
    paths: dict[tuple[frozenset[str], frozenset[str], bool], set[str]] = {}
    for group, path in grants:
        if is_case_role(group):
            hidden, tied = _lifecycle_kinds(group)
            paths.setdefault((hidden, tied, sees_minors_from(path)), set()).add(path)
    return tuple(Reach(tuple(sorted(found)), hidden, tied, minors)
                 for (hidden, tied, minors), found in paths.items())


def _sees_minor_task(path: str, task: HumanTask) -> bool:
    """A grant at ``path`` sees ``task`` as far as §54 goes: from a county down, at the unit the task is
    addressed to, or when the task's case is not a minor's."""
    return sees_minors_from(path) or task.org_path == path or not task.is_minor


@dataclass(frozen=True)
class Scope:
    """A user's grants: (group code, org path) pairs, loaded once per request."""

    user_id: int
    grants: tuple[tuple[str, str], ...]

    @property
    def groups(self) -> frozenset[str]:
        """Every group code the user holds anywhere."""
        return frozenset(group for group, _ in self.grants)

    @property
    def case_paths(self) -> tuple[str, ...]:
        """Subtrees whose cases the user may see."""
        return tuple(sorted({path for group, path in self.grants if is_case_role(group)}))

    @property
    def supervisor_paths(self) -> tuple[str, ...]:
        """Subtrees the user supervises."""
        return tuple(path for group, path in self.grants if group == SUPERVISOR)

    def has_role(self, group: str) -> bool:
        """Whether the user holds ``group`` anywhere."""
        return group in self.groups

    def paths_of(self, groups: frozenset[str]) -> tuple[str, ...]:
        """Units at which the user holds one of ``groups`` (each with everything below it)."""
        return tuple(sorted({path for group, path in self.grants if group in groups}))

    @property
    def is_system_admin(self) -> bool:
        """Whether the user is a 系统管理员 somewhere (``system_admin`` or the legacy ``admin``)."""
        return not self.groups.isdisjoint(SYSTEM_ADMIN_ROLES)

    @property
    def is_security_admin(self) -> bool:
        """Whether the user is a 安全保密管理员 somewhere."""
        return self.has_role(SECURITY_ADMIN)

    @property
    def is_audit_admin(self) -> bool:
        """Whether the user is a 安全审计员 somewhere."""
        return self.has_role(AUDIT_ADMIN)

    def sees_path(self, path: str) -> bool:
        """Whether a record at org ``path`` lies within one of the user's case subtrees."""
        return any(path.startswith(p) for p in self.case_paths)

    def supervises_path(self, path: str) -> bool:
        """Whether the user supervises the unit at ``path``."""
        return any(path.startswith(p) for p in self.supervisor_paths)

    @property
    def hospitals(self) -> frozenset[str]:
        """The hospitals the user is tied to (groups ``hospital:<name>``)."""
        return frozenset(group.removeprefix(HOSPITAL_PREFIX) for group, _ in self.grants
                         if group.startswith(HOSPITAL_PREFIX))

    @property
    def reaches(self) -> tuple[Reach, ...]:
        """What the user's case roles show, per subtree (lifecycles, hospitals, minors)."""
        return _reaches(self.grants)

    def admits(self, reach: Reach, case: Case) -> bool:
        """Whether ``reach`` shows cases of ``case``'s kind and hospital (its path and §54 aside)."""
        if case.kind in reach.hidden_kinds:
            return False
        return case.kind not in reach.hospital_kinds or case.hospital in self.hospitals

    def owns_case(self, case: Case) -> bool:
        """Whether ``case`` is one of the user's own: in a subtree of theirs, where their roles see its kind,
        its hospital and, for a minor's case, minors. A read grant kept after a transfer does not count."""
        return any(reach.covers(case.org_path) and self.admits(reach, case)
                   and (reach.sees_minors or not case.is_minor) for reach in self.reaches)

    def _hospital_kinds(self, group: str) -> frozenset[str]:
        return _lifecycle_kinds(group)[1]

    def _candidate_at(self, group: str, path: str, task: HumanTask) -> bool:
        if group != task.candidate_group or not task.org_path.startswith(path):
            return False
        if task.process_key in self._hospital_kinds(group) and task.case.hospital not in self.hospitals:
            return False
        return _sees_minor_task(path, task)

    def is_candidate(self, task: HumanTask) -> bool:
        """Whether the user holds the task's candidate group at or above the task's unit (for a hospital role,
        tied to the case's hospital; for a minor's case, at the county or below or at the task's own unit)."""
        return any(self._candidate_at(group, path, task) for group, path in self.grants)

    def supervises_case(self, case: Case) -> bool:
        """Whether the user supervises the case's unit and, for a minor's case, from its county or below."""
        return any(case.org_path.startswith(path) and (sees_minors_from(path) or not case.is_minor)
                   for path in self.supervisor_paths)

    def supervises_task(self, task: HumanTask) -> bool:
        """Whether the user supervises the task's unit and, for a minor's case, from its county or below."""
        return any(group == SUPERVISOR and task.org_path.startswith(path) and _sees_minor_task(path, task)
                   for group, path in self.grants)

    def can_view_task(self, task: HumanTask) -> bool:
        """Candidates, the assignee, the delegating owner and supervisors of the unit see a task."""
        if task.assignee_id == self.user_id or task.owner_id == self.user_id:
            return True
        return self.is_candidate(task) or self.supervises_task(task)

    def can_claim(self, task: HumanTask) -> bool:
        """Candidates may claim an unassigned task."""
        return task.is_open and task.assignee_id is None and self.is_candidate(task)

    def can_complete(self, task: HumanTask) -> bool:
        """The assignee completes; an unassigned task may be completed (and so claimed) by a candidate."""
        if not task.is_open or task.delegation_state == 'pending':
            return False  # a delegated task goes back to its owner before anyone completes it
        return task.assignee_id == self.user_id or (task.assignee_id is None and self.is_candidate(task))

    def can_assign(self, task: HumanTask) -> bool:
        """Supervisors of the task's unit hand tasks to people."""
        return task.is_open and self.supervises_task(task)


def load_scope(session: Session, user: User) -> Scope:
    """Read ``user``'s memberships into a Scope."""
    rows = session.execute(
        sa.select(Group.code, OrgUnit.path)
        .join(Membership, Membership.group_id == Group.id)
        .join(OrgUnit, OrgUnit.id == Membership.org_unit_id)
        .where(Membership.user_id == user.id)
    ).all()
    return Scope(user.id, tuple((code, path) for code, path in rows))


def path_filter(column: sa.ColumnElement[str] | InstrumentedAttribute[str],
                paths: tuple[str, ...]) -> sa.ColumnElement[bool]:
    """True where ``column`` (an org path) lies under one of ``paths``; false for none."""
    if not paths:
        return sa.false()
    return sa.or_(*(starts_with(column, p) for p in paths))


def visible_cases_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """Cases in the user's subtrees, plus cases their units keep read access to after a transfer; in either,
    only those the user's roles there see (``Reach``: lifecycle, hospital, §54 minors)."""
    terms: list[sa.ColumnElement[bool]] = []
    for reach in scope.reaches:
        admitted = _admitted_clauses(scope, reach)
        in_subtree = path_filter(Case.org_path, reach.paths)
        granted = sa.exists().where(CaseAccessGrant.case_id == Case.id, _grant_filter(reach.paths))
        if reach.sees_minors:
            terms.append(sa.and_(sa.or_(in_subtree, granted), *admitted))
        else:
            terms.append(sa.and_(in_subtree, *admitted, sa.or_(sa.not_(Case.is_minor), _holds_task_clause(scope))))
            terms.append(sa.and_(granted, *admitted, sa.not_(Case.is_minor)))
    return sa.or_(*terms) if terms else sa.false()


def _admitted_clauses(scope: Scope, reach: Reach) -> list[sa.ColumnElement[bool]]:
    """``Scope.admits`` as SQL: the kinds ``reach`` hides, and the hospitals of its hospital-bound kinds."""
    clauses: list[sa.ColumnElement[bool]] = []
    if reach.hidden_kinds:
        clauses.append(Case.kind.not_in(sorted(reach.hidden_kinds)))
    if reach.hospital_kinds:
        clauses.append(sa.or_(Case.kind.not_in(sorted(reach.hospital_kinds)),
                              Case.hospital.in_(sorted(scope.hospitals))))
    return clauses


def _holds_task_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """The case has a task the user holds or delegated (§54: they are among its officers)."""
    return sa.exists().where(HumanTask.case_id == Case.id,
                             sa.or_(HumanTask.assignee_id == scope.user_id, HumanTask.owner_id == scope.user_id))


def _grant_filter(paths: tuple[str, ...]) -> sa.ColumnElement[bool]:
    # A grant to a county reaches its townships' staff, and the supervisors above it.
    clauses = [sa.or_(starts_with(CaseAccessGrant.org_path, path),
                      sa.literal(path).startswith(CaseAccessGrant.org_path)) for path in paths]
    return sa.or_(*clauses) if clauses else sa.false()


def visible_cases(scope: Scope) -> sa.Select[tuple[Case]]:
    """A select of the cases ``scope`` may see."""
    return sa.select(Case).where(visible_cases_clause(scope))


def supervised_cases_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """Cases below the units the user supervises (supervision search, failures), minors' cases only from the
    county down or to whoever holds one of their tasks (§54)."""
    deep = tuple(path for path in scope.supervisor_paths if sees_minors_from(path))
    shallow = tuple(path for path in scope.supervisor_paths if not sees_minors_from(path))
    terms = [path_filter(Case.org_path, deep)] if deep else []
    if shallow:
        terms.append(sa.and_(path_filter(Case.org_path, shallow),
                             sa.or_(sa.not_(Case.is_minor), _holds_task_clause(scope))))
    return sa.or_(*terms) if terms else sa.false()


def can_view_case(session: Session, scope: Scope, case: Case) -> bool:
    """Whether ``scope`` may read ``case``: its own (``Scope.owns_case``), a grant kept after a transfer, or,
    for a minor's case in a subtree of the user's, one of its tasks held or delegated by the user."""
    if scope.owns_case(case):
        return True
    admitting = [reach for reach in scope.reaches if scope.admits(reach, case)]
    granting = tuple(path for reach in admitting if reach.sees_minors or not case.is_minor for path in reach.paths)
    if granting and session.scalar(sa.select(sa.exists().where(CaseAccessGrant.case_id == case.id,
                                                               _grant_filter(granting)))):
        return True
    if case.is_minor and any(reach.covers(case.org_path) for reach in admitting):
        return bool(session.scalar(sa.select(sa.exists().where(
            HumanTask.case_id == case.id,
            sa.or_(HumanTask.assignee_id == scope.user_id, HumanTask.owner_id == scope.user_id)))))
    return False


def visible_open_tasks_clause(scope: Scope, *, pinpoint: bool = False) -> sa.ColumnElement[bool]:
    """The WHERE clause for the open tasks ``scope`` may see (see ``Scope.can_view_task``).

    Each term is one index range. Below a city they hold a few thousand rows at most, and their union beats
    an OR, which the planner answers by scanning every open task. A city's or province's subtree holds a
    large share of the table: there one OR, scanned in due order, stops after a page. With a ``pinpoint``
    filter (an ID number) that finds its few rows by itself, the OR too: checked on those rows, where the union
    would first gather every task of a county (7 ms a tab on SQLite at a million tasks). The rule on minors (§54)
    reads the task's own copy of the flag. The rule on hospitals adds a look-up of the task's case by its
    primary key, to a hospital role's terms only: no other to-do list reads a case.
    """
    terms = [HumanTask.assignee_id == scope.user_id, HumanTask.owner_id == scope.user_id,
             *_candidate_terms(scope, scope.grants),
             *(sa.and_(starts_with(HumanTask.org_path, path), *_minor_task_clauses(path))
               for path in scope.supervisor_paths)]
    if pinpoint or has_wide_reach(scope):
        return sa.and_(HumanTask.status == 'open', sa.or_(*terms))
    return HumanTask.id.in_(sa.union(*(sa.select(HumanTask.id).where(HumanTask.status == 'open', term)
                                       for term in terms)))


def is_wide_path(path: str) -> bool:
    """Whether ``path`` is a province's or a city's: the tasks under it are a large share of all tasks."""
    return path.count('/') <= WIDE_SUBTREE_DEPTH


def reaches_a_county(path: str) -> bool:
    """Whether ``path`` is a county's or above it: the tasks under it are every open task of a county or more."""
    return path.count('/') <= COUNTY_DEPTH


def has_wide_reach(scope: Scope) -> bool:
    """Whether ``scope`` supervises a city or a province: its to-do lists are a large share of all tasks."""
    return any(is_wide_path(path) for path in scope.supervisor_paths)


def _candidate_terms(scope: Scope, grants: Iterable[tuple[str, str]]) -> list[sa.ColumnElement[bool]]:
    """``Scope.is_candidate`` as SQL, one term per grant."""
    terms = []
    for group, path in grants:
        if group.startswith(HOSPITAL_PREFIX):
            continue
        term = [HumanTask.candidate_group == group, starts_with(HumanTask.org_path, path)]
        tied = scope._hospital_kinds(group)
        if tied:
            theirs = sa.exists().where(Case.id == HumanTask.case_id, Case.hospital.in_(sorted(scope.hospitals)))
            term.append(sa.or_(HumanTask.process_key.not_in(sorted(tied)), theirs))
        terms.append(sa.and_(*term, *_minor_task_clauses(path)))
    return terms


def _minor_task_clauses(path: str) -> list[sa.ColumnElement[bool]]:
    """``_sees_minor_task`` as SQL: nothing from a county down, else the task's case is no minor's."""
    if sees_minors_from(path):
        return []
    return [sa.or_(HumanTask.org_path == path, not_minor_task_clause())]


def not_minor_task_clause() -> sa.ColumnElement[bool]:
    """True where the task's case is not a minor's (read on the task's own row)."""
    return HumanTask.is_minor.is_(False)


def group_queue_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """Unassigned open tasks of the user's groups at their units."""
    candidate = _candidate_terms(scope, [(group, path) for group, path in scope.grants
                                         if group not in NON_CASE_ROLES])
    if not candidate:
        return sa.false()
    return sa.and_(HumanTask.assignee_id.is_(None), sa.or_(*candidate))


# -- refused attempts ------------------------------------------------------------------------------------

#: ``session.info`` key of the attempts refused during the current unit of work
REFUSALS_KEY = 'fengqiao_refusals'


@dataclass(frozen=True)
class Refusal:
    """An attempt on a record that exists but lies outside the caller's reach.

    :param record: what was asked for: ``case``, ``task``, ``attachment``, ``instance``, ``job``, ``org_unit`` …
    :param record_id: its id (or code, for units)
    :param org_path: the record's unit, so that the supervisors of that unit read the attempt in their log
    """

    user_id: int
    record: str
    record_id: int | str
    org_path: str | None


def refuse(session: Session, user_id: int, record: str, record_id: int | str, org_path: str | None,
           message: str) -> NotFound:
    """Note an attempt by ``user_id`` on a record outside their reach and return the NotFound to raise.

    The caller answers exactly as for a record that does not exist, so an outsider learns nothing; the
    attempt is kept on the session, outside its transaction, because the refusal usually rolls that back.
    The web layer writes the noted attempts as ``access.refused`` audit events once the request's own unit
    of work has ended (see ``record_refusals``).
    """
    session.info.setdefault(REFUSALS_KEY, []).append(Refusal(user_id, record, record_id, org_path))
    return NotFound(message)


def take_refusals(session: Session) -> list[Refusal]:
    """The attempts noted on ``session`` since the last call, which forgets them."""
    refusals: list[Refusal] = session.info.pop(REFUSALS_KEY, [])
    return refusals


def record_refusals(session: Session, refusals: list[Refusal], *, endpoint: str | None, method: str) -> None:
    """Write each refused attempt as an ``access.refused`` audit event at the record's unit.

    :param endpoint: the route that was asked (``cases.show_case``), kept with the event
    :param method: the HTTP method
    """
    for refusal in refusals:
        actor = session.get(User, refusal.user_id)
        audit.record(session, 'access.refused', actor=actor, org_path=refusal.org_path,
                     after={'record': refusal.record, 'id': refusal.record_id, 'endpoint': endpoint,
                            'method': method})
