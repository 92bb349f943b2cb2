"""Documents are rendered from templates with the case's data, escaped, stored and audited."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import runtime
from engine.errors import WorkflowFault
from engine.models.audit import AuditEvent
from engine.models.cases import Document
from engine.models.users import User
from tests.fixtures.directory import Org
from workflows.shared.documents import generate_document


def test_generated_document_is_stored_escaped_and_audited(session: Session, org: Org,
                                                          create_member: Callable[..., User],
                                                          deploy_file: Callable[[str], object]) -> None:
    staff = create_member('staff', 'township_staff', org.township)
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    case, _ = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-26'},
                                 actor=staff, org_unit=org.township)
    document = generate_document(session, case, None, 'shared/case_summary', '案件情况摘要',
                                 {'findings': '<script>alert(1)</script>走访属实'}, actor=staff)
    session.commit()
    stored = session.get(Document, document.id)
    assert stored.number == f'{case.number}-01' and stored.kind == 'case_summary'
    assert '谢某某' in stored.body_html and org.township.name in stored.body_html
    assert '<script>' not in stored.body_html and '&lt;script&gt;' in stored.body_html
    event = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'document.generated')).one()
    assert event.after['document_id'] == document.id


@pytest.mark.parametrize('name', ['shared/no_such_template', '../etc/passwd', 'shared/../../x'])
def test_unknown_or_unsafe_template_is_refused(session: Session, org: Org, create_member: Callable[..., User],
                                                deploy_file: Callable[[str], object], name: str) -> None:
    staff = create_member('staff', 'township_staff', org.township)
    deploy_file('tests/fixtures/bpmn/demo_intake.bpmn')
    case, _ = runtime.start_case(session, 'demo_intake', {'person_name': '谢某某', 'received_on': '2025-09-26'},
                                 actor=staff, org_unit=org.township)
    with pytest.raises(WorkflowFault):
        generate_document(session, case, None, name, 'x', {}, actor=staff)
