"""Input schemas of the task page's small forms: a supervisor snoozing or cancelling a reminder."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from marshmallow import Schema, fields, validate

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
