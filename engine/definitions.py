"""Deploying definitions and loading their parsed specs (cached per definition version)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import now
from engine.errors import NotFound
from engine.models.definitions import ProcessDefinition
from engine.models.users import User
from engine.specs import DecisionBundle, ProcessBundle, SpecCache, checksum, parse_definition

_cache = SpecCache()


def latest_dmn_sources(session: Session) -> list[bytes]:
    """Sources of the newest version of every deployed DMN definition."""
    newest = (sa.select(ProcessDefinition.key, sa.func.max(ProcessDefinition.version).label('v'))
              .where(ProcessDefinition.kind == 'dmn').group_by(ProcessDefinition.key).subquery())
    rows = session.scalars(sa.select(ProcessDefinition.source).join(
        newest, sa.and_(ProcessDefinition.key == newest.c.key, ProcessDefinition.version == newest.c.v)))
    return [source.encode('utf-8') for source in rows]


def deploy(session: Session, source: bytes | str, *, actor: User | None,
           filename: str = 'upload') -> tuple[ProcessDefinition, bool]:
    """Validate ``source`` and store it as the next version of its key.

    Deploying a source identical to the newest version of its key stores nothing and returns that
    version. Invalid sources raise ``DeploymentRejected`` before anything is written.

    :param source: BPMN or DMN XML
    :param actor: who deploys (None for the system loader)
    :param filename: shown in validation messages
    :return: the definition and whether a new version was created
    """
    raw = source.encode('utf-8') if isinstance(source, str) else source
    bundle = parse_definition(raw, dmn_sources=latest_dmn_sources(session), filename=filename)
    kind = 'bpmn' if isinstance(bundle, ProcessBundle) else 'dmn'
    digest = checksum(raw)
    newest = session.scalars(sa.select(ProcessDefinition).where(ProcessDefinition.key == bundle.key)
                             .order_by(ProcessDefinition.version.desc()).limit(1)).first()
    if newest is not None and newest.checksum == digest:
        return newest, False
    definition = ProcessDefinition(
        key=bundle.key, version=(newest.version + 1) if newest else 1, kind=kind, name=bundle.name,
        source=raw.decode('utf-8'), checksum=digest, deployed_by_id=actor.id if actor else None,
        deployed_dt=now())
    session.add(definition)
    session.flush()
    audit.record(session, 'definition.deployed', actor=actor,
                 after={'key': definition.key, 'version': definition.version, 'kind': kind,
                        'checksum': digest})
    return definition, True


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
