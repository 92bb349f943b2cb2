"""Documents (文书): rendered from a template with the case's data and stored with the case.

A BPMN service task ``camunda:topic="documents.generate"`` with camunda:properties ``template``
(e.g. ``corrections/assessment_opinion``), ``title`` and optionally ``audience`` (``parties`` for
documents the parties may see through 一案一码) produces one. The HTML is kept exactly as issued.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound, select_autoescape
from sqlalchemy.orm import Session

from engine import audit
from engine.clock import LOCAL_ZONE, now
from engine.errors import WorkflowFault
from engine.models.cases import Case, Document
from engine.models.instances import ProcessInstance
from engine.models.users import User
from engine.services import ServiceContext, service

_ROOT = Path(__file__).resolve().parent.parent
_env = Environment(loader=FileSystemLoader(str(_ROOT)), autoescape=select_autoescape(default=True),
                   undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def _template_path(name: str) -> str:
    domain, _, template = name.partition('/')
    if not domain.isidentifier() or not template.replace('_', '').isalnum():
        raise WorkflowFault(f'文书模板名称无效："{name}"')
    return f'{domain}/documents/{template}.html'


def render_document(name: str, case: Case, data: Mapping[str, Any], number: str) -> str:
    """Render template ``name`` (``domain/template``) for ``case`` with task ``data``."""
    try:
        template = _env.get_template(_template_path(name))
    except TemplateNotFound:
        raise WorkflowFault(f'文书模板不存在："{name}"') from None
    issued = now().astimezone(LOCAL_ZONE)
    return template.render(case=case, data=data, number=number, org_unit=case.org_unit, issued_on=issued.date())


def generate_document(session: Session, case: Case, instance: ProcessInstance | None, name: str, title: str,
                      data: Mapping[str, Any], *, actor: User | None, audience: str | None = None) -> Document:
    """Render and store a document on ``case``; audited.

    :param name: template, ``domain/template``
    :param audience: ``parties`` if the parties may see it (一案一码), else None
    """
    count = session.scalar(sa.select(sa.func.count()).select_from(Document).where(Document.case_id == case.id))
    number = f'{case.number}-{(count or 0) + 1:02d}'
    document = Document(case_id=case.id, instance_id=instance.id if instance else None, kind=name.split('/')[-1],
                        title=title, number=number, body_html=render_document(name, case, data, number),
                        audience=audience, created_by_id=actor.id if actor else None, created_dt=now())
    session.add(document)
    session.flush()
    audit.record(session, 'document.generated', actor=actor, case_id=case.id,
                 instance_id=instance.id if instance else None, org_path=case.org_path,
                 after={'document_id': document.id, 'kind': document.kind, 'title': title, 'number': number})
    return document


@service('documents.generate')
def _generate_from_task(context: ServiceContext, data: dict[str, Any]) -> dict[str, Any]:
    template = context.properties.get('template')
    if not template:
        raise WorkflowFault('文书生成任务缺少 template 属性。')
    document = generate_document(context.session, context.case, context.instance, template,
                                 context.properties.get('title', template), data, actor=context.actor,
                                 audience=context.properties.get('audience'))
    return {f'document_{document.kind}_id': document.id}
