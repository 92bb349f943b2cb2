"""What designers see of deployed definitions: every key with its versions, who deployed each and when,
and how many unfinished instances sit on each version and at which step.

The counts come from two grouped queries over the whole table (instances by version and status, open
human tasks by version and step), never one query per version. They are limited to the cases under
``paths``: a designer counts the instances of their own subtree, like every other query in the product.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session, joinedload

from engine.access import path_filter
from engine.errors import NotFound
from engine.i18n import N_, _
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.drafts import AcceptedWarning, DefinitionDraft
from engine.models.instances import ProcessInstance
from engine.models.tasks import HumanTask

#: instance statuses counted as "still on this version"
UNFINISHED = ('running', 'waiting', 'error', 'suspended')
MSG_NO_KEY = N_('没有已部署的定义 "{key}"。')


@dataclass(frozen=True)
class StepCount:
    """One user task of a version and how many instances wait there."""

    bpmn_id: str
    title: str
    instances: int


@dataclass
class VersionSummary:
    """One deployed version with its unfinished instances: per status and per open user task."""

    definition: ProcessDefinition
    statuses: dict[str, int] = field(default_factory=dict)
    steps: list[StepCount] = field(default_factory=list)
    accepted_warnings: int = 0

    @property
    def unfinished(self) -> int:
        """Instances of the version that have not completed."""
        return sum(self.statuses.values())


@dataclass
class KeySummary:
    """A key (process or decision table) with its versions, newest first, and its drafts."""

    key: str
    kind: str
    versions: list[VersionSummary]
    drafts: int = 0

    @property
    def newest(self) -> ProcessDefinition:
        """The version new cases start on."""
        return self.versions[0].definition

    @property
    def unfinished(self) -> int:
        """Unfinished instances over every version."""
        return sum(v.unfinished for v in self.versions)


def _definitions(session: Session, key: str | None) -> list[ProcessDefinition]:
    query = (sa.select(ProcessDefinition).options(joinedload(ProcessDefinition.deployed_by))
             .order_by(ProcessDefinition.kind, ProcessDefinition.key, ProcessDefinition.version.desc()))
    if key is not None:
        query = query.where(ProcessDefinition.key == key)
    return list(session.scalars(query))


def _status_counts(session: Session, ids: list[int], paths: tuple[str, ...]) -> dict[int, dict[str, int]]:
    rows = session.execute(
        sa.select(ProcessInstance.definition_id, ProcessInstance.status, sa.func.count())
        .join(Case, Case.id == ProcessInstance.case_id)
        .where(ProcessInstance.definition_id.in_(ids), ProcessInstance.status.in_(UNFINISHED),
               path_filter(Case.org_path, paths))
        .group_by(ProcessInstance.definition_id, ProcessInstance.status))
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for definition_id, status, count in rows:
        counts[definition_id][status] = count
    return counts


def _step_counts(session: Session, ids: list[int], paths: tuple[str, ...]) -> dict[int, list[StepCount]]:
    rows = session.execute(
        sa.select(ProcessInstance.definition_id, HumanTask.bpmn_id, sa.func.min(HumanTask.title),
                  sa.func.count(sa.distinct(HumanTask.instance_id)))
        .join(ProcessInstance, ProcessInstance.id == HumanTask.instance_id)
        .where(HumanTask.status == 'open', ProcessInstance.definition_id.in_(ids),
               path_filter(HumanTask.org_path, paths))
        .group_by(ProcessInstance.definition_id, HumanTask.bpmn_id))
    steps: dict[int, list[StepCount]] = defaultdict(list)
    for definition_id, bpmn_id, title, count in rows:
        steps[definition_id].append(StepCount(bpmn_id, title, count))
    for found in steps.values():
        found.sort(key=lambda step: (-step.instances, step.title))
    return steps


def _warning_counts(session: Session, ids: list[int]) -> dict[int, int]:
    rows = session.execute(sa.select(AcceptedWarning.definition_id, sa.func.count())
                           .where(AcceptedWarning.definition_id.in_(ids)).group_by(AcceptedWarning.definition_id))
    return {definition_id: count for definition_id, count in rows}


def _draft_counts(session: Session) -> dict[str, int]:
    rows = session.execute(sa.select(DefinitionDraft.key, sa.func.count()).group_by(DefinitionDraft.key))
    return {key: count for key, count in rows}


def summarise(session: Session, paths: tuple[str, ...], *, key: str | None = None) -> list[KeySummary]:
    """Every key (or only ``key``), processes before decision tables, each with its versions newest first.

    :param paths: the org subtrees whose instances are counted (a designer's units)
    """
    found = _definitions(session, key)
    ids = [d.id for d in found]
    bpmn_ids = [d.id for d in found if d.kind == 'bpmn']
    statuses = _status_counts(session, bpmn_ids, paths) if bpmn_ids else {}
    steps = _step_counts(session, bpmn_ids, paths) if bpmn_ids else {}
    warnings = _warning_counts(session, ids) if ids else {}
    drafts = _draft_counts(session)
    keys: dict[str, KeySummary] = {}
    for definition in found:
        summary = keys.setdefault(definition.key, KeySummary(definition.key, definition.kind, [],
                                                             drafts.get(definition.key, 0)))
        summary.versions.append(VersionSummary(definition, statuses.get(definition.id, {}),
                                               steps.get(definition.id, []), warnings.get(definition.id, 0)))
    return list(keys.values())


def summarise_key(session: Session, key: str, paths: tuple[str, ...]) -> KeySummary:
    """One key's versions with their counts, or NotFound."""
    found = summarise(session, paths, key=key)
    if not found:
        raise NotFound(_(MSG_NO_KEY).format(key=key))
    return found[0]


def get_definition(session: Session, definition_id: int) -> ProcessDefinition:
    """One deployed version (with its source), or NotFound."""
    definition = session.get(ProcessDefinition, definition_id)
    if definition is None:
        raise NotFound(_(MSG_NO_KEY).format(key=definition_id))
    return definition
