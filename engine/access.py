"""Who may see and act on what: every case and task query is scoped through here.

A membership (user, group, org unit) grants its group's tasks at that unit and everything below it.
A ``supervisor`` membership grants every case and task below its unit. Nothing outside the union of a
user's subtrees is ever returned; callers turn "not visible" into a 404, never a 403.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import InstrumentedAttribute, Session

from engine.db import starts_with
from engine.models.cases import Case, CaseAccessGrant
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import Group, Membership, User

SUPERVISOR = 'supervisor'
DESIGNER = 'designer'
ADMIN = 'admin'
#: supervisors at this depth or above (``/1/`` province, ``/1/4/`` city) see a large share of all tasks
WIDE_SUBTREE_DEPTH = 3
#: roles that grant no case visibility by themselves (三员: administration is not case work)
NON_CASE_ROLES = frozenset({DESIGNER, ADMIN})


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
        return tuple(sorted({path for group, path in self.grants if group not in NON_CASE_ROLES}))

    @property
    def supervisor_paths(self) -> tuple[str, ...]:
        """Subtrees the user supervises."""
        return tuple(path for group, path in self.grants if group == SUPERVISOR)

    def has_role(self, group: str) -> bool:
        """Whether the user holds ``group`` anywhere."""
        return group in self.groups

    def sees_path(self, path: str) -> bool:
        """Whether a record at org ``path`` lies within one of the user's case subtrees."""
        return any(path.startswith(p) for p in self.case_paths)

    def supervises_path(self, path: str) -> bool:
        """Whether the user supervises the unit at ``path``."""
        return any(path.startswith(p) for p in self.supervisor_paths)

    def is_candidate(self, task: HumanTask) -> bool:
        """Whether the user holds the task's candidate group at or above the task's unit."""
        return any(group == task.candidate_group and task.org_path.startswith(path)
                   for group, path in self.grants)

    def can_view_task(self, task: HumanTask) -> bool:
        """Candidates, the assignee, the delegating owner and supervisors of the unit see a task."""
        if task.assignee_id == self.user_id or task.owner_id == self.user_id:
            return True
        return self.is_candidate(task) or self.supervises_path(task.org_path)

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
        return task.is_open and self.supervises_path(task.org_path)


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
    """Cases in the user's subtrees, plus cases their units keep read access to after a transfer."""
    granted = sa.exists().where(CaseAccessGrant.case_id == Case.id, _grant_filter(scope))
    return sa.or_(path_filter(Case.org_path, scope.case_paths), granted)


def _grant_filter(scope: Scope) -> sa.ColumnElement[bool]:
    # A grant to a county reaches its townships' staff, and the supervisors above it.
    clauses = [sa.or_(starts_with(CaseAccessGrant.org_path, path),
                      sa.literal(path).startswith(CaseAccessGrant.org_path)) for path in scope.case_paths]
    return sa.or_(*clauses) if clauses else sa.false()


def visible_cases(scope: Scope) -> sa.Select[tuple[Case]]:
    """A select of the cases ``scope`` may see."""
    return sa.select(Case).where(visible_cases_clause(scope))


def can_view_case(session: Session, scope: Scope, case: Case) -> bool:
    """Whether ``scope`` may read ``case`` (its subtree or a grant kept after a transfer)."""
    if scope.sees_path(case.org_path):
        return True
    return bool(session.scalar(sa.select(sa.exists().where(CaseAccessGrant.case_id == case.id,
                                                          _grant_filter(scope)))))


def visible_open_tasks_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """The WHERE clause for the open tasks ``scope`` may see (see ``Scope.can_view_task``).

    Each term is one index range. Below a city they hold a few thousand rows at most, and their union beats
    an OR, which the planner answers by scanning every open task. A city's or province's subtree holds a
    large share of the table: there one OR, scanned in due order, stops after a page.
    """
    candidate = [sa.and_(HumanTask.candidate_group == group, starts_with(HumanTask.org_path, path))
                 for group, path in scope.grants]
    terms = [HumanTask.assignee_id == scope.user_id, HumanTask.owner_id == scope.user_id, *candidate,
             *(starts_with(HumanTask.org_path, path) for path in scope.supervisor_paths)]
    if any(path.count('/') <= WIDE_SUBTREE_DEPTH for path in scope.supervisor_paths):
        return sa.and_(HumanTask.status == 'open', sa.or_(*terms))
    return HumanTask.id.in_(sa.union(*(sa.select(HumanTask.id).where(HumanTask.status == 'open', term)
                                       for term in terms)))


def group_queue_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """Unassigned open tasks of the user's groups at their units."""
    candidate = [sa.and_(HumanTask.candidate_group == group, starts_with(HumanTask.org_path, path))
                 for group, path in scope.grants if group not in NON_CASE_ROLES]
    if not candidate:
        return sa.false()
    return sa.and_(HumanTask.assignee_id.is_(None), sa.or_(*candidate))
