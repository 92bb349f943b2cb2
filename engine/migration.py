"""Moving running instances to another version of their definition, with SpiffWorkflow's diff utilities.

SpiffWorkflow aligns the task specs of the old version with the new one by BPMN id, and failing that by
their place between aligned neighbours (``SpecDiff``); it then maps every task of an instance to its spec
in the new version (``WorkflowDiff``), and ``migrate_workflow`` swaps the specs and rebuilds the future
of every READY or WAITING task from the new diagram. Its own example allows a move only when no changed
or removed spec has a completed or started task; Fengqiao allows more, under this rule.

**An instance may move when**

1. every task it keeps after the move (done, active or predicted) has its spec in the new version: an
   active step that was deleted cannot go on, and a finished step that was deleted leaves a history the
   new version can no longer load;
2. no STARTED task (a running subprocess or call activity) changed other than in its sequence flows:
   SpiffWorkflow does not rebuild what runs inside it;
3. the process of every running subprocess still exists in the new version;
4. it is neither completed nor suspended, and both versions are of the same process key.

**What happens to each active task** (READY, WAITING, STARTED)

* ``kept``: its spec is the same, or only its sequence flows changed. It keeps its data and its event
  state (a waiting timer keeps its due time); its to-do row keeps its due date and reminder jobs.
* ``changed``: its own settings changed (name, form, candidate group, deadline, timer...). SpiffWorkflow
  rebuilds it from the new spec (a changed timer restarts from the time of the move); it keeps its data;
  its to-do row takes the new title, group, form and priority, and a new due date and reminders if the
  deadline rule changed. A user task that is no longer a user task has its row cancelled with the reason.
* ``removed``: blocks the move (rule 1).

Every move is one unit of work the caller commits: lock the instance, check its revision, re-check the
rule, migrate, run the engine to its next wait state, sync to-do rows and jobs, audit, save. A bulk move
(:class:`~engine.models.migrations.MigrationBatch`) is worked off by the worker's ``migration`` job, a few
instances per run, each in a savepoint of its own, so one refusal leaves the others moved.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.helpers.spec import TaskSpecConverter
from SpiffWorkflow.bpmn.util.diff import SpecDiff, WorkflowDiff, diff_dependencies, migrate_workflow
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.specs.base import TaskSpec
from SpiffWorkflow.task import Task
from SpiffWorkflow.util.task import TaskState
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from engine import audit, clocks, reminders
from engine.access import DESIGNER, Scope, path_filter
from engine.clock import now
from engine.definitions import process_bundle
from engine.errors import Conflict, EngineError, NotFound, ValidationFailed
from engine.i18n import N_, _
from engine.jobs import enqueue_batch_run, register_handler
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.migrations import MigrationBatch, MigrationItem
from engine.models.tasks import HumanTask, colour_weight
from engine.models.users import User
from engine.runtime import _lock_instance, _settle, restore_workflow
from engine.services import ServiceCallTask
from engine.specs import ProcessBundle, UserTaskInfo

__all__ = ['CHANGE_LABELS', 'REASON_MAX', 'InstancePreview', 'MigrationLimits', 'MigrationRefused', 'MigrationResult',
           'TaskPreview', 'batch_items', 'get_batch', 'get_instance', 'limits', 'list_batches', 'migrate_instance',
           'migration_paths', 'preview', 'run_migration_job', 'running_counts', 'start_batch', 'versions_of']

log = logging.getLogger(__name__)

KEPT, CHANGED, REMOVED = 'kept', 'changed', 'removed'
#: the job kind the worker runs batches with
JOB_KIND = 'migration'
#: spec attributes that only say where the sequence flows go: rebuilt by the migration, not a change of the task
_FLOW_ATTRIBUTES = frozenset({'inputs', 'outputs'})
_ACTIVE = TaskState.READY | TaskState.WAITING | TaskState.STARTED
_RESET = TaskState.READY | TaskState.WAITING
_STATE_NAMES = {TaskState.READY: 'ready', TaskState.WAITING: 'waiting', TaskState.STARTED: 'started'}
#: SpiffWorkflow's changed spec attributes, as the few kinds of change a designer recognises
_CHANGE_KINDS = {'bpmn_name': 'name', 'typename': 'type', 'form': 'form', 'extensions': 'properties',
                 'event_definition': 'event', 'lane': 'lane', 'documentation': 'documentation',
                 'cancel_activity': 'event', 'manual': 'type'}
#: what each kind of change is called on the preview page
CHANGE_LABELS = {
    'name': N_('名称'), 'type': N_('类型'), 'form': N_('表单'), 'properties': N_('期限等属性'),
    'event': N_('事件定义'), 'lane': N_('泳道'), 'documentation': N_('说明'), 'candidate_groups': N_('候选组'),
    'priority': N_('优先级'), 'other': N_('其他设置'),
}
MSG_REASON = N_('请填写迁移原因。')
MSG_REASON_LONG = N_('迁移原因最多 1000 个字。')
MSG_SAME_KEY = N_('两个版本须属于同一流程。')
MSG_SAME_VERSION = N_('目标版本须不同于当前版本。')
MSG_BLOCKED = N_('该实例不能迁移到目标版本。')
MSG_COMPLETED = N_('流程实例已办结，不能迁移。')
MSG_SUSPENDED = N_('流程实例已挂起，恢复后才能迁移。')
MSG_NO_INSTANCES = N_('请至少选择一个流程实例。')
MSG_TOO_MANY = N_('一次最多迁移 2000 个流程实例。')
REASON_MAX = 1000


class _ServiceCallTaskConverter(TaskSpecConverter):  # type: ignore[misc]
    """Our external service task as a dict: the standard attributes and the operation's topic."""

    def to_dict(self, spec: ServiceCallTask) -> dict[str, Any]:
        dct: dict[str, Any] = self.get_default_attributes(spec)
        dct['topic'] = spec.topic
        return dct

    def from_dict(self, dct: dict[str, Any]) -> ServiceCallTask:
        spec: ServiceCallTask = self.task_spec_from_dict(dct)
        return spec


def _build_registry() -> Any:
    """A serializer registry that can turn every task spec we parse into a dict: SpecDiff compares those dicts.

    Instance state is stored without its spec (engine.serializer), so that configuration never needed our
    service task's converter; a diff does.
    """
    config = dict(CAMUNDA_CONFIG)
    config[ServiceCallTask] = _ServiceCallTaskConverter
    return BpmnWorkflowSerializer.configure(config)


_registry = _build_registry()


@dataclass
class MigrationLimits:
    """How much one request or one worker run takes on."""

    #: instances listed by one preview
    preview_max: int = 500
    #: instances in one batch
    batch_max: int = 2000
    #: instances one run of the ``migration`` job moves before it hands over to its next run
    chunk_size: int = 10


limits = MigrationLimits()


class MigrationRefused(Conflict):
    """The instance cannot move (the rule in this module's docstring); nothing was changed.

    :param problems: every reason, in the reader's language
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


# -- results -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TaskPreview:
    """What a move does to one active task of an instance.

    :param state: ``ready``, ``waiting`` or ``started``
    :param outcome: ``kept``, ``changed`` or ``removed``
    :param changes: kinds of change (keys of :data:`CHANGE_LABELS`), empty when kept
    :param human_task_id: its to-do row, if it is a user task waiting for someone
    """

    spiff_task_id: str
    bpmn_id: str
    name: str
    state: str
    outcome: str
    new_bpmn_id: str | None = None
    new_name: str | None = None
    changes: tuple[str, ...] = ()
    human_task_id: int | None = None

    @property
    def is_renamed(self) -> bool:
        """Whether the task shows under another name after the move."""
        return self.new_name is not None and self.new_name != self.name


@dataclass(frozen=True)
class InstancePreview:
    """Whether one instance can move, what happens to its active tasks, and why not if it cannot."""

    instance_id: int
    case_id: int
    case_number: str
    org_unit_name: str
    revision: int
    status: str
    tasks: tuple[TaskPreview, ...]
    problems: tuple[str, ...]

    @property
    def can_migrate(self) -> bool:
        """True when nothing blocks the move."""
        return not self.problems


@dataclass(frozen=True)
class MigrationResult:
    """One instance moved: its preview as re-checked at the move, and the to-do rows it has now."""

    instance: ProcessInstance
    preview: InstancePreview
    open_tasks: tuple[HumanTask, ...]


# -- scope and choices ----------------------------------------------------------------------------------

def migration_paths(scope: Scope) -> tuple[str, ...]:
    """Subtrees whose instances ``scope`` may migrate: where the user holds the designer group."""
    return tuple(sorted({path for group, path in scope.grants if group == DESIGNER}))


def versions_of(session: Session, key: str) -> list[ProcessDefinition]:
    """Every deployed BPMN version of ``key``, oldest first (NotFound when there is none)."""
    rows = list(session.scalars(sa.select(ProcessDefinition).where(
        ProcessDefinition.key == key, ProcessDefinition.kind == 'bpmn').order_by(ProcessDefinition.version)))
    if not rows:
        raise NotFound(f'没有已部署的流程 "{key}"')
    return rows


def running_counts(session: Session, key: str, scope: Scope | None) -> dict[int, int]:
    """Not-completed instances per definition id of ``key`` (within ``scope``'s designer subtrees)."""
    query = (sa.select(ProcessInstance.definition_id, sa.func.count())
             .join(ProcessDefinition, ProcessDefinition.id == ProcessInstance.definition_id)
             .where(ProcessDefinition.key == key, ProcessInstance.status != 'completed')
             .group_by(ProcessInstance.definition_id))
    if scope is not None:
        query = query.join(Case, Case.id == ProcessInstance.case_id).where(
            path_filter(Case.org_path, migration_paths(scope)))
    return {definition_id: count for definition_id, count in session.execute(query)}


def get_instance(session: Session, instance_id: int, scope: Scope | None) -> ProcessInstance:
    """An instance the caller may migrate (its case below a unit where they hold the designer group), or NotFound."""
    instance = session.get(ProcessInstance, instance_id)
    if instance is None or (scope is not None and not _in_paths(instance.case.org_path, scope)):
        raise NotFound('流程实例不存在')
    return instance


def _in_paths(path: str, scope: Scope) -> bool:
    return any(path.startswith(prefix) for prefix in migration_paths(scope))


def _check_pair(source: ProcessDefinition, target: ProcessDefinition) -> None:
    if source.key != target.key or source.kind != 'bpmn' or target.kind != 'bpmn':
        raise ValidationFailed(MSG_SAME_KEY, {'to': [MSG_SAME_KEY]})
    if source.id == target.id:
        raise ValidationFailed(MSG_SAME_VERSION, {'to': [MSG_SAME_VERSION]})


def _clean_reason(reason: str | None) -> str:
    text = (reason or '').strip()
    if not text:
        raise ValidationFailed(MSG_REASON, {'reason': [MSG_REASON]})
    if len(text) > REASON_MAX:
        raise ValidationFailed(MSG_REASON_LONG, {'reason': [MSG_REASON_LONG]})
    return text


# -- the diff of two versions ---------------------------------------------------------------------------

@dataclass
class _Diffs:
    """SpecDiffs of a version pair: the process and each of its subprocesses (None: gone in the target)."""

    source: ProcessBundle
    target: ProcessBundle
    top: SpecDiff
    dependencies: dict[str, SpecDiff | None]


def _diffs(source: ProcessBundle, target: ProcessBundle) -> _Diffs:
    dependencies, _added = diff_dependencies(_registry, source.subprocess_specs, target.subprocess_specs)
    return _Diffs(source, target, SpecDiff(_registry, source.spec, target.spec), dependencies)


class _DiffCache:
    """One SpecDiff per version pair within a call: every instance of a version shares it."""

    def __init__(self, target: ProcessBundle) -> None:
        self.target = target
        self._by_source: dict[int, _Diffs] = {}

    def get(self, source: ProcessBundle) -> _Diffs:
        # Keyed by the bundle object: WorkflowDiff compares the specs a restored task holds by identity.
        found = self._by_source.get(id(source))
        if found is None or found.source is not source:
            found = self._by_source[id(source)] = _diffs(source, self.target)
        return found


def _bpmn_id(spec: TaskSpec) -> str:
    return str(spec.bpmn_id or spec.name)


def _display_name(spec: TaskSpec) -> str:
    return str(getattr(spec, 'bpmn_name', None) or spec.bpmn_id or spec.name)


def _info_changes(old: UserTaskInfo | None, new: UserTaskInfo | None) -> set[str]:
    """Changes of a user task that SpiffWorkflow's spec does not hold (Camunda attributes we read ourselves)."""
    if old is None or new is None:
        return set() if old is new else {'type'}
    changes = set()
    if old.title != new.title:
        changes.add('name')
    if old.candidate_groups != new.candidate_groups:
        changes.add('candidate_groups')
    if old.form != new.form:
        changes.add('form')
    if old.properties != new.properties:
        changes.add('properties')
    if old.priority != new.priority:
        changes.add('priority')
    return changes


@dataclass
class _Evaluation:
    """An instance's workflow diffed against the target version, and what the move would do to it."""

    workflow: BpmnWorkflow
    diffs: _Diffs
    top: WorkflowDiff | None = None
    subprocesses: dict[UUID, WorkflowDiff | None] = field(default_factory=dict)
    outcomes: dict[UUID, tuple[str, TaskSpec | None, tuple[str, ...]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: the preview built from it
    preview: InstancePreview | None = None

    def problem(self, message: str) -> None:
        """Add a reason the instance cannot move (once)."""
        if message not in self.problems:
            self.problems.append(message)


def _workflow_diffs(evaluation: _Evaluation) -> None:
    workflow, diffs = evaluation.workflow, evaluation.diffs
    evaluation.top = WorkflowDiff(workflow, diffs.top)
    for sp_id, sp in workflow.subprocesses.items():
        spec_diff = diffs.dependencies.get(sp.spec.name)
        if spec_diff is None:
            evaluation.subprocesses[sp_id] = None
            evaluation.problem(_('子流程“{name}”在新版本中已不存在。').format(name=sp.spec.name))
        else:
            evaluation.subprocesses[sp_id] = WorkflowDiff(sp, spec_diff)


def _outcome(evaluation: _Evaluation, task: Task, diff: WorkflowDiff | None,
             spec_diff: SpecDiff | None) -> tuple[str, TaskSpec | None, tuple[str, ...]]:
    new = diff.alignment.get(task) if diff is not None else None
    if new is None or spec_diff is None:
        return REMOVED, None, ()
    kinds = {_CHANGE_KINDS.get(name, 'other') for name in spec_diff.comparisons.get(task.task_spec, ())
             if name not in _FLOW_ATTRIBUTES}
    if task.task_spec.manual or new.manual:
        kinds |= _info_changes(evaluation.diffs.source.user_tasks.get(_bpmn_id(task.task_spec)),
                               evaluation.diffs.target.user_tasks.get(_bpmn_id(new)))
    return (CHANGED if kinds else KEPT), new, tuple(sorted(kinds))


def _classify(evaluation: _Evaluation) -> None:
    """Decide kept/changed/removed for every active task, and note the ones that block (rules 1 and 2)."""
    owners: list[tuple[Any, WorkflowDiff | None, SpecDiff | None]] = [
        (evaluation.workflow, evaluation.top, evaluation.diffs.top)]
    for sp_id, sp in evaluation.workflow.subprocesses.items():
        owners.append((sp, evaluation.subprocesses.get(sp_id), evaluation.diffs.dependencies.get(sp.spec.name)))
    for owner, diff, spec_diff in owners:
        for task in owner.tasks.values():
            if not task.state & _ACTIVE:
                continue
            outcome = evaluation.outcomes[task.id] = _outcome(evaluation, task, diff, spec_diff)
            if task.task_spec.bpmn_id is None:
                continue  # SpiffWorkflow's own joins and splits: judged by rule 1 after the move
            name = _display_name(task.task_spec)
            if outcome[0] == REMOVED:
                evaluation.problem(_('当前步骤“{name}”在新版本中已删除。').format(name=name))
            elif outcome[0] == CHANGED and task.state == TaskState.STARTED:
                evaluation.problem(_('正在进行的子流程“{name}”在新版本中有改动，不能迁移。').format(name=name))


def _evaluate(workflow: BpmnWorkflow, diffs: _Diffs) -> _Evaluation:
    evaluation = _Evaluation(workflow, diffs)
    try:
        _workflow_diffs(evaluation)
        _classify(evaluation)
    except (KeyError, AttributeError, TypeError) as exc:  # a spec shape SpecDiff cannot align
        log.warning('cannot diff instance workflow against %s: %r', diffs.target.key, exc)
        evaluation.problem(_('无法比较该实例与目标版本：{error}').format(error=type(exc).__name__))
    return evaluation


# -- applying the move ----------------------------------------------------------------------------------

def _owners(workflow: BpmnWorkflow) -> list[Any]:
    return [workflow, *workflow.subprocesses.values()]


def _apply(evaluation: _Evaluation) -> None:
    """Migrate the workflow in place, then give kept tasks back their data and event state."""
    workflow, target = evaluation.workflow, evaluation.diffs.target
    saved = {task.id: (deepcopy(task.data), deepcopy(task.internal_data), task.last_state_change)
             for owner in _owners(workflow) for task in owner.tasks.values() if task.state & _RESET}
    migrate_workflow(evaluation.top, workflow, target.spec)
    for sp_id, sp in list(workflow.subprocesses.items()):
        migrate_workflow(evaluation.subprocesses[sp_id], sp, target.subprocess_specs[sp.spec.name])
    workflow.subprocess_specs = dict(target.subprocess_specs)
    for owner in _owners(workflow):
        for task in owner.tasks.values():
            if task.id not in saved:
                continue
            data, internal, changed_at = saved[task.id]
            # reset_branch copies the parent's data over the task's own (a multi-instance item, a payload).
            task.data = data
            if evaluation.outcomes.get(task.id, (CHANGED,))[0] == KEPT:
                # Unchanged: keep what it was waiting for, e.g. a timer's due time, instead of restarting it.
                task.internal_data, task.last_state_change = internal, changed_at


def _check_specs_resolve(evaluation: _Evaluation) -> None:
    """Rule 1: every task left in the tree must have its spec in the new version, or it cannot be loaded."""
    workflow = evaluation.workflow
    for owner in _owners(workflow):
        for task in owner.tasks.values():
            if owner.spec.task_specs.get(task.task_spec.name) is task.task_spec:
                continue
            name = _display_name(_element_spec(evaluation, task.task_spec))
            if task.state & TaskState.FINISHED_MASK:
                evaluation.problem(_('已办结的步骤“{name}”在新版本中已删除，迁移后无法保留其记录。').format(name=name))
            else:
                evaluation.problem(_('步骤“{name}”在新版本中已删除。').format(name=name))


def _element_spec(evaluation: _Evaluation, spec: TaskSpec) -> TaskSpec:
    """The BPMN element a SpiffWorkflow helper spec (``register.BoundaryEventSplit``) belongs to."""
    if spec.bpmn_id is not None:
        return spec
    owner_name = str(spec.name).split('.', 1)[0]
    for process in (evaluation.diffs.source.spec, *evaluation.diffs.source.subprocess_specs.values()):
        found = process.task_specs.get(owner_name)
        if found is not None:
            return found
    return spec


def _try_apply(evaluation: _Evaluation) -> None:
    if evaluation.problems:
        return
    try:
        _apply(evaluation)
    except (KeyError, AttributeError, TypeError, ValueError) as exc:
        log.warning('SpiffWorkflow could not migrate to %s: %r', evaluation.diffs.target.key, exc)
        evaluation.problem(_('SpiffWorkflow 无法迁移该实例：{error}').format(error=type(exc).__name__))
        return
    _check_specs_resolve(evaluation)


# -- preview --------------------------------------------------------------------------------------------

def _task_previews(evaluation: _Evaluation, rows: dict[str, HumanTask]) -> tuple[TaskPreview, ...]:
    tasks = []
    for owner in _owners(evaluation.workflow):
        for task in owner.tasks.values():
            outcome = evaluation.outcomes.get(task.id)
            if outcome is None or task.task_spec.bpmn_id is None:
                continue
            kind, new, changes = outcome
            row = rows.get(str(task.id))
            tasks.append(TaskPreview(
                spiff_task_id=str(task.id), bpmn_id=_bpmn_id(task.task_spec),
                name=row.title if row is not None else _display_name(task.task_spec),
                state=_STATE_NAMES.get(task.state, 'ready'), outcome=kind,
                new_bpmn_id=_bpmn_id(new) if new is not None else None,
                new_name=_new_title(evaluation, new) if new is not None else None,
                changes=changes, human_task_id=row.id if row is not None else None))
    return tuple(tasks)


def _new_title(evaluation: _Evaluation, spec: TaskSpec) -> str:
    info = evaluation.diffs.target.user_tasks.get(_bpmn_id(spec))
    return info.title if info is not None else _display_name(spec)


def _open_rows(session: Session, instance_id: int) -> dict[str, HumanTask]:
    rows = session.scalars(sa.select(HumanTask).where(HumanTask.instance_id == instance_id,
                                                      HumanTask.status == 'open'))
    return {row.spiff_task_id: row for row in rows}


def _status_problem(instance: ProcessInstance) -> str | None:
    if instance.status == 'completed':
        return _(MSG_COMPLETED)
    if instance.status == 'suspended':
        return _(MSG_SUSPENDED)
    return None


def _dry_run(session: Session, instance: ProcessInstance, cache: _DiffCache,
             rows: dict[str, HumanTask]) -> tuple[tuple[TaskPreview, ...], tuple[str, ...], _Evaluation | None]:
    """Restore, diff and migrate the instance's workflow in memory: its task previews, problems and evaluation."""
    workflow, bundle = restore_workflow(session, instance)
    try:
        diffs = cache.get(bundle)
    except (KeyError, AttributeError, TypeError) as exc:  # a spec SpiffWorkflow's SpecDiff cannot compare
        log.warning('cannot diff %s against the target version: %r', bundle.key, exc)
        return (), (_('无法比较两个版本：{error}').format(error=type(exc).__name__),), None
    evaluation = _evaluate(workflow, diffs)
    tasks = _task_previews(evaluation, rows)
    _try_apply(evaluation)
    return tasks, tuple(evaluation.problems), evaluation


def _preview_one(session: Session, instance: ProcessInstance, cache: _DiffCache) -> tuple[InstancePreview,
                                                                                           _Evaluation | None]:
    """Diff and dry-run the move of ``instance``; the evaluation holds the migrated workflow if it can move."""
    status_problem = _status_problem(instance)
    tasks: tuple[TaskPreview, ...] = ()
    problems: tuple[str, ...] = (status_problem,) if status_problem else ()
    evaluation = None
    if status_problem is None:
        tasks, problems, evaluation = _dry_run(session, instance, cache, _open_rows(session, instance.id))
    case = instance.case
    result = InstancePreview(instance.id, case.id, case.number, case.org_unit.name, instance.revision,
                             instance.status, tasks, problems)
    if evaluation is None or problems:
        return result, None
    evaluation.preview = result
    return result, evaluation


def _instances_query(source: ProcessDefinition, instance_ids: Iterable[int] | None,
                     scope: Scope | None) -> sa.Select[tuple[ProcessInstance]]:
    query = (sa.select(ProcessInstance).join(Case, Case.id == ProcessInstance.case_id)
             .where(ProcessInstance.definition_id == source.id)
             .options(joinedload(ProcessInstance.case).joinedload(Case.org_unit))
             .order_by(ProcessInstance.id))
    if instance_ids is not None:
        query = query.where(ProcessInstance.id.in_(list(instance_ids)))
    else:
        query = query.where(ProcessInstance.status != 'completed')
    if scope is not None:
        query = query.where(path_filter(Case.org_path, migration_paths(scope)))
    return query


def preview(session: Session, source_definition: ProcessDefinition, target_definition: ProcessDefinition,
            instance_ids: Iterable[int] | None = None, scope: Scope | None = None) -> list[InstancePreview]:
    """What moving instances of ``source_definition`` to ``target_definition`` would do; nothing is saved.

    :param instance_ids: the instances to look at (None: every one not completed, up to
        ``limits.preview_max``); ids of other versions or outside ``scope`` are left out
    :param scope: the caller's grants: only instances of cases below a unit where they hold the designer
        group (None for the system)
    :return: one preview per instance, in id order
    :raises ValidationFailed: the versions are of different keys, or the same version
    """
    _check_pair(source_definition, target_definition)
    cache = _DiffCache(process_bundle(session, target_definition))
    instances = session.scalars(_instances_query(source_definition, instance_ids, scope)
                                .limit(limits.preview_max)).unique()
    return [_preview_one(session, instance, cache)[0] for instance in instances]


# -- moving one instance --------------------------------------------------------------------------------

def _load_for_move(session: Session, instance_id: int, target: ProcessDefinition, scope: Scope | None,
                   expected_revision: int | None) -> ProcessInstance:
    instance = _lock_instance(session, instance_id)
    if scope is not None and not _in_paths(instance.case.org_path, scope):
        raise NotFound('流程实例不存在')
    if expected_revision is not None and instance.revision != expected_revision:
        raise Conflict('案件已被他人更新，请刷新后重试。')
    if instance.definition_id == target.id:
        raise MigrationRefused(_('流程实例已在版本 {version} 上。').format(version=target.version))
    _check_pair(instance.definition, target)
    problem = _status_problem(instance)
    if problem is not None:
        raise MigrationRefused(problem, (problem,))
    return instance


def _new_due(session: Session, row: HumanTask, info: UserTaskInfo, data: dict[str, Any]) -> None:
    """Recompute a kept row's due date under the new deadline rule, and its reminder and escalation jobs."""
    due_dt, due_rule = clocks.task_due(session, row.case, row.org_path, info.properties, data, row.created_dt)
    if (due_dt, due_rule) == (row.due_dt, row.due_rule):
        return
    row.due_dt, row.due_rule = due_dt, due_rule
    session.flush()
    reminders.schedule_task_jobs(session, row)


def _cancel_row(session: Session, row: HumanTask, actor: User | None, reason: str) -> None:
    row.status, row.completed_dt = 'cancelled', now()
    reminders.cancel_task_jobs(session, row)
    audit.record(session, 'task.cancelled', actor=actor, case_id=row.case_id, instance_id=row.instance_id,
                 task_id=row.id, org_path=row.org_path, before={'status': 'open'},
                 after={'status': 'cancelled', 'cause': 'migration'}, note=reason)


def _update_row(session: Session, row: HumanTask, info: UserTaskInfo | None, spiff: Task,
                changes: tuple[str, ...]) -> dict[str, Any]:
    """Give a kept or changed to-do row the new version's title, group, form and deadline."""
    before = {'bpmn_id': row.bpmn_id, 'title': row.title, 'candidate_group': row.candidate_group,
              'due_dt': row.due_dt}
    row.bpmn_id = _bpmn_id(spiff.task_spec)
    if info is not None:
        row.title = info.title[:200]
        if info.candidate_groups:
            row.candidate_group = info.candidate_groups[0]
        row.form_key = info.form.key
        row.priority = info.priority + colour_weight(row.risk_colour)
        if 'properties' in changes:
            _new_due(session, row, info, dict(spiff.data))
    after = {'bpmn_id': row.bpmn_id, 'title': row.title, 'candidate_group': row.candidate_group,
             'due_dt': row.due_dt}
    return {'before': before, 'after': after}


def _sync_rows(session: Session, instance: ProcessInstance, evaluation: _Evaluation, actor: User | None,
               reason: str) -> list[dict[str, Any]]:
    """Carry the open to-do rows across: update the ones still waiting for a person, cancel the others."""
    mapping = []
    for spiff_id, row in _open_rows(session, instance.id).items():
        spiff = evaluation.workflow.get_task_from_id(UUID(spiff_id))
        outcome = evaluation.outcomes.get(UUID(spiff_id), (REMOVED, None, ()))
        entry: dict[str, Any] = {'task_id': row.id, 'spiff_task_id': spiff_id, 'outcome': outcome[0],
                                 'changes': list(outcome[2])}
        if spiff is None or spiff.state != TaskState.READY or not spiff.task_spec.manual:
            _cancel_row(session, row, actor, reason)
            entry.update(outcome='cancelled', before={'bpmn_id': row.bpmn_id, 'title': row.title})
        else:
            info = evaluation.diffs.target.user_tasks.get(_bpmn_id(spiff.task_spec))
            entry.update(_update_row(session, row, info, spiff, outcome[2]))
        mapping.append(entry)
    session.flush()
    return mapping


def _cancel_restarted_timers(session: Session, instance: ProcessInstance, evaluation: _Evaluation) -> None:
    """Withdraw the timer jobs of waiting events the move restarted; the sync then schedules their new time.

    Left alone, the sync would take a job whose timer still waits under another due time for one that fired.
    """
    restarted = [task_id for task_id, (kind, _new, _changes) in evaluation.outcomes.items() if kind == CHANGED]
    for task_id in restarted:
        session.execute(sa.update(Job).where(
            Job.instance_id == instance.id, Job.kind == 'timer', Job.status == 'pending',
            Job.key.startswith(f'timer:{instance.id}:{task_id}:', autoescape=True))
            .values(status='cancelled', done_dt=now()).execution_options(synchronize_session='fetch'))


def migrate_instance(session: Session, instance_id: int, target_definition: ProcessDefinition, *,
                     actor: User | None, reason: str | None, scope: Scope | None = None,
                     expected_revision: int | None = None) -> MigrationResult:
    """Move one instance to ``target_definition`` in the caller's unit of work (the caller commits).

    Locks the instance, checks its revision, re-checks the move (the rule in this module's docstring),
    migrates the workflow, runs it to its next wait state, carries its to-do rows and jobs across, audits
    ``instance.migrated`` (versions, the task mapping, the reason) and saves.

    :param actor: who decided the move (the designer; for a batch, the one who started it)
    :param reason: why; required
    :param scope: the caller's grants (None for the system): the case must lie below a unit where they
        hold the designer group, else NotFound
    :param expected_revision: the revision the caller's preview showed; another one means someone changed
        the instance since (Conflict)
    :raises ValidationFailed: no reason, or the versions are of different keys
    :raises MigrationRefused: completed, suspended, already on the target, or blocked (``problems``)
    :raises Conflict: the instance changed since the preview, or while it was being moved
    """
    text = _clean_reason(reason)
    target_bundle = process_bundle(session, target_definition)
    instance = _load_for_move(session, instance_id, target_definition, scope, expected_revision)
    source = instance.definition
    before = {'definition_id': source.id, 'key': source.key, 'version': source.version,
              'revision': instance.revision}
    checked, evaluation = _preview_one(session, instance, _DiffCache(target_bundle))
    if evaluation is None:
        raise MigrationRefused(_(MSG_BLOCKED), checked.problems)
    return _move(session, instance, target_definition, evaluation, before, actor, text)


def _switch_definition(session: Session, instance: ProcessInstance, target: ProcessDefinition) -> None:
    """Point the instance at ``target`` with a plain UPDATE guarded by its revision.

    An ORM change here would be flushed before the save as well, bumping the revision twice; this way the
    save that follows bumps it once, as every command's does.
    """
    moved = session.execute(sa.update(ProcessInstance).where(
        ProcessInstance.id == instance.id, ProcessInstance.revision == instance.revision)
        .values(definition_id=target.id).execution_options(synchronize_session=False))
    if getattr(moved, 'rowcount', 0) != 1:
        raise Conflict('案件已被他人更新，请刷新后重试。')
    set_committed_value(instance, 'definition_id', target.id)
    set_committed_value(instance, 'definition', target)


def _move(session: Session, instance: ProcessInstance, target: ProcessDefinition, evaluation: _Evaluation,
          before: dict[str, Any], actor: User | None, reason: str) -> MigrationResult:
    _switch_definition(session, instance, target)
    old_rows = set(_open_rows(session, instance.id))
    mapping = _sync_rows(session, instance, evaluation, actor, reason)
    _cancel_restarted_timers(session, instance, evaluation)
    open_rows = _settle(session, instance, evaluation.workflow, evaluation.diffs.target, actor)
    created = [row.id for row in open_rows if row.spiff_task_id not in old_rows]
    audit.record(session, 'instance.migrated', actor=actor, case_id=instance.case_id, instance_id=instance.id,
                 org_path=instance.case.org_path, before=before,
                 after={'definition_id': target.id, 'key': target.key, 'version': target.version,
                        'revision': instance.revision, 'tasks': mapping, 'created_task_ids': created},
                 note=reason)
    assert evaluation.preview is not None  # set by _preview_one for every instance that may move
    return MigrationResult(instance, evaluation.preview, tuple(open_rows))


# -- bulk: batches worked off by the worker ---------------------------------------------------------------

def start_batch(session: Session, source_definition: ProcessDefinition, target_definition: ProcessDefinition,
                instance_ids: Sequence[int], *, actor: User, reason: str | None,
                scope: Scope | None = None) -> MigrationBatch:
    """Queue the move of ``instance_ids`` from one version to another; the worker's ``migration`` job does it.

    Each instance is re-checked when its turn comes: one that cannot move then is marked failed with the
    reason, one that moved or completed meanwhile is skipped.

    :param instance_ids: instances of ``source_definition`` (each visible to ``scope``)
    :param actor: the designer (recorded as the actor of every move)
    :param reason: why; required
    :param scope: the caller's grants (None for the system)
    :raises ValidationFailed: no reason, no instance, too many, or an invalid version pair
    :raises NotFound: an id that is not an instance of ``source_definition`` the caller may migrate
    """
    text = _clean_reason(reason)
    _check_pair(source_definition, target_definition)
    ids = list(dict.fromkeys(instance_ids))
    if not ids:
        raise ValidationFailed(MSG_NO_INSTANCES, {'instances': [MSG_NO_INSTANCES]})
    if len(ids) > limits.batch_max:
        raise ValidationFailed(MSG_TOO_MANY, {'instances': [MSG_TOO_MANY]})
    found = set(session.scalars(_instances_query(source_definition, ids, scope).with_only_columns(
        ProcessInstance.id)))
    if found != set(ids):
        raise NotFound('流程实例不存在')
    batch = MigrationBatch(key=source_definition.key, from_definition_id=source_definition.id,
                           from_version=source_definition.version, to_definition_id=target_definition.id,
                           to_version=target_definition.version, reason=text, created_by_id=actor.id,
                           created_dt=now(), status='queued', total_count=len(ids), migrated_count=0,
                           failed_count=0, skipped_count=0)
    session.add(batch)
    session.flush()
    session.add_all(MigrationItem(batch_id=batch.id, instance_id=instance_id, status='pending')
                    for instance_id in ids)
    enqueue_batch_run(session, JOB_KIND, batch.id, 1)
    audit.record(session, 'migration.batch_started', actor=actor,
                 after={'batch_id': batch.id, 'key': batch.key, 'from_version': batch.from_version,
                        'to_version': batch.to_version, 'instances': len(ids)}, note=text)
    session.flush()
    return batch


def _pending_items(session: Session, batch: MigrationBatch, count: int) -> list[MigrationItem]:
    return list(session.scalars(sa.select(MigrationItem).where(
        MigrationItem.batch_id == batch.id, MigrationItem.status == 'pending')
        .order_by(MigrationItem.id).limit(count)))


def _skip_reason(session: Session, batch: MigrationBatch, item: MigrationItem) -> str | None:
    instance = session.get(ProcessInstance, item.instance_id, populate_existing=True)
    if instance is None:
        return _('流程实例不存在')
    if instance.definition_id == batch.to_definition_id:
        return _('已在目标版本上。')
    if instance.definition_id != batch.from_definition_id:
        return _('已不在版本 {version} 上。').format(version=batch.from_version)
    if instance.status == 'completed':
        return _(MSG_COMPLETED)
    return None


def _failure_text(exc: EngineError) -> str:
    problems = getattr(exc, 'problems', ())
    return '；'.join((exc.message, *problems)) if problems else exc.message


def _migrate_item(session: Session, batch: MigrationBatch, item: MigrationItem) -> None:
    """Move one item's instance in a savepoint: a refusal rolls back only this instance."""
    skip = _skip_reason(session, batch, item)
    if skip is not None:
        item.status, item.message = 'skipped', skip
    else:
        try:
            with session.begin_nested():
                result = migrate_instance(session, item.instance_id, batch.to_definition,
                                          actor=batch.created_by, reason=batch.reason)
        except EngineError as exc:
            item.status, item.message = 'failed', _failure_text(exc)
        except SQLAlchemyError:
            raise  # the database itself: let the worker retry the whole run
        except Exception as exc:  # a SpiffWorkflow failure on one instance must not stop the batch
            log.exception('migrating instance %s in batch %s failed', item.instance_id, batch.id)
            item.status, item.message = 'failed', _('迁移时发生内部错误（{error}）。').format(
                error=type(exc).__name__)
        else:
            item.status, item.message = 'migrated', _summary(result.preview)
    item.finished_dt = now()


def _summary(checked: InstancePreview) -> str:
    changed = [task.name for task in checked.tasks if task.outcome == CHANGED]
    if not changed:
        return _('已迁移，当前步骤不变。')
    return _('已迁移，有改动的步骤：{names}。').format(names='、'.join(changed))


def _count(session: Session, batch: MigrationBatch) -> None:
    counts: dict[str, int] = {status: count for status, count in session.execute(
        sa.select(MigrationItem.status, sa.func.count()).where(MigrationItem.batch_id == batch.id)
        .group_by(MigrationItem.status))}
    batch.migrated_count = counts.get('migrated', 0)
    batch.failed_count = counts.get('failed', 0)
    batch.skipped_count = counts.get('skipped', 0)
    batch.total_count = sum(counts.values())


def run_migration_job(session: Session, job: Job) -> None:
    """Move the next few instances of a batch, then schedule the next run (the ``migration`` job handler).

    Each run takes ``limits.chunk_size`` pending items, each in its own savepoint, so a worker never
    holds one huge transaction and one refusal undoes nothing else. Idempotent: settled items are never
    tried again, and a run of a finished batch changes nothing.
    """
    batch = session.get(MigrationBatch, int(job.payload['batch_id']), with_for_update=True,
                        populate_existing=True)
    if batch is None or batch.is_done:
        return
    batch.status = 'running'
    for item in _pending_items(session, batch, limits.chunk_size):
        _migrate_item(session, batch, item)
    session.flush()
    _count(session, batch)
    if batch.pending_count:
        enqueue_batch_run(session, JOB_KIND, batch.id, int(job.payload.get('run', 1)) + 1)
        return
    batch.status, batch.finished_dt = 'done', now()
    audit.record(session, 'migration.batch_finished', actor=None,
                 after={'batch_id': batch.id, 'key': batch.key, 'to_version': batch.to_version,
                        'migrated': batch.migrated_count, 'failed': batch.failed_count,
                        'skipped': batch.skipped_count})


register_handler(JOB_KIND, run_migration_job)


def _visible_batch_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """Batches the caller started, or that hold an instance below a unit where they hold the designer group."""
    inside = sa.exists().where(MigrationItem.batch_id == MigrationBatch.id,
                               ProcessInstance.id == MigrationItem.instance_id,
                               Case.id == ProcessInstance.case_id,
                               path_filter(Case.org_path, migration_paths(scope)))
    return sa.or_(MigrationBatch.created_by_id == scope.user_id, inside)


def list_batches(session: Session, scope: Scope, *, key: str | None = None, limit: int = 100) -> list[MigrationBatch]:
    """The newest batches the caller may see (optionally of one process key)."""
    query = sa.select(MigrationBatch).where(_visible_batch_clause(scope)).order_by(MigrationBatch.id.desc())
    if key is not None:
        query = query.where(MigrationBatch.key == key)
    return list(session.scalars(query.options(joinedload(MigrationBatch.created_by)).limit(limit)))


def get_batch(session: Session, batch_id: int, scope: Scope) -> MigrationBatch:
    """A batch the caller may see, or NotFound."""
    batch = session.scalars(sa.select(MigrationBatch).where(MigrationBatch.id == batch_id,
                                                            _visible_batch_clause(scope))).one_or_none()
    if batch is None:
        raise NotFound('迁移批次不存在')
    return batch


def batch_items(session: Session, batch: MigrationBatch, scope: Scope) -> list[tuple[MigrationItem, Case]]:
    """The batch's items whose cases lie in the caller's designer subtrees, with their cases, in id order."""
    rows = session.execute(
        sa.select(MigrationItem, Case).join(ProcessInstance, ProcessInstance.id == MigrationItem.instance_id)
        .join(Case, Case.id == ProcessInstance.case_id)
        .where(MigrationItem.batch_id == batch.id, path_filter(Case.org_path, migration_paths(scope)))
        .options(joinedload(Case.org_unit)).order_by(MigrationItem.id))
    return [(item, case) for item, case in rows]
