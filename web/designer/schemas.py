"""Input and output schemas of the designer pages: the new-draft form, the editor's JSON calls, reports."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from engine.drafts import KEY_PATTERN, MSG_KEY, MSG_NAME, NAME_MAX
from engine.i18n import N_

MSG_KIND = N_('请选择 BPMN 流程或 DMN 决策表。')
MSG_KEY_MISSING = N_('请填写流程标识。')
MSG_XML = N_('请提交草稿内容。')
MSG_REVISION = N_('请提交草稿的保存序号。')
MSG_BOOL = N_('请选择是或否。')


class NewDraftSchema(Schema):
    """新建空白草稿: the kind, the key it will deploy under, and its name."""

    kind = fields.String(required=True, validate=validate.OneOf(('bpmn', 'dmn'), error=MSG_KIND),
                         error_messages={'required': MSG_KIND})
    key = fields.String(required=True, validate=validate.Regexp(KEY_PATTERN, error=MSG_KEY),
                        error_messages={'required': MSG_KEY_MISSING})
    name = fields.String(required=True, validate=validate.Length(max=NAME_MAX, error=MSG_NAME),
                         error_messages={'required': MSG_NAME})


class RevisionSchema(Schema):
    """A call naming the revision of the draft the editor holds."""

    revision = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, error=MSG_REVISION),
                              error_messages={'required': MSG_REVISION, 'invalid': MSG_REVISION})


class SaveDraftSchema(RevisionSchema):
    """保存: the modeler's XML and the revision it was loaded at."""

    xml = fields.String(required=True, validate=validate.Length(min=1, error=MSG_XML),
                        error_messages={'required': MSG_XML, 'invalid': MSG_XML})


class DeployDraftSchema(RevisionSchema):
    """部署: the revision the designer validated, and whether they accept the warnings."""

    accept_warnings = fields.Boolean(load_default=False, error_messages={'invalid': MSG_BOOL})


class DraftSchema(Schema):
    """The draft as the editor loads it."""

    id = fields.Integer()
    key = fields.String()
    kind = fields.String()
    name = fields.String()
    xml = fields.String()
    revision = fields.Integer()


class SavedSchema(Schema):
    """What a save answers: the new revision and what the XML now declares."""

    id = fields.Integer()
    key = fields.String()
    name = fields.String()
    revision = fields.Integer()


class FindingSchema(Schema):
    """One finding of a validation report (``engine.lint.Finding``)."""

    rule = fields.String()
    severity = fields.String()
    element_id = fields.String(allow_none=True)
    element_name = fields.String(allow_none=True)
    message = fields.String()


class ReportSchema(Schema):
    """A validation report (``engine.definitions.ValidationReport``): errors block a deployment, warnings may be
    accepted."""

    key = fields.String(allow_none=True)
    kind = fields.String(allow_none=True)
    name = fields.String(allow_none=True)
    errors = fields.List(fields.Nested(FindingSchema))
    warnings = fields.List(fields.Nested(FindingSchema))


class DeployedSchema(Schema):
    """What a deployment answers: the version, whether it is new, and where to go next."""

    id = fields.Integer()
    key = fields.String()
    version = fields.Integer()
    created = fields.Boolean()
    accepted_warnings = fields.Integer()
    url = fields.String()
