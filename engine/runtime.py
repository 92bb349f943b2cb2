"""Running instances. Every command here is one unit of work: the caller commits once, or rolls back.

Each command locks the instance row, loads the workflow from its state and its definition's cached
spec, acts, runs the engine to the next wait state, checks the guards against SpiffWorkflow's silent
failures, syncs human tasks and timer jobs, queues audit events and saves with a revision check.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.specs.event_definitions.item_aware_event import (
    ErrorEventDefinition,
    EscalationEventDefinition,
)
from SpiffWorkflow.bpmn.specs.event_definitions.multiple import MultipleEventDefinition
from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition
from SpiffWorkflow.bpmn.specs.mixins.events.end_event import EndEvent
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.orm import Session, joinedload, undefer
from sqlalchemy.orm.attributes import flag_modified
from sqlalchemy.orm.exc import StaleDataError

from engine import audit, clocks, reminders
from engine.access import Scope, refuse
from engine.clock import LOCAL_ZONE, now
from engine.db import unflushed
from engine.definitions import latest_definition, process_bundle
from engine.errors import (
    AccessDenied,
    Conflict,
    EngineError,
    NotFound,
    ScriptRefused,
    ValidationFailed,
    WorkflowFault,
)
from engine.forms import FormSpec, registered_form, validate_form
from engine.loaded import keep_after_commit, loaded_workflows, mark_reusable
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.org_units import OrgUnit
from engine.models.tasks import COLOUR_WEIGHTS, HumanTask, colour_weight
from engine.models.users import User
from engine.profiles import profile_for
from engine.sandbox import SandboxedScriptEngine, find_script_refused
from engine.serializer import SERIALIZER_VERSION, dump_state, load_state
from engine.services import ServiceContext, service_context
from engine.specs import ProcessBundle, UserTaskInfo


@dataclass
class EngineLimits:
    """Guards against runaway instances; recurring work belongs in short request instances."""

    #: refuse to go on once an instance holds more SpiffWorkflow tasks than this
    max_tasks: int = 3000
    #: largest start/complete payload accepted without a form, in keys
    max_free_fields: int = 200


limits = EngineLimits()
_script_engine = SandboxedScriptEngine()


# -- loading and saving -------------------------------------------------------------------------------

_LOCK = sa.select(ProcessInstance.id).where(ProcessInstance.id == sa.bindparam('id')).with_for_update()
_LOCKED = (sa.select(ProcessInstance).where(ProcessInstance.id == sa.bindparam('id'))
           .options(joinedload(ProcessInstance.definition, innerjoin=True),
                    joinedload(ProcessInstance.case, innerjoin=True).joinedload(Case.org_unit, innerjoin=True))
           .execution_options(populate_existing=True))
_LOCKED_WITH_STATE = _LOCKED.options(undefer(ProcessInstance.state))


def lock_instance_row(session: Session, instance_id: int) -> bool:
    """Take the instance's row lock (SELECT ... FOR UPDATE), the first step of every command and timer job.

    :return: whether the instance exists
    """
    # The statements are built once: every command runs them. (Building one and its cache key anew cost about as
    # much as running it.)
    return session.scalar(_LOCK, {'id': instance_id}) is not None


def _lock_instance(session: Session, instance_id: int) -> ProcessInstance:
    if not lock_instance_row(session, instance_id):
        raise NotFound('流程实例不存在')
    # Read once the lock is held, so that the command sees what the previous holder committed; the definition,
    # case and unit every command reads come in the same round trip. (Joined to the locking statement itself,
    # PostgreSQL would recheck the join against the rows it read before waiting: a migration's new
    # definition would not match, and the instance would seem gone.) The stored state only when no workflow of
    # the instance is kept: if the kept one turns out stale, restore_workflow reads the state then.
    kept = loaded_workflows.holds(instance_id)
    instance = session.scalars(_LOCKED if kept else _LOCKED_WITH_STATE, {'id': instance_id}).one()
    if kept:
        session.expire(instance, ['state'])  # a state read before the lock is not what it holds now
    return instance


def restore_workflow(session: Session, instance: ProcessInstance, *,
                     reuse: bool = False) -> tuple[BpmnWorkflow, ProcessBundle]:
    """Load ``instance``'s workflow from its stored state and its definition's cached spec.

    Nothing is saved: a caller that only reads (the diagram) throws it away; a command settles it.

    :param reuse: a command on the locked instance: take the workflow this process kept at the instance's
        current revision, if any, and keep it again once the command commits (``engine.loaded``)
    """
    bundle = process_bundle(session, instance.definition)
    workflow = loaded_workflows.take(instance) if reuse else None
    if workflow is None:
        workflow = load_state(instance.state, instance.serializer_version, bundle.spec, bundle.subprocess_specs)
        # A restored workflow carries SpiffWorkflow's default (unsandboxed) engine; never let it run.
        workflow.script_engine = _script_engine
    if reuse:
        mark_reusable(session, workflow)
    return workflow, bundle


def all_tasks(workflow: BpmnWorkflow) -> Iterator[Task]:
    """Every task of the workflow and its subprocesses, read from the flat maps.

    SpiffWorkflow's own iterators stop at depth 1000, which is how a long loop silently "completes".
    """
    yield from workflow.tasks.values()
    for subprocess in workflow.subprocesses.values():
        yield from subprocess.tasks.values()


def _save(session: Session, instance: ProcessInstance, workflow: BpmnWorkflow, open_tasks: int) -> None:
    tasks = list(all_tasks(workflow))
    instance.state = dump_state(workflow)
    instance.serializer_version = SERIALIZER_VERSION
    instance.task_count = len(tasks)
    flag_modified(instance, 'state')
    if not any(t.state & TaskState.NOT_FINISHED_MASK for t in tasks):
        instance.status = 'completed'
        instance.completed_dt = now()
    else:
        instance.status = 'running' if open_tasks else 'waiting'
    try:
        session.flush()
    except StaleDataError:
        raise Conflict('案件已被他人更新，请刷新后重试。') from None
    keep_after_commit(session, instance, workflow)


# -- running and guards --------------------------------------------------------------------------------

def _fault_message(exc: Exception) -> str:
    refused = find_script_refused(exc)
    if refused is not None:
        return f'脚本被拒绝执行：{refused.message}'
    return f'流程执行出错：{exc}'


def _advance(workflow: BpmnWorkflow) -> list[Any]:
    """Run to the next wait state; return unhandled non-error events (escalations, outgoing messages)."""
    try:
        for _ in range(_ENGINE_PASSES):
            workflow.do_engine_steps()
            # do_engine_steps ends by refreshing timers: one that fell due meanwhile leaves a READY
            # engine task behind, which the next pass runs. Only a task still stuck after that is a stall.
            if not _ready_engine_tasks(all_tasks(workflow)):
                break
    except (SpiffWorkflowException, ScriptRefused) as exc:
        domain_error = _domain_error(exc)
        if domain_error is not None:
            raise domain_error from exc
        raise WorkflowFault(_fault_message(exc)) from exc
    return _check_guards(workflow)


_ENGINE_PASSES = 3


def _ready_engine_tasks(tasks: Iterable[Task]) -> list[Task]:
    return [t for t in tasks if t.state == TaskState.READY and not t.task_spec.manual]


def _domain_error(exc: BaseException) -> EngineError | None:
    """An EngineError a service operation raised (Conflict, ValidationFailed...), unwrapped."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, EngineError) and not isinstance(cause, ScriptRefused):
            return cause
        cause = getattr(cause, 'exception', None) or cause.__cause__
    return None


def _check_guards(workflow: BpmnWorkflow) -> list[Any]:
    tasks = list(all_tasks(workflow))
    if len(tasks) > limits.max_tasks:
        raise WorkflowFault(f'流程实例已有 {len(tasks)} 个步骤，超过上限 {limits.max_tasks}，已停止以免静默出错。')
    stalled = _ready_engine_tasks(tasks)
    if stalled:
        raise WorkflowFault(f'引擎未能推进步骤 {stalled[0].task_spec.bpmn_id or stalled[0].task_spec.name}。')
    events = workflow.get_events()
    for event in events:
        if isinstance(event.event_definition, ErrorEventDefinition):
            code = getattr(event.event_definition, 'code', None) or event.event_definition.name
            raise WorkflowFault(f'流程抛出了未被捕获的错误事件 "{code}"。')
    finished = not any(t.state & TaskState.NOT_FINISHED_MASK for t in tasks)
    if finished and not any(isinstance(t.task_spec, EndEvent) and t.state == TaskState.COMPLETED
                            for t in workflow.tasks.values()):
        raise WorkflowFault('流程在未到达结束事件的情况下停止，已拒绝将其标记为完成。')
    return [e for e in events if not isinstance(e.event_definition, ErrorEventDefinition)]


def _record_events(session: Session, instance: ProcessInstance, events: list[Any]) -> None:
    for event in events:
        if isinstance(event.event_definition, EscalationEventDefinition):
            code = getattr(event.event_definition, 'code', None) or event.event_definition.name
            audit.record(session, 'instance.escalation_uncaught', actor=None, case_id=instance.case_id,
                         instance_id=instance.id, after={'code': code})


# -- human tasks and timer jobs ---------------------------------------------------------------------------

def _task_org_unit(session: Session, case: Case, info: UserTaskInfo | None, data: Mapping[str, Any]) -> OrgUnit:
    field = info.properties.get('org_unit_field') if info else None
    if field and data.get(field):
        unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == str(data[field]))).one_or_none()
        if unit is None:
            raise WorkflowFault(f'任务指定的机构 "{data[field]}" 不存在。')
        return unit
    return case.org_unit


def _new_human_task(session: Session, instance: ProcessInstance, case: Case, spiff: Task,
                    bundle: ProcessBundle) -> HumanTask:
    bpmn_id = spiff.task_spec.bpmn_id or spiff.task_spec.name
    info = bundle.user_tasks.get(bpmn_id)
    unit = _task_org_unit(session, case, info, spiff.data)
    groups = info.candidate_groups if info else ((spiff.task_spec.lane,) if spiff.task_spec.lane else ())
    created = now()
    due_dt, due_rule = clocks.task_due(session, case, unit.path, info.properties if info else {}, spiff.data,
                                       created)
    return HumanTask(
        instance_id=instance.id, case_id=case.id, spiff_task_id=str(spiff.id), bpmn_id=bpmn_id,
        title=info.title if info else (spiff.task_spec.bpmn_name or bpmn_id),
        candidate_group=groups[0] if groups else None, org_unit_id=unit.id, org_path=unit.path,
        form_key=info.form.key if info else None, status='open', created_dt=created,
        priority=(info.priority if info else 0) + colour_weight(case.risk_colour),
        process_key=instance.definition.key, risk_colour=case.risk_colour, is_minor=case.is_minor,
        due_dt=due_dt, due_rule=due_rule)


# Built once, as the lock's statements: every command runs them.
_OPEN_ROWS = sa.select(HumanTask).where(HumanTask.instance_id == sa.bindparam('id'), HumanTask.status == 'open')
_PENDING_TIMERS = sa.select(Job).where(Job.instance_id == sa.bindparam('id'), Job.kind == 'timer',
                                       Job.status == 'pending')


def _sync_human_tasks(session: Session, instance: ProcessInstance, workflow: BpmnWorkflow,
                      bundle: ProcessBundle, actor: User | None) -> list[HumanTask]:
    """Make the open human-task rows match the READY manual tasks; return the rows now open."""
    ready = {str(t.id): t for t in all_tasks(workflow) if t.state == TaskState.READY and t.task_spec.manual}
    if any(row.instance_id == instance.id and row.id is None for row in unflushed(session, HumanTask)):
        session.flush()  # an open row added and not yet written would not be read
    # A row this command closed is still open in the table until the next flush; what it holds in memory wins.
    with session.no_autoflush:
        rows = [row for row in session.scalars(_OPEN_ROWS, {'id': instance.id}) if row.status == 'open']
    open_rows = []
    for row in rows:
        if row.spiff_task_id in ready:
            ready.pop(row.spiff_task_id)
            open_rows.append(row)
            continue
        row.status, row.completed_dt = 'cancelled', now()
        reminders.cancel_task_jobs(session, row)
        audit.record(session, 'task.cancelled', actor=actor, case_id=row.case_id, instance_id=instance.id,
                     task_id=row.id, org_path=row.org_path, before={'status': 'open'},
                     after={'status': 'cancelled'})
    case = instance.case
    for spiff in ready.values():
        row = _new_human_task(session, instance, case, spiff, bundle)
        session.add(row)
        session.flush()
        audit.record(session, 'task.created', actor=actor, case_id=case.id, instance_id=instance.id,
                     task_id=row.id, org_path=row.org_path,
                     after={'bpmn_id': row.bpmn_id, 'candidate_group': row.candidate_group})
        reminders.schedule_task_jobs(session, row, new=True)
        info = bundle.user_tasks.get(row.bpmn_id)
        if info is not None:
            clocks.on_task_ready(session, row, info.properties, actor)
        open_rows.append(row)
    return open_rows


def waited_events(task: Task) -> list[Any]:
    """The event definitions ``task`` waits for: its own, or at an event-based gateway those of the events after
    it (SpiffWorkflow moves them onto the gateway); none unless it is waiting."""
    if task.state != TaskState.WAITING:
        return []
    definition = getattr(task.task_spec, 'event_definition', None)
    if isinstance(definition, MultipleEventDefinition):
        return list(definition.event_definitions)
    return [] if definition is None else [definition]


def _waiting_timer(task: Task) -> TimerEventDefinition | None:
    """The timer ``task`` waits for, if any."""
    return next((d for d in waited_events(task) if isinstance(d, TimerEventDefinition)), None)


def _timer_fired(task: Task | None) -> bool:
    """Whether the timer a pending job was for fired (else it was withdrawn): its event completed, or a cycle moved
    on to its next time; at an event-based gateway, the timer must be the event the gateway caught."""
    if task is None or task.state not in (TaskState.COMPLETED, TaskState.WAITING):
        return False
    caught = task.internal_data.get('seen_events')
    return caught is None or any(isinstance(event.event_definition, TimerEventDefinition) for event in caught)


def _timer_due(task: Task, timer: TimerEventDefinition) -> datetime | None:
    details = timer.details(task)
    value = details.value
    if isinstance(value, dict):
        value = value.get('next')
    if not isinstance(value, str):
        return None
    due = datetime.fromisoformat(value)
    return due if due.tzinfo else due.replace(tzinfo=LOCAL_ZONE)


def _sync_timer_jobs(session: Session, instance: ProcessInstance, workflow: BpmnWorkflow) -> None:
    """Keep one pending timer job per waiting timer event and set ``next_timer_dt``.

    A pending job whose timer no longer waits for it is settled in this same transaction: ``done`` if
    the timer fired (its event completed, or a cycle moved on to its next time), ``cancelled`` if it was
    withdrawn (its event was cancelled, e.g. the task it sat on was completed first). A key that already
    has a job, in any status, is never scheduled again: a fired timer cannot fire twice, and a timer job
    a supervisor cancelled stays cancelled.
    """
    wanted: dict[str, tuple[datetime, Task]] = {}
    tasks: dict[str, Task] = {}
    for task in all_tasks(workflow):
        tasks[str(task.id)] = task
        timer = _waiting_timer(task)
        due = _timer_due(task, timer) if timer is not None else None
        if due is not None:
            wanted[f'timer:{instance.id}:{task.id}:{due.isoformat()}'] = (due, task)
    if any(job.instance_id == instance.id and job.kind == 'timer' for job in unflushed(session, Job)):
        session.flush()
    with session.no_autoflush:  # the task rows and reminder jobs written so far wait for the save's flush
        existing = session.scalars(_PENDING_TIMERS, {'id': instance.id}).all()
    pending: list[datetime] = []
    for job in existing:
        if wanted.pop(job.key, None) is None:
            # The key is timer:{instance}:{task}:{due}; the task tells "fired" from "withdrawn".
            fired = _timer_fired(tasks.get(job.key.split(':', 3)[2]))
            job.status, job.done_dt = ('done' if fired else 'cancelled'), now()
        else:
            pending.append(job.due_dt)
    with session.no_autoflush:  # nor do the jobs just settled: a key is taken whatever its job's status
        taken = set(session.scalars(sa.select(Job.key).where(Job.key.in_(list(wanted))))) if wanted else set()
    for key, (due, task) in wanted.items():
        if key not in taken:
            session.add(Job(kind='timer', key=key, instance_id=instance.id, due_dt=due, status='pending',
                            payload={'bpmn_id': task.task_spec.bpmn_id}, created_dt=now()))
            pending.append(due)
    # The instance's pending timer jobs are exactly those kept and those just added.
    instance.next_timer_dt = min(pending, default=None)


def _recolour_tasks(session: Session, case: Case) -> None:
    """Carry a new case colour to the case's open tasks: their colour filter and their urgency."""
    old_weight = sa.case({colour: weight for colour, weight in COLOUR_WEIGHTS.items()},
                         value=HumanTask.risk_colour, else_=0)
    session.execute(sa.update(HumanTask).where(HumanTask.case_id == case.id, HumanTask.status == 'open')
                    .values(priority=HumanTask.priority - old_weight + colour_weight(case.risk_colour),
                            risk_colour=case.risk_colour).execution_options(synchronize_session='fetch'))


def _settle(session: Session, instance: ProcessInstance, workflow: BpmnWorkflow, bundle: ProcessBundle,
            actor: User | None) -> list[HumanTask]:
    """Run the engine, then sync tasks and jobs and save; shared by every command."""
    colour = instance.case.risk_colour
    with service_context(ServiceContext(session, instance.case, instance, actor)):
        events = _advance(workflow)
    if instance.case.risk_colour != colour:
        _recolour_tasks(session, instance.case)
    open_rows = _sync_human_tasks(session, instance, workflow, bundle, actor)
    _sync_timer_jobs(session, instance, workflow)
    _record_events(session, instance, events)
    _save(session, instance, workflow, len(open_rows))
    if instance.status == 'completed':
        audit.record(session, 'instance.completed', actor=actor, case_id=instance.case_id,
                     instance_id=instance.id)
        if instance.is_lifecycle and instance.case.status == 'open':
            instance.case.close(now())
            audit.record(session, 'case.closed', actor=actor, case_id=instance.case_id,
                         org_path=instance.case.org_path, before={'status': 'open'}, after={'status': 'closed'})
    return open_rows


# -- commands -------------------------------------------------------------------------------------------

def _clean(form: FormSpec | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``data`` against ``form``; without form fields, accept plain scalar values only."""
    if form is not None and (form.fields or registered_form(form.key)):
        return validate_form(form, data)
    return _free_data(data)


def _free_data(data: Mapping[str, Any]) -> dict[str, Any]:
    if len(data) > limits.max_free_fields:
        raise ValidationFailed('提交的字段过多。')
    bad = {key: ['只接受文字、数字、真假值或空值。'] for key, value in data.items()
           if not isinstance(key, str) or not isinstance(value, (str, int, float, bool, type(None)))}
    if bad:
        raise ValidationFailed('数据有误，请检查标出的字段。', bad)
    return dict(data)


def _new_case(session: Session, definition: ProcessDefinition, data: dict[str, Any], actor: User | None,
              org_unit: OrgUnit) -> Case:
    profile = profile_for(definition.key)
    columns = profile.subject_columns(data)
    code = secrets.token_urlsafe(12)
    case = Case(number=code[:32], public_code=code, kind=definition.key,
                title=profile.title(data, definition.name)[:200], org_unit_id=org_unit.id, org_unit=org_unit,
                org_path=org_unit.path, start_data=data, created_by_id=actor.id if actor else None,
                created_dt=now(), **columns)
    session.add(case)
    session.flush()
    # Numbering by id needs no counter row that every start would have to lock.
    case.number = f'{profile.prefix}-{now().astimezone(LOCAL_ZONE).year}-{case.id:06d}'
    return case


def start_instance(session: Session, case: Case, definition: ProcessDefinition, data: dict[str, Any], *,
                   actor: User | None, is_lifecycle: bool) -> tuple[ProcessInstance, list[HumanTask]]:
    """Start ``definition`` on ``case`` with ``data`` and run it to its first wait state.

    :param is_lifecycle: True for the case's main lifecycle, False for an attached request
    :return: the instance and its open human tasks
    """
    bundle = process_bundle(session, definition)
    workflow = BpmnWorkflow(bundle.spec, bundle.subprocess_specs, script_engine=_script_engine)
    mark_reusable(session, workflow)
    start = workflow.get_next_task(state=TaskState.READY)
    if start is None:
        raise WorkflowFault('流程没有可启动的开始事件。')
    start.data.update(data, case_id=case.id, case_number=case.number)
    instance = ProcessInstance(case=case, case_id=case.id, definition=definition, definition_id=definition.id,
                               is_lifecycle=is_lifecycle, status='running', state={},
                               serializer_version=SERIALIZER_VERSION, created_dt=now())
    session.add(instance)
    session.flush()
    audit.record(session, 'instance.started', actor=actor, case_id=case.id, instance_id=instance.id,
                 org_path=case.org_path, after={'key': definition.key, 'version': definition.version})
    return instance, _settle(session, instance, workflow, bundle, actor)


def start_case(session: Session, process_key: str, data: Mapping[str, Any], *, actor: User | None,
               org_unit: OrgUnit, scope: Scope | None = None) -> tuple[Case, list[HumanTask]]:
    """Open a case of ``process_key`` at ``org_unit`` and run its lifecycle to the first wait state.

    A request process (its profile has ``attach_to_case``) is started on the open case named by its
    ``case_id`` start field instead, and ``org_unit`` is not used.

    :param data: start data, validated against the start event's form (or plain values if it has none)
    :param scope: the caller's grants; the org unit (or the case) must lie within them (None for the system)
    :return: the case and the new instance's first open tasks
    """
    definition = latest_definition(session, process_key)
    bundle = process_bundle(session, definition)
    clean = _clean(bundle.start_form, data)
    if profile_for(process_key).attach_to_case:
        return _start_request(session, definition, clean, actor, scope)
    if scope is not None and not scope.sees_path(org_unit.path):
        raise refuse(session, scope.user_id, 'org_unit', org_unit.code, org_unit.path, '机构不存在')
    case = _new_case(session, definition, clean, actor, org_unit)
    audit.record(session, 'case.started', actor=actor, case_id=case.id, org_path=case.org_path,
                 after={'number': case.number, 'kind': case.kind, 'data': clean})
    _, tasks = start_instance(session, case, definition, clean, actor=actor, is_lifecycle=True)
    return case, tasks


def _start_request(session: Session, definition: ProcessDefinition, data: dict[str, Any], actor: User | None,
                   scope: Scope | None) -> tuple[Case, list[HumanTask]]:
    case = session.get(Case, data.get('case_id')) if isinstance(data.get('case_id'), int) else None
    # Requests are started by the case's own units only: a read grant kept after a transfer is not enough.
    if case is None:
        raise NotFound('案件不存在')
    if scope is not None and not scope.owns_case(case):
        raise refuse(session, scope.user_id, 'case', case.id, case.org_path, '案件不存在')
    if case.status != 'open':
        raise Conflict(f'案件 {case.number} 已结案，不能再发起申请。')
    profile = profile_for(definition.key)
    if profile.case_kinds and case.kind not in profile.case_kinds:
        raise ValidationFailed('数据有误，请检查标出的字段。', {'case_id': ['该案件不能发起此类申请。']})
    profile.subject_columns(data)
    audit.record(session, 'request.started', actor=actor, case_id=case.id, org_path=case.org_path,
                 after={'kind': definition.key, 'data': data})
    _, tasks = start_instance(session, case, definition, data, actor=actor, is_lifecycle=False)
    return case, tasks


_TASK_AGAIN = sa.select(HumanTask).where(HumanTask.id == sa.bindparam('id')).execution_options(populate_existing=True)
_TASK_CASE = (joinedload(HumanTask.case, innerjoin=True), joinedload(HumanTask.org_unit, innerjoin=True))


def get_task(session: Session, task_id: int, scope: Scope, *, with_case: bool = False) -> HumanTask:
    """Load a task the caller may see, or raise NotFound (also for tasks outside their subtree).

    :param with_case: read its case and unit in the same query (for a caller that shows them)
    """
    task = session.get(HumanTask, task_id, options=_TASK_CASE if with_case else ())
    if task is None:
        raise NotFound('任务不存在')
    if not scope.can_view_task(task):
        raise refuse(session, scope.user_id, 'task', task_id, task.org_path, '任务不存在')
    return task


def complete_task(session: Session, task_id: int, data: Mapping[str, Any], *, actor: User,
                  scope: Scope) -> tuple[HumanTask, list[HumanTask]]:
    """Validate ``data`` against the task's form, complete it and run the case on.

    An unassigned task completed by a candidate is claimed by them in the same step. Two people
    completing the same task: the second gets Conflict.

    :return: the completed task and the instance's open tasks afterwards
    """
    task = get_task(session, task_id, scope)
    instance = _lock_instance(session, task.instance_id)
    session.scalars(_TASK_AGAIN, {'id': task.id}).one()  # as committed before the lock was ours
    if not task.is_open:
        raise Conflict('该任务已办理或已取消。')
    if task.delegation_state == 'pending':
        raise Conflict('该任务已委托他人办理，须待受托人办结交回后再办理。')
    if not scope.can_complete(task):
        raise AccessDenied('该任务已由他人认领，或您不在其候选组中。')
    workflow, bundle = restore_workflow(session, instance, reuse=True)
    info = bundle.user_tasks.get(task.bpmn_id)
    clean = _clean(info.form if info else None, data)
    spiff = workflow.get_task_from_id(UUID(task.spiff_task_id))
    if spiff is None or spiff.state != TaskState.READY:
        raise Conflict('该任务在流程中已不可办理。')
    before = {key: spiff.data.get(key) for key in clean}
    spiff.data.update(clean)
    spiff.run()
    claimed = task.assignee_id is None
    task.assignee_id = task.assignee_id or actor.id
    task.status, task.completed_dt, task.completed_by_id = 'completed', now(), actor.id
    reminders.cancel_task_jobs(session, task)
    audit.record(session, 'task.completed', actor=actor, case_id=task.case_id, instance_id=instance.id,
                 task_id=task.id, org_path=task.org_path, before=before, after=clean,
                 note='认领并办理' if claimed else None)
    if info is not None:
        clocks.on_task_completed(session, task, info.properties, spiff.data, actor)
    return task, _settle(session, instance, workflow, bundle, actor)


def fire_timers(session: Session, instance_id: int, *, actor: User | None = None) -> ProcessInstance:
    """Let every due timer of the instance fire and run the instance on (called by the worker).

    Idempotent: a timer that already fired no longer waits, so calling this again (a job run twice,
    or a timer a user command already fired) only re-saves the instance. Each fired timer's pending job
    is marked ``done`` here, in the same transaction (see ``_sync_timer_jobs``). A supervisor retrying an
    instance in error runs it on the same way (``engine.incidents``).

    :param actor: who runs it on (None for the worker)
    """
    instance = _lock_instance(session, instance_id)
    if instance.status in ('completed', 'suspended'):
        return instance
    workflow, bundle = restore_workflow(session, instance, reuse=True)
    workflow.refresh_timers()
    _settle(session, instance, workflow, bundle, actor)
    return instance


def record_fault(session: Session, instance_id: int, message: str) -> None:
    """Note a failed command on its instance (in a fresh transaction, after the rollback).

    The instance goes to ``error``, where supervisors see it among the incidents; its state is the one
    before the failed command, so the next command that succeeds on it (or a supervisor's retry) puts
    it back to running or waiting.
    """
    instance = session.get(ProcessInstance, instance_id)
    if instance is None:
        return
    before = instance.status
    instance.error_message, instance.error_dt = message, now()
    if instance.status not in ('completed', 'suspended'):
        instance.status = 'error'
    audit.record(session, 'instance.fault', actor=None, case_id=instance.case_id, instance_id=instance.id,
                 org_path=instance.case.org_path, before={'status': before}, after={'status': instance.status},
                 note=message)


def task_data(session: Session, task: HumanTask) -> dict[str, Any]:
    """The data the task would see if opened now (for pre-filling its form)."""
    instance = session.get(ProcessInstance, task.instance_id, options=[undefer(ProcessInstance.state)])
    if instance is None:
        raise NotFound('流程实例不存在')
    workflow, _ = restore_workflow(session, instance)
    spiff = workflow.get_task_from_id(UUID(task.spiff_task_id))
    return dict(spiff.data) if spiff is not None else {}
