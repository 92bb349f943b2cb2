"""工作日历: the working-day overrides, for users holding the ``admin`` group; every change through engine.calendar."""

from __future__ import annotations

from collections.abc import Mapping

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine.access import ADMIN
from engine.calendar import add_override, remove_override
from engine.clock import get_clock
from engine.errors import AccessDenied, EngineError, ValidationFailed
from engine.i18n import N_
from web.admin.schemas import OverrideSchema
from web.admin.util import (
    calendar_notice,
    coverage_text,
    get_override,
    list_overrides,
    parse_year,
    unit_by_code,
    unit_choices,
    year_choices,
    year_of,
)
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import field_errors, load_form
from web.core.pages import PageView, translate


class AdminView(PageView):
    """Base of the admin pages: anyone without the ``admin`` group gets a 403."""

    def check_access(self) -> None:
        if not current_scope().has_role(ADMIN):
            raise AccessDenied(N_('只有系统管理员可以管理工作日历。'))


def _calendar_page(year: int, *, values: Mapping[str, str] | None = None,
                   errors: Mapping[str, list[str]] | None = None, message: str | None = None) -> str:
    session = db()
    return render_template('admin/calendar.html', year=year, overrides=list_overrides(session, year),
                           years=year_choices(session, year), notice=calendar_notice(), coverage=coverage_text(),
                           units=unit_choices(session), values=values or {'kind': 'rest'}, errors=errors or {},
                           message=translate(message) if message else None, today=get_clock().today())


class CalendarView(AdminView):
    """The overrides of one year, the coverage warning and the form to add a day."""

    def load(self) -> None:
        self.year = parse_year(request.args.get('year'))

    def get(self) -> ResponseReturnValue:
        return _calendar_page(self.year)


class AddOverrideView(AdminView):
    """Declare a day a rest day or a make-up working day, everywhere or in one unit's subtree (audited)."""

    def post(self) -> ResponseReturnValue:
        session = db()
        args = load_form(OverrideSchema(), request.form)
        unit = unit_by_code(session, args['org_unit'])
        row = add_override(session, args['day'], args['kind'] == 'work', org_unit=unit, note=args['note'],
                           actor=current_actor())
        flash(gettext('已保存 %(day)s 的调整。', day=row.day.isoformat()), 'success')
        return redirect(url_for('admin.show_calendar', year=row.day.year))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if not isinstance(exc, ValidationFailed):
            return super().handle_error(exc)
        errors = {name: field_errors(exc.fields, name) for name in exc.fields}
        return _calendar_page(year_of(request.form.get('day')), values=dict(request.form), errors=errors,
                              message=exc.message), 400


class RemoveOverrideView(AdminView):
    """Withdraw an override (audited); days then follow the statutory calendar again."""

    def load(self, override_id: int) -> None:
        self.override = get_override(db(), override_id)

    def post(self, override_id: int) -> ResponseReturnValue:
        row = self.override
        day, unit = row.day, row.org_unit
        remove_override(db(), day, org_unit=unit, actor=current_actor(),
                        note=request.form.get('note', '').strip() or None)
        flash(gettext('已删除 %(day)s 的调整。', day=day.isoformat()), 'success')
        return redirect(url_for('admin.show_calendar', year=day.year))
