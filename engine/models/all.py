"""Import every model so the metadata is complete (Alembic env, create_all in tests)."""

from engine.models.audit import AuditChainHead, AuditEvent
from engine.models.audit_archive import AuditArchive
from engine.models.calendar import CalendarOverride, CaseClock
from engine.models.cases import Case, CaseAccessGrant, Document
from engine.models.comments import Attachment, Comment
from engine.models.definitions import ProcessDefinition
from engine.models.drafts import AcceptedWarning, DefinitionDraft
from engine.models.events import InboundEvent, MachineClient
from engine.models.filters import SavedFilter
from engine.models.idempotency import IdempotencyKey
from engine.models.imports import ImportBatch, ImportRow
from engine.models.instances import ProcessInstance
from engine.models.jobs import Job
from engine.models.migrations import MigrationBatch, MigrationItem
from engine.models.notifications import Notification
from engine.models.org_units import OrgUnit
from engine.models.public_access import PublicAccess
from engine.models.ranking import RankingSnapshot, RankingWeight
from engine.models.tasks import HumanTask
from engine.models.users import ApiToken, Group, Membership, User

__all__ = ['AcceptedWarning', 'ApiToken', 'Attachment', 'AuditArchive', 'AuditChainHead', 'AuditEvent',
           'CalendarOverride', 'Case', 'CaseAccessGrant', 'CaseClock', 'Comment', 'DefinitionDraft', 'Document',
           'Group', 'HumanTask', 'IdempotencyKey', 'ImportBatch', 'ImportRow', 'InboundEvent', 'Job', 'MachineClient',
           'Membership', 'MigrationBatch', 'MigrationItem', 'Notification', 'OrgUnit', 'ProcessDefinition',
           'ProcessInstance', 'PublicAccess', 'RankingSnapshot', 'RankingWeight', 'SavedFilter', 'User']
