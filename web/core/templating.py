"""Template filters and globals: dates in the reader's convention and zone, due dates in working days,
masked ID numbers, dashes for blanks, and the header's unread-notification count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from flask import Flask, current_app, g
from flask_babel import get_locale, get_translations, gettext, ngettext
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from engine.calendar import WorkCalendar, load_calendar
from engine.clock import now
from engine.models.tasks import HumanTask
from engine.notifications import count_unread
from web.core.auth import current_scope
from web.core.database import db
from workflows.shared.id_numbers import mask_id_number

log = logging.getLogger(__name__)
#: this many working days left or fewer: shown as due soon
DUE_SOON_WORKING_DAYS = 2

DASH = '—'


def is_chinese() -> bool:
    """Whether the current request reads Chinese (anything but English)."""
    locale = get_locale()
    return locale is None or locale.language != 'en'


def list_separator() -> str:
    """``、`` between the items of a list in Chinese, ``, `` in English."""
    return '、' if is_chinese() else ', '


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get('TIMEZONE', 'Asia/Shanghai'))


def _as_date(value: Any) -> date | None:
    """A date from a datetime (in the local zone), a date, or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, datetime):
        return value.astimezone(_zone()).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def local_date(value: Any) -> str:
    """``2025年10月16日`` in Chinese, ``2025-10-16`` in English; ``—`` for no value."""
    day = _as_date(value)
    if day is None:
        return DASH if value in (None, '') else str(value)
    return f'{day.year}年{day.month}月{day.day}日' if is_chinese() else day.isoformat()


def local_datetime(value: datetime | None) -> str:
    """The date as :func:`local_date` and the local time, ``2025年10月16日 09:30``."""
    if value is None:
        return DASH
    return f'{local_date(value)} {value.astimezone(_zone()):%H:%M}'


def iso_datetime(value: datetime | None) -> str:
    """Machine-readable time for ``<time datetime=...>``."""
    return value.astimezone(_zone()).isoformat(timespec='minutes') if value else ''


def dash(value: Any) -> Any:
    """``—`` for an empty value, the value otherwise."""
    return DASH if value in (None, '') else value


@dataclass(frozen=True)
class DueStatus:
    """A due time as the lists show it: ``今天到期``, ``剩 3 个工作日``, ``逾期 2 天``, and its tone.

    :param text: the words
    :param tone: ``overdue``, ``today``, ``soon`` or ``later`` (the CSS class is ``due-<tone>``)
    :param overdue: past its due time
    """

    text: str
    tone: str
    overdue: bool


def describe_due(due_dt: datetime, at: datetime, calendar: WorkCalendar, zone: ZoneInfo) -> DueStatus:
    """Put the time left until ``due_dt`` into words, counting working days on ``calendar``.

    Overdue periods are counted in calendar days since the due day (a deadline missed today is
    ``已逾期``); time left in working days after today up to the due day, or in calendar days when the
    due day itself is a rest day with no working day before it (an hour deadline over a weekend).

    :param at: now
    """
    today, due_day = at.astimezone(zone).date(), due_dt.astimezone(zone).date()
    if due_dt <= at:
        late = (today - due_day).days
        text = ngettext('逾期 %(num)s 天', '逾期 %(num)s 天', late) if late > 0 else gettext('已逾期')
        return DueStatus(text, 'overdue', True)
    if due_day == today:
        return DueStatus(gettext('今天到期'), 'today', False)
    left = calendar.working_days_between(today, due_day)
    if left == 0:
        days = (due_day - today).days
        return DueStatus(ngettext('剩 %(num)s 天', '剩 %(num)s 天', days), 'soon', False)
    tone = 'soon' if left <= DUE_SOON_WORKING_DAYS else 'later'
    return DueStatus(ngettext('剩 %(num)s 个工作日', '剩 %(num)s 个工作日', left), tone, False)


def due_status(task: HumanTask) -> DueStatus | None:
    """The task's due time in words on its unit's working-day calendar; None without a due time."""
    if task.due_dt is None:
        return None
    return describe_due(task.due_dt, now(), load_calendar(db(), task.org_path), _zone())


def due_text(task: HumanTask) -> str:
    """The due date (with the time for an hour deadline, which ends at an exact time)."""
    hourly = bool(task.due_rule) and (task.due_rule or {}).get('unit') == 'hours'
    return local_datetime(task.due_dt) if hourly else local_date(task.due_dt)


def unread_notifications() -> int | None:
    """The logged-in user's unread notifications, counted once per request; None when unknown.

    Rendered on every page, error pages included: a database that is down must not turn a 503 page
    into a crash, so a failure shows no count.
    """
    if not current_user.is_authenticated:
        return None
    if 'unread_notifications' not in g:
        try:
            g.unread_notifications = count_unread(db(), current_user.id)
        except SQLAlchemyError:
            log.warning('could not count unread notifications', exc_info=True)
            db().rollback()
            g.unread_notifications = None
    count: int | None = g.unread_notifications
    return count


def has_role(group: str) -> bool:
    """Whether the logged-in user holds ``group`` anywhere (for showing admin links)."""
    if not current_user.is_authenticated:
        return False
    try:
        return current_scope().has_role(group)
    except SQLAlchemyError:
        db().rollback()
        return False


def _translations() -> Any:
    """The request's translations, looked up once per request: a to-do page translates some 800 strings, and
    flask-babel finds the catalogue afresh for each. The locale is fixed for the request (a ``force_locale``
    block would have to drop this)."""
    found = g.get('_fengqiao_translations')
    if found is None:
        found = g._fengqiao_translations = get_translations()
    return found


class Template(jinja2.Template):
    """A template whose rendering leaves no reference cycle behind.

    A ``{% macro %}`` of a page closes over the page's context, which holds everything the page was given (a
    to-do page: its rows, their ORM objects, the filter bar's choices), and the context holds the macro: a
    cycle only the collector frees. That was 2,300 objects a to-do page, and full collections walking them
    cost 10 ms every 17 pages. Emptied once the page is drawn, the context is freed when the render returns.
    """

    def render(self, *args: Any, **kwargs: Any) -> str:
        context = self.new_context(dict(*args, **kwargs))
        try:
            return self.environment.concat(self.root_render_func(context))  # type: ignore[attr-defined]
        except Exception:
            self.environment.handle_exception()
        finally:
            context.vars.clear()


def init_templating(app: Flask) -> None:
    """Register the filters and globals on ``app``, and the templates' ``_`` (after flask-babel's init)."""
    app.jinja_env.template_class = Template
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: _translations().ugettext(s), ngettext=lambda s, p, n: _translations().ungettext(s, p, n),
        pgettext=lambda c, s: _translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: _translations().unpgettext(c, s, p, n), newstyle=True)
    app.add_template_filter(local_date)
    app.add_template_filter(local_datetime)
    app.add_template_filter(iso_datetime)
    app.add_template_filter(dash)
    app.add_template_filter(mask_id_number, 'mask_id')
    app.add_template_global(is_chinese)
    app.add_template_global(due_status)
    app.add_template_global(due_text)
    app.add_template_global(unread_notifications)
    app.add_template_global(has_role)
