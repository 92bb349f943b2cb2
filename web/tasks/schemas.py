"""Input schemas of the task pages' small forms: a supervisor snoozing or cancelling a reminder, delegating,
resolving and assigning a task, saving a filter, and the to-do list's bulk actions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from engine.clock import LOCAL_ZONE
from engine.i18n import N_

#: the reason is written to the audit log: a sentence, not an essay
REASON_MAX = 500

MSG_REASON = N_('请填写原因。')
MSG_REASON_LONG = N_('原因最多 500 个字。')
MSG_WHEN = N_('请填写推迟到的日期和时间。')
MSG_WHEN_FORMAT = N_('请按“年-月-日 时:分”填写日期和时间。')


class LocalDateTime(fields.Field[datetime]):
    """A ``datetime-local`` input (``2025-10-14T09:00``), read as Beijing time and returned timezone-aware."""

    default_error_messages = {'invalid': MSG_WHEN_FORMAT, 'required': MSG_WHEN}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        try:
            parsed = datetime.fromisoformat(str(value).replace(' ', 'T'))
        except ValueError:
            raise self.make_error('invalid') from None
        return parsed.replace(tzinfo=LOCAL_ZONE) if parsed.tzinfo is None else parsed


def _reason() -> fields.String:
    return fields.String(required=True, validate=validate.Length(max=REASON_MAX, error=MSG_REASON_LONG),
                         error_messages={'required': MSG_REASON})


class CancelReminderSchema(Schema):
    """Cancel a pending reminder: why."""

    reason = _reason()


class SnoozeReminderSchema(CancelReminderSchema):
    """Put a pending reminder off: until when, and why."""

    until = LocalDateTime(required=True)


# -- the to-do list's forms: save a filter, act on the selected tasks ----------------------------------------

MSG_PERSON = N_('请选择人员。')
MSG_ASSIGNEE = N_('请选择指派对象。')
MSG_DELEGATE = N_('请选择受托人。')
MSG_NOTE_LONG = N_('说明最多 500 个字。')
MSG_ACTION = N_('请选择要执行的操作。')
MSG_FILTER_NAME = N_('请填写筛选名称。')


def _person(required_message: str, *, required: bool = True) -> fields.Integer:
    return fields.Integer(required=required, strict=False,
                          error_messages={'required': required_message, 'invalid': MSG_PERSON})


def _note() -> fields.String:
    return fields.String(load_default=None, validate=validate.Length(max=REASON_MAX, error=MSG_NOTE_LONG))


class SaveFilterSchema(Schema):
    """保存当前筛选: a name, and optionally a group of mine to share it with (the view, filters and sort
    travel as the list's own inputs)."""

    name = fields.String(required=True, error_messages={'required': MSG_FILTER_NAME})
    share_group = fields.String(load_default=None)


class DelegateSchema(Schema):
    """委托他人办理: the colleague, and a note for them."""

    delegate = _person(MSG_DELEGATE)
    note = _note()


class ResolveSchema(Schema):
    """办结委托并交回: a note for the owner."""

    note = _note()


class AssignSchema(Schema):
    """指派: the person."""

    assignee = _person(MSG_ASSIGNEE)


class BulkActionSchema(Schema):
    """批量认领 or 批量指派 (with the person); the selected task ids are read beside it."""

    action = fields.String(required=True, validate=validate.OneOf(('claim', 'assign'), error=MSG_ACTION),
                           error_messages={'required': MSG_ACTION})
    assignee = _person(MSG_ASSIGNEE, required=False)

    @validates_schema
    def _assignee_for_assign(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get('action') == 'assign' and data.get('assignee') is None:
            raise ValidationError(MSG_ASSIGNEE, 'assignee')
