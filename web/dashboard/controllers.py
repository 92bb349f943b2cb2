"""统计 (the supervisors' dashboard per org unit) and 工作评比 (the monthly ranking of counties).

Supervisors only, each within the subtrees they supervise: anyone else gets a 403, a unit outside those
subtrees a 404. The ranking is for city and province supervisors; its weights may also be set by an
administrator of the unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from flask import Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine.clock import get_clock, now
from engine.errors import AccessDenied, EngineError, NotFound, ValidationFailed
from engine.models.org_units import OrgUnit
from engine.ranking import (
    DEFAULT_WEIGHTS,
    MEASURES,
    RANKING_LEVELS,
    CountyScore,
    effective_weights,
    publish_ranking,
    published_ranking,
    rank_counties,
    scores_from_json,
    set_weights,
)
from engine.statistics import Period, parse_period, process_names, step_durations, unit_breakdown
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import load_form
from web.core.pages import ActionView, PageView, translate
from web.core.templating import local_datetime
from web.dashboard import util
from web.dashboard.schemas import MonthSchema


def _field_message(exc: ValidationFailed) -> str:
    """The first field's message, translated: what a query argument error page says."""
    messages = [m for ms in exc.fields.values() for m in ms]
    return translate(messages[0] if messages else exc.message)


class DashboardPage(PageView):
    """Base of the pages here: a bad query argument is a 400 page naming what is wrong."""

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed):
            return render_template('error.html', status=400, message=_field_message(exc)), 400
        return super().handle_error(exc)


class OwnDashboardView(DashboardPage):
    """``/dashboard``: the caller's own (highest) supervised unit, with the same query arguments."""

    def check_access(self) -> None:
        util.require_supervisor(current_scope())

    def get(self) -> ResponseReturnValue:
        [unit, *_] = util.top_units(db(), current_scope().supervisor_paths) or [None]
        if unit is None:
            raise NotFound(util.MSG_NO_UNIT)
        query = urlencode({k: v for k, v in request.args.items() if k in ('period', 'from', 'to')})
        return redirect(url_for('dashboard.show_unit', code=unit.code) + (f'?{query}' if query else ''))


class DashboardView(DashboardPage):
    """One unit's measures over a period, its child units (drill down), charts and time per step."""

    def load(self, code: str) -> None:
        self.unit = util.unit_by_code(db(), code)

    def check_access(self) -> None:
        util.require_supervised(db(), current_scope(), self.unit)

    def get(self, code: str) -> ResponseReturnValue:
        session, today = db(), get_clock().today()
        period = parse_period(request.args.get('period'), request.args.get('from'), request.args.get('to'),
                              today=today)
        breakdown = unit_breakdown(session, self.unit, period)
        steps = step_durations(session, self.unit, [c.unit for c in breakdown.children], period)
        names = dict(process_names(session, [row.process_key for row in steps]))
        return render_template(
            'dashboard/unit.html', unit=self.unit, period=period, period_label=util.period_label(period),
            choices=util.period_choices(today, period), breakdown=breakdown, steps=steps, process_names=names,
            trail=util.breadcrumb(session, current_scope(), self.unit), query=_period_query(period),
            charts=_charts(breakdown, steps, names), running=not period.is_complete(now()), util=util,
            legend=util.heat_legend(), can_rank=self.unit.level in RANKING_LEVELS,
            own_column=bool(breakdown.children) and any(None in row.cells for row in steps))


def _period_query(period: Period) -> dict[str, str]:
    """The query arguments that keep the period when drilling down."""
    if period.kind == 'custom':
        return {'period': 'custom', 'from': period.first.isoformat(), 'to': period.last.isoformat()}
    return {'period': period.token}


def _charts(breakdown: Any, steps: list[Any], names: dict[str, str]) -> dict[str, dict[str, Any]]:
    charts = {}
    if breakdown.children:
        charts['cases'] = util.cases_chart(breakdown.children)
        charts['rates'] = util.rates_chart(breakdown.children)
    if steps:
        charts['steps'] = util.steps_chart(steps, names)
    return charts


# -- 工作评比 ---------------------------------------------------------------------------------------------------

class OwnRankingView(DashboardPage):
    """``/ranking``: the caller's city or province (an administrator goes to the weights of theirs)."""

    def get(self) -> ResponseReturnValue:
        scope, session = current_scope(), db()
        ranked = [u for u in util.top_units(session, scope.supervisor_paths) if u.level in RANKING_LEVELS]
        if ranked:
            month = request.args.get('month')
            arguments = {'month': month} if month else {}
            return redirect(url_for('dashboard.show_ranking', code=ranked[0].code, **arguments))
        administered = [u for u in util.top_units(session, util.admin_paths(scope)) if u.level in RANKING_LEVELS]
        if administered:
            return redirect(url_for('dashboard.edit_weights', code=administered[0].code))
        raise AccessDenied(util.MSG_RANKING_ONLY)


class RankingView(DashboardPage):
    """The counties under a city or the province, ranked for a month, each score explained."""

    def load(self, code: str, **kwargs: Any) -> None:
        self.unit = util.unit_by_code(db(), code)

    def check_access(self) -> None:
        util.require_ranked(db(), current_scope(), self.unit)

    def ranking(self) -> tuple[Period, list[CountyScore], Mapping[str, Any], Any]:
        """The month asked for, its ranking (frozen if published), the weights used and the snapshot."""
        session = db()
        month = util.parse_month(request.args.get('month'), get_clock().today())
        snapshot = published_ranking(session, self.unit, month)
        if snapshot is not None:
            return month, scores_from_json(snapshot.results), snapshot.weights, snapshot
        weights = effective_weights(session, self.unit)
        return month, rank_counties(session, self.unit, month, weights.values), weights.values, None

    def get(self, code: str) -> ResponseReturnValue:
        month, scores, weights, snapshot = self.ranking()
        source = None if snapshot is not None else effective_weights(db(), self.unit)
        return render_template(
            'dashboard/ranking.html', unit=self.unit, month=month, month_label=util.period_label(month),
            scores=scores, weights=weights, snapshot=snapshot, source=source, measures=MEASURES, util=util,
            complete=month.is_complete(now()), trail=util.breadcrumb(db(), current_scope(), self.unit))


class ExportRankingView(RankingView):
    """The ranking as CSV or XLSX (the same figures as the page, frozen ones for a published month)."""

    def get(self, code: str, fmt: str = 'csv') -> ResponseReturnValue:
        if fmt not in ('csv', 'xlsx'):
            raise NotFound(util.MSG_NO_UNIT)
        month, scores, weights, snapshot = self.ranking()
        header, rows = util.export_header(), util.export_rows(scores)
        name = f'ranking-{self.unit.code}-{month.token}.{fmt}'
        if fmt == 'csv':
            body, mimetype = util.csv_bytes(header, rows), 'text/csv; charset=utf-8'
        else:
            body = util.xlsx_bytes(_export_title(self.unit, month), header, rows, _export_notes(weights, snapshot))
            mimetype = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet'
        response = Response(body, mimetype=mimetype)
        response.headers['Content-Disposition'] = f'attachment; filename="{name}"'
        response.headers['Cache-Control'] = 'no-store'
        return response


def _export_title(unit: OrgUnit, month: Period) -> str:
    return gettext('%(unit)s %(month)s 工作评比', unit=unit.name, month=util.period_label(month))


def _export_notes(weights: Mapping[str, Any], snapshot: Any) -> list[str]:
    notes = [gettext('权重：') + '；'.join(f'{gettext(s.label)} {weights.get(s.key, 0)}' for s in MEASURES)]
    notes.append(gettext('计分办法见 docs/ranking.md：各项指标标准化为 0–1 后按权重加权，缺少数据的指标不计入，'
                         '其权重按比例分给其余指标；得分为各项得分之和。'))
    if snapshot is not None:
        notes.append(gettext('本月结果已于 %(when)s 发布并冻结。', when=local_datetime(snapshot.published_dt)))
    return notes


class PublishRankingView(ActionView):
    """Freeze a finished month's ranking so that it never moves (audited)."""

    def load(self, code: str) -> None:
        self.unit = util.unit_by_code(db(), code)

    def check_access(self) -> None:
        util.require_ranked(db(), current_scope(), self.unit)

    def return_url(self) -> str:
        month = (request.form.get('month') or '').strip()
        valid = len(month) == 7 and month[4] == '-' and month.replace('-', '').isdigit()
        return url_for('dashboard.show_ranking', code=self.unit.code, **({'month': month} if valid else {}))

    def post(self, code: str) -> ResponseReturnValue:
        month = util.parse_month(load_form(MonthSchema(), request.form)['month'], get_clock().today())
        publish_ranking(db(), self.unit, month, actor=current_actor())
        flash(gettext('%(month)s 的评比结果已发布，不再随数据变化。', month=util.period_label(month)), 'success')
        return redirect(self.return_url())

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed):
            flash(_field_message(exc), 'error')
            return redirect(self.return_url())
        return super().handle_error(exc)


class WeightsView(DashboardPage):
    """The weights a city's or the province's ranking uses: shown, and changed (validated, audited)."""

    def load(self, code: str) -> None:
        self.unit = util.unit_by_code(db(), code)

    def check_access(self) -> None:
        util.require_weights_editor(db(), current_scope(), self.unit)

    def get(self, code: str) -> ResponseReturnValue:
        weights = effective_weights(db(), self.unit)
        values = {key: str(value) for key, value in weights.values.items()}
        return self.page(values, {})

    def page(self, values: Mapping[str, str], errors: Mapping[str, list[str]], message: str | None = None) -> str:
        weights = effective_weights(db(), self.unit)
        return render_template('dashboard/weights.html', unit=self.unit, weights=weights, values=values,
                               errors={k: [translate(m) for m in v] for k, v in errors.items()},
                               message=translate(message) if message else None, measures=MEASURES,
                               defaults=DEFAULT_WEIGHTS, can_rank=current_scope().supervises_path(self.unit.path))

    def post(self, code: str) -> ResponseReturnValue:
        raw = {spec.key: (request.form.get(spec.key) or '').strip() for spec in MEASURES}
        set_weights(db(), self.unit, raw, actor=current_actor())
        flash(gettext('评比权重已保存。'), 'success')
        if current_scope().supervises_path(self.unit.path):
            return redirect(url_for('dashboard.show_ranking', code=self.unit.code))
        return redirect(url_for('dashboard.edit_weights', code=self.unit.code))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if request.method == 'POST' and isinstance(exc, ValidationFailed):
            values = {spec.key: (request.form.get(spec.key) or '').strip() for spec in MEASURES}
            return self.page(values, exc.fields, exc.message), 400
        return super().handle_error(exc)
