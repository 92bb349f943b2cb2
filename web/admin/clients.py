"""接入方管理 (system administrator): the machine clients that post alarms and referrals to ``/api/v1/events``.

A client acts for one unit in the administrator's subtrees and may send the kinds ticked for it. Its token is
shown once, on the page that answers its creation, and never again (only its digest is stored).
"""

from __future__ import annotations

from collections.abc import Mapping

from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine.directory import unit_within
from engine.errors import EngineError, NotFound, ValidationFailed
from engine.events import create_client, get_client, list_clients, set_client_active
from engine.i18n import N_
from engine.models.events import EVENT_KINDS, MachineClient
from web.admin.controllers import UserAdminView
from web.admin.util import scoped_unit_choices
from web.core.auth import current_actor
from web.core.database import db
from web.core.pages import translate

MSG_FORM = N_('数据有误，请检查标出的字段。')
MSG_UNIT_OUTSIDE = N_('机构不存在或不在您的管辖范围内。')
#: the kinds as the form offers them
KIND_LABELS = {'alarm': N_('监管报警（越界、关机、人机分离、异常签到）'), 'referral': N_('五源纠纷移交')}


def _page(paths: tuple[str, ...], *, values: Mapping[str, object] | None = None,
          errors: Mapping[str, list[str]] | None = None, message: str | None = None,
          created: MachineClient | None = None, token: str | None = None) -> str:
    return render_template('admin/clients.html', clients=list_clients(db(), paths), values=values or {},
                           errors={k: [translate(m) for m in v] for k, v in (errors or {}).items()},
                           units=scoped_unit_choices(db(), paths), kinds=[(k, translate(KIND_LABELS[k]))
                                                                           for k in EVENT_KINDS],
                           message=translate(message) if message else None, created=created, token=token)


class ClientsView(UserAdminView):
    """接入方: the clients of the caller's subtrees, and the form that creates one (its token shown once)."""

    def get(self) -> ResponseReturnValue:
        return _page(self.paths)

    def post(self) -> ResponseReturnValue:
        session = db()
        try:
            unit = unit_within(session, self.paths, request.form.get('org_unit', '').strip())
        except NotFound:
            raise ValidationFailed(MSG_FORM, {'org_unit': [MSG_UNIT_OUTSIDE]}) from None
        client, token = create_client(session, request.form.get('name', ''), unit, request.form.getlist('kinds'),
                                      actor=current_actor())
        # The token is in this answer only: no cache may keep it, and it never goes through the session (flash).
        return _page(self.paths, created=client, token=token), 201, {'Cache-Control': 'no-store'}

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed):
            values = {'name': request.form.get('name', ''), 'org_unit': request.form.get('org_unit', ''),
                      'kinds': request.form.getlist('kinds')}
            return _page(self.paths, values=values, errors=exc.fields, message=exc.message), 400
        return super().handle_error(exc)


class ClientActiveView(UserAdminView):
    """停用 / 启用 a client of the caller's subtrees (a client elsewhere is a 404)."""

    #: what the button sets
    active: bool = False

    def load(self, client_id: int) -> None:  # type: ignore[override]
        super().load()
        self.client = get_client(db(), client_id, self.paths)

    def post(self, client_id: int) -> ResponseReturnValue:
        set_client_active(db(), self.client, self.active, actor=current_actor())
        flash(gettext('已启用接入方 %(name)s。', name=self.client.name) if self.active
              else gettext('已停用接入方 %(name)s，其令牌立即失效。', name=self.client.name), 'success')
        return redirect(url_for('admin.list_clients'))


class ActivateClientView(ClientActiveView):
    """启用 a client again."""

    active = True
