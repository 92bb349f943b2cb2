"""Validating and deploying definitions, and loading their parsed specs (cached per definition version).

:func:`validate` makes the report a designer sees before deploying (:mod:`engine.lint`);
:func:`deploy` stores a source only when that report has no errors and its warnings, if any, were
accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from lxml import etree
from sqlalchemy.orm import Session

from engine import audit
from engine.access import NON_CASE_ROLES
from engine.clock import now
from engine.errors import DeploymentRejected, NotFound, WarningsNotAccepted
from engine.i18n import N_, _
from engine.lint import Finding, ValidationReport, validate_source
from engine.models.definitions import ProcessDefinition
from engine.models.drafts import AcceptedWarning
from engine.models.users import Group, User
from engine.specs import MSG_REJECTED, DecisionBundle, ProcessBundle, SpecCache, checksum, safe_xml_parser, utf8_text

__all__ = [
    'Deployment',
    'Finding',
    'ValidationReport',
    'decision_bundle',
    'deploy',
    'deploy_with_report',
    'latest_definition',
    'latest_dmn_sources',
    'process_bundle',
    'validate',
]

MSG_WARNINGS = N_('流程定义有 {count} 条警告：确认无误后请选择“接受警告”再部署。')

_cache = SpecCache()


@dataclass(frozen=True)
class Deployment:
    """The outcome of :func:`deploy_with_report`.

    :param definition: the stored version (the newest existing one when the source was unchanged)
    :param created: whether a new version was stored
    :param report: the validation report; its warnings were accepted when ``created``
    """

    definition: ProcessDefinition
    created: bool
    report: ValidationReport


def latest_dmn_sources(session: Session) -> list[bytes]:
    """Sources of the newest version of every deployed DMN definition."""
    newest = (sa.select(ProcessDefinition.key, sa.func.max(ProcessDefinition.version).label('v'))
              .where(ProcessDefinition.kind == 'dmn').group_by(ProcessDefinition.key).subquery())
    rows = session.scalars(sa.select(ProcessDefinition.source).join(
        newest, sa.and_(ProcessDefinition.key == newest.c.key, ProcessDefinition.version == newest.c.v)))
    return [source.encode('utf-8') for source in rows]


def _known_groups(session: Session) -> frozenset[str]:
    """The installation's role codes; none (the rule is skipped) until some role does case work, since a new
    installation holds only the administration roles its migrations create."""
    codes = frozenset(session.scalars(sa.select(Group.code)))
    return codes if codes - NON_CASE_ROLES else frozenset()


def validate(session: Session, source: bytes | str, *, filename: str = 'upload') -> ValidationReport:
    """Check ``source`` as :func:`deploy` would, without storing anything.

    Never raises on bad input: an unreadable file is a report with errors.

    :param source: BPMN or DMN XML
    :param filename: shown in validation messages
    :return: the report (key, kind, name, errors, warnings)
    """
    return validate_source(source, dmn_sources=latest_dmn_sources(session), filename=filename,
                           known_groups=_known_groups(session))


def deploy_with_report(session: Session, source: bytes | str, *, actor: User | None, filename: str = 'upload',
                       accept_warnings: bool = False) -> Deployment:
    """Validate ``source`` and store it as the next version of its key.

    Deploying a source identical to the newest version of its key stores nothing and returns that
    version, whatever its warnings (there is nothing to accept). Accepted warnings are kept with the
    version (:class:`AcceptedWarning`) and in the ``definition.deployed`` audit event.

    :param source: BPMN or DMN XML
    :param actor: who deploys (None for the system loader)
    :param filename: shown in validation messages
    :param accept_warnings: the deployer has read the warnings and deploys anyway
    :return: the definition, whether it is new, and the report
    :raise DeploymentRejected: the report has errors (carried as ``report`` and as ``problems``)
    :raise WarningsNotAccepted: the report has warnings and ``accept_warnings`` is false
    """
    raw = source.encode('utf-8') if isinstance(source, str) else source
    report = validate(session, raw, filename=filename)
    key, kind = _deployable(report)
    digest = checksum(raw)
    newest = session.scalars(sa.select(ProcessDefinition).where(ProcessDefinition.key == key)
                             .order_by(ProcessDefinition.version.desc()).limit(1)).first()
    if newest is not None and newest.checksum == digest:
        return Deployment(newest, False, report)
    if report.warnings and not accept_warnings:
        raise WarningsNotAccepted(_(MSG_WARNINGS).format(count=len(report.warnings)), report)
    definition = ProcessDefinition(
        key=key, version=(newest.version + 1) if newest else 1, kind=kind, name=report.name or key,
        source=_stored_text(raw), checksum=digest, deployed_by_id=actor.id if actor else None,
        deployed_dt=now())
    session.add(definition)
    session.flush()
    for finding in report.warnings:
        session.add(AcceptedWarning(definition_id=definition.id, rule=finding.rule[:64],
                                    element_id=finding.element_id[:255] if finding.element_id else None,
                                    element_name=finding.element_name[:200] if finding.element_name else None,
                                    message=finding.message, accepted_by_id=actor.id if actor else None,
                                    accepted_dt=definition.deployed_dt))
    audit.record(session, 'definition.deployed', actor=actor, after=_audit_after(definition, report))
    return Deployment(definition, True, report)


def deploy(session: Session, source: bytes | str, *, actor: User | None, filename: str = 'upload',
           accept_warnings: bool = False) -> tuple[ProcessDefinition, bool]:
    """:func:`deploy_with_report` without the report.

    :return: the definition and whether a new version was created
    """
    result = deploy_with_report(session, source, actor=actor, filename=filename, accept_warnings=accept_warnings)
    return result.definition, result.created


def _stored_text(raw: bytes) -> str:
    """The source as stored text: UTF-8 as is; a document validation read in another declared encoding
    (UTF-16, GB18030...) is re-serialized as UTF-8 with a declaration saying so, rather than failing to decode."""
    try:
        return raw.decode('utf-8')
    except UnicodeDecodeError:
        return utf8_text(etree.fromstring(raw, safe_xml_parser()))


def _deployable(report: ValidationReport) -> tuple[str, str]:
    """The key and kind of a report without errors; raise DeploymentRejected otherwise."""
    if report.errors or report.key is None or report.kind is None:
        problems = [{'element': f.element_id, 'message': f.message} for f in report.errors]
        raise DeploymentRejected(_(MSG_REJECTED), problems, report=report)
    return report.key, report.kind


def _audit_after(definition: ProcessDefinition, report: ValidationReport) -> dict[str, Any]:
    return {'key': definition.key, 'version': definition.version, 'kind': definition.kind,
            'checksum': definition.checksum, 'accepted_warnings': [f.to_dict() for f in report.warnings]}


def latest_definition(session: Session, key: str) -> ProcessDefinition:
    """Return the newest BPMN version of ``key``, or raise NotFound."""
    definition = session.scalars(
        sa.select(ProcessDefinition).where(ProcessDefinition.key == key, ProcessDefinition.kind == 'bpmn')
        .order_by(ProcessDefinition.version.desc()).limit(1)).first()
    if definition is None:
        raise NotFound(f'没有已部署的流程 "{key}"')
    return definition


def _cache_key(definition: ProcessDefinition) -> tuple[int, str]:
    # The checksum guards against two databases (tests, a restore) reusing an id for other content.
    return definition.id, definition.checksum


def process_bundle(session: Session, definition: ProcessDefinition) -> ProcessBundle:
    """Return the parsed spec of ``definition``, parsing it at most once per process."""
    def load() -> tuple[bytes, list[bytes]]:
        return definition.source.encode('utf-8'), latest_dmn_sources(session)

    bundle = _cache.get_or_parse(_cache_key(definition), load)
    if not isinstance(bundle, ProcessBundle):
        raise NotFound(f'定义 {definition.key} 不是流程')
    return bundle


def decision_bundle(session: Session, definition: ProcessDefinition) -> DecisionBundle:
    """Return the parsed DMN ``definition``."""
    bundle = _cache.get_or_parse(_cache_key(definition), lambda: (definition.source.encode("utf-8"), []))
    if not isinstance(bundle, DecisionBundle):
        raise NotFound(f'定义 {definition.key} 不是决策表')
    return bundle
