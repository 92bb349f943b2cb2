"""Human tasks: one row per READY user task, the table every to-do list reads."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.db import Base, format_repr, prefix_text

if TYPE_CHECKING:
    from engine.models.cases import Case
    from engine.models.instances import ProcessInstance
    from engine.models.org_units import OrgUnit
    from engine.models.users import User

TASK_STATUSES = ('open', 'completed', 'cancelled')
#: Camunda's DelegationState: the delegate works on it (pending), then hands it back to the owner (resolved)
DELEGATION_STATES = ('pending', 'resolved')
_OPEN = sa.text("status = 'open'")
_QUEUE = sa.text("status = 'open' AND assignee_id IS NULL")
_ASSIGNED = sa.text("status = 'open' AND assignee_id IS NOT NULL")
_ESCALATED = sa.text("status = 'open' AND escalated_to_group IS NOT NULL")
_FINISHED = sa.text('completed_dt IS NOT NULL')
#: what a case's 三色 colour adds to its tasks' urgency (``camunda:priority`` steps are of 10)
COLOUR_WEIGHTS = {'red': 3, 'yellow': 2, 'green': 1}


def colour_weight(colour: str | None) -> int:
    """The urgency a case colour adds (0 for none or an unknown colour)."""
    return COLOUR_WEIGHTS.get(colour or '', 0)



class HumanTask(Base):
    """A user task waiting for a person, kept in step with the engine in the same transaction."""

    __tablename__ = 'human_tasks'
    __table_args__ = (
        sa.CheckConstraint(f"status IN ({', '.join(repr(s) for s in TASK_STATUSES)})", name='valid_status'),
        sa.UniqueConstraint('instance_id', 'spiff_task_id'),
        # The to-do views read only open rows: partial indexes keep them small however many are done.
        # 我的待办: assigned rows only, so that "assignee IS NULL" (the group queue) cannot pick it.
        sa.Index('ix_human_tasks_open_assignee', 'assignee_id', 'due_dt', 'id',
                 postgresql_where=_ASSIGNED, sqlite_where=_ASSIGNED),
        sa.Index('ix_human_tasks_open_group', 'candidate_group', 'org_path', 'due_dt', 'id',
                 postgresql_where=_OPEN, sqlite_where=_OPEN),
        sa.Index('ix_human_tasks_open_due', 'due_dt', 'id', postgresql_where=_OPEN, sqlite_where=_OPEN),
        sa.Index('ix_human_tasks_open_path', 'org_path', 'due_dt', 'id', postgresql_where=_OPEN,
                 sqlite_where=_OPEN),
        # 组内待认领: only the unassigned rows of a group, so the planner never prefers "assignee IS NULL".
        sa.Index('ix_human_tasks_open_queue', 'candidate_group', 'org_path', 'due_dt', 'id',
                 postgresql_where=_QUEUE, sqlite_where=_QUEUE),
        # 升级给我, the 按紧急程度 sort and the colour filter over a city's or province's open tasks.
        sa.Index('ix_human_tasks_open_escalated', 'escalated_to_group', 'escalated_org_path', 'due_dt', 'id',
                 postgresql_where=_ESCALATED, sqlite_where=_ESCALATED),
        # ... and in due order over a whole province's or city's queue, the unit checked in the index: page 2 of a
        # province's queue (the keyset's OR is no range) read all 21,856 rows of the index above and sorted them.
        sa.Index('ix_human_tasks_open_escalated_due', 'escalated_to_group', 'due_dt', 'id', 'escalated_org_path',
                 postgresql_where=_ESCALATED, sqlite_where=_ESCALATED),
        # In the 按紧急程度 order itself (most urgent first, then soonest due): ascending on priority, only the
        # first key matched, and a city's list was sorted from every open task of the table.
        sa.Index('ix_human_tasks_open_priority', sa.text('priority DESC'), 'due_dt', 'id',
                 postgresql_where=_OPEN, sqlite_where=_OPEN),
        sa.Index('ix_human_tasks_open_colour', 'risk_colour', 'due_dt', 'id', postgresql_where=_OPEN,
                 sqlite_where=_OPEN),
        # The colour filter's count over a county's or a city's tasks, one range of a BitmapOr (PostgreSQL only:
        # SQLite, which cannot combine indexes for an OR, took it over the index above and sorted the page).
        sa.Index('ix_human_tasks_open_colour_path', 'risk_colour', 'org_path',
                 postgresql_where=_OPEN).ddl_if(dialect='postgresql'),
        sa.Index('ix_human_tasks_open_case', 'case_id', postgresql_where=_OPEN, sqlite_where=_OPEN),
        sa.Index('ix_human_tasks_completed_by', 'completed_by_id', 'completed_dt', 'id'),
        # Statistics (engine.statistics): the tasks finished in a period, and those open at a past instant, each
        # read as one range that holds every column the counts and the time per step need (no row lookups).
        sa.Index('ix_human_tasks_finished', 'completed_dt', 'org_path', 'status', 'process_key', 'bpmn_id',
                 'created_dt', 'due_dt', postgresql_where=_FINISHED, sqlite_where=_FINISHED),
        # ... and a city's or the province's open tasks created before an instant (it also serves their to-do
        # lists sorted by arrival, 最近到达).
        sa.Index('ix_human_tasks_open_created', 'created_dt', 'org_path', 'due_dt', 'status', postgresql_where=_OPEN,
                 sqlite_where=_OPEN),
        sa.CheckConstraint("delegation_state IS NULL OR delegation_state IN ('pending', 'resolved')",
                           name='valid_delegation_state'),
    )

    #: primary key
    id: Mapped[int] = mapped_column(primary_key=True)
    #: the instance whose engine state holds this task
    instance_id: Mapped[int] = mapped_column(sa.ForeignKey('process_instances.id'), index=True, nullable=False)
    #: the case, for listing without a join through the instance
    case_id: Mapped[int] = mapped_column(sa.ForeignKey('cases.id'), index=True, nullable=False)
    #: SpiffWorkflow task UUID
    spiff_task_id: Mapped[str] = mapped_column(sa.String(36), nullable=False)
    #: BPMN element id of the user task (the stage)
    bpmn_id: Mapped[str] = mapped_column(sa.String(128), index=True, nullable=False)
    #: title shown to users
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    #: the group whose members may claim it (None: only the assignee)
    candidate_group: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    #: the unit the task is handled at
    org_unit_id: Mapped[int] = mapped_column(sa.ForeignKey('org_units.id'), index=True, nullable=False)
    #: copy of the unit's path for subtree filters
    org_path: Mapped[str] = mapped_column(prefix_text(255), nullable=False)
    #: who holds it now
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), nullable=True)
    #: who delegated it and gets it back (delegation)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: Camunda's delegation state while ``owner_id`` is set: pending (with the delegate) or resolved
    delegation_state: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    #: urgency: the user task's ``camunda:priority`` plus its case's colour weight; higher is more urgent
    priority: Mapped[int] = mapped_column(nullable=False, default=0)
    #: the process key of the task's instance, for the process filter without a join
    process_key: Mapped[str] = mapped_column(sa.String(128), index=True, nullable=False, default='')
    #: copy of the case's 三色 colour / risk level, kept in step by the engine
    risk_colour: Mapped[str | None] = mapped_column(sa.String(16), nullable=True)
    #: copy of the case's ``is_minor`` (社区矫正法 §54, fixed when the case opens), so that a city's or a
    #: province's to-do list filters minors' tasks on the row itself instead of looking up every task's case
    is_minor: Mapped[bool] = mapped_column(nullable=False, default=False, server_default=sa.false())
    #: open / completed / cancelled
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False, default='open')
    #: camunda:formKey, if the task uses a registered form
    form_key: Mapped[str | None] = mapped_column(sa.String(128), nullable=True)
    #: the legal due time
    due_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: how the due time was computed, for "due 2025-10-16: 10 working days from ..."
    due_rule: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    #: when it became ready
    created_dt: Mapped[datetime] = mapped_column(nullable=False)
    #: when it was completed or cancelled
    completed_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: who completed it
    completed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey('users.id'), index=True, nullable=True)
    #: still open after its due time: flagged overdue and put in the escalation target's queue
    is_escalated: Mapped[bool] = mapped_column(nullable=False, default=False, server_default=sa.false())
    #: when it was escalated
    escalated_dt: Mapped[datetime | None] = mapped_column(nullable=True)
    #: the group it was escalated to
    escalated_to_group: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)
    #: the unit whose members of that group were told
    escalated_org_unit_id: Mapped[int | None] = mapped_column(sa.ForeignKey('org_units.id'), index=True,
                                                                 nullable=True)
    #: that unit's path, set with it: the escalation queue of a city or a province is a range of it, which the
    #: planner estimates, where the unit ids of a subtree (a subquery) it estimated at 1 % of the rows
    escalated_org_path: Mapped[str | None] = mapped_column(prefix_text(255), nullable=True)

    instance: Mapped[ProcessInstance] = relationship()
    case: Mapped[Case] = relationship()
    org_unit: Mapped[OrgUnit] = relationship(foreign_keys=[org_unit_id])
    escalated_org_unit: Mapped[OrgUnit | None] = relationship(foreign_keys=[escalated_org_unit_id])
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    completed_by: Mapped[User | None] = relationship(foreign_keys=[completed_by_id])

    @property
    def is_open(self) -> bool:
        """Whether the task still waits for someone."""
        return self.status == 'open'

    def __repr__(self) -> str:
        return format_repr(self, 'id', 'case_id', 'bpmn_id', status='open', assignee_id=None, is_escalated=False)
