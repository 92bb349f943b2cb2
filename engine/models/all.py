"""Import every model so the metadata is complete (Alembic env, create_all in tests)."""

from engine.models.audit import AuditChainHead, AuditEvent
from engine.models.calendar import CalendarOverride, CaseClock
from engine.models.cases import Case, CaseAccessGrant, Document
from engine.models.comments import Attachment, Comment
from engine.models.definitions import ProcessDefinition
from engine.models.filters import SavedFilter
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.notifications import Notification
from engine.models.org_units import OrgUnit
from engine.models.tasks import HumanTask
from engine.models.users import ApiToken, Group, Membership, User

__all__ = ['ApiToken', 'Attachment', 'AuditChainHead', 'AuditEvent', 'CalendarOverride', 'Case', 'CaseAccessGrant',
           'CaseClock', 'Comment', 'Document', 'Group', 'HumanTask', 'Job', 'Membership', 'Notification', 'OrgUnit',
           'ProcessDefinition', 'ProcessInstance', 'SavedFilter', 'User']
