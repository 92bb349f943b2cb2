"""The 三员 administration pages; every change goes through the engine, which enforces the separation again.

* 工作日历 and 用户管理 for the system administrator (``system_admin``, or the legacy ``admin``);
* 角色权限 for the security administrator (``security_admin``): grants, revocations, second factors.

Neither page shows or changes case data; the audit administrator reads what both did in 审计日志.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext
from sqlalchemy.orm import Session

from engine.access import SECURITY_ADMIN, SYSTEM_ADMIN_ROLES
from engine.calendar import add_override, remove_override
from engine.clock import get_clock
from engine.directory import (
    MSG_NOT_SECURITY_ADMIN,
    MSG_NOT_SYSTEM_ADMIN,
    USER_LIST_MAX,
    add_membership,
    create_user,
    group_counts,
    is_locked,
    list_users,
    membership_within,
    memberships_of,
    remove_membership,
    remove_totp,
    reset_password,
    set_user_active,
    unit_within,
    unlock_user,
    update_user,
    user_within,
)
from engine.errors import AccessDenied, Conflict, EngineError, NotFound, ValidationFailed
from engine.i18n import N_
from engine.models.org_units import OrgUnit
from engine.models.users import Group, User
from web.admin.schemas import GrantSchema, NewUserSchema, OverrideSchema, PasswordSchema, UserDetailsSchema
from web.admin.util import (
    account_state,
    calendar_notice,
    coverage_text,
    get_override,
    group_choices,
    list_overrides,
    parse_year,
    scoped_unit_choices,
    unit_by_code,
    unit_choices,
    year_choices,
    year_of,
)
from web.core.auth import current_actor, current_scope
from web.core.database import db
from web.core.forms import field_errors, load_form
from web.core.pages import PageView, translate
from web.core.views import status_for

MSG_FORM = N_('数据有误，请检查标出的字段。')
MSG_UNIT_OUTSIDE = N_('机构不存在或不在您的管辖范围内。')
MSG_NO_GROUP = N_('没有这个角色。')


class AdminView(PageView):
    """Base of the calendar pages: anyone who is not a system administrator gets a 403."""

    def check_access(self) -> None:
        if not current_scope().is_system_admin:
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


# -- 用户管理 (system administrator) -------------------------------------------------------------------------------

class AdminAreaView(PageView):
    """Base of the account and role pages: holders of ``roles``, for the units and accounts in the subtrees
    where they hold it; anyone else a 403 before any record is looked up (a 404 would say it exists or not)."""

    #: the group codes that open these pages, and whose units bound them
    roles: ClassVar[frozenset[str]]
    #: why anyone else is refused
    refusal: ClassVar[str]

    def check_access(self) -> None:
        if not self.paths:
            raise AccessDenied(self.refusal)

    @property
    def paths(self) -> tuple[str, ...]:
        """The subtrees the caller administers."""
        return current_scope().paths_of(self.roles)

    def load(self, **kwargs: Any) -> None:
        self.check_access()


class UserAdminView(AdminAreaView):
    """Base of the account pages: system administrators."""

    roles = SYSTEM_ADMIN_ROLES
    refusal = MSG_NOT_SYSTEM_ADMIN


class UsersView(UserAdminView):
    """用户管理: the accounts in the caller's subtrees, searched by username or name."""

    def get(self) -> ResponseReturnValue:
        query = (request.args.get('q') or '').strip()[:64]
        users = list_users(db(), self.paths, text=query or None, limit=USER_LIST_MAX + 1)
        return render_template('admin/users.html', users=users[:USER_LIST_MAX], cut=len(users) > USER_LIST_MAX,
                               query=query, state=account_state)


def _new_user_page(values: Mapping[str, str], errors: Mapping[str, list[str]] | None = None,
                   message: str | None = None) -> str:
    paths = current_scope().paths_of(SYSTEM_ADMIN_ROLES)
    return render_template('admin/user_new.html', values=values, errors=errors or {},
                           units=scoped_unit_choices(db(), paths), message=translate(message) if message else None)


class NewUserView(UserAdminView):
    """新建用户: username, name, unit, e-mail and an initial password; the account holds no role yet."""

    def get(self) -> ResponseReturnValue:
        return _new_user_page({})

    def post(self) -> ResponseReturnValue:
        session = db()
        args = load_form(NewUserSchema(), request.form)
        unit = _unit_field(session, self.paths, args['org_unit'])
        user = create_user(session, args['username'], args['display_name'], request.form.get('password', ''), unit,
                           actor=current_actor(), email=args['email'])
        flash(gettext('已创建用户 %(username)s。角色由安全保密管理员授予。', username=user.username), 'success')
        return redirect(url_for('admin.show_user', user_id=user.id))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        values = {key: value for key, value in request.form.items() if key not in ('password', 'csrf_token')}
        if isinstance(exc, ValidationFailed):
            return _new_user_page(values, _translated(exc.fields), exc.message), 400
        if isinstance(exc, Conflict):  # the username is taken
            return _new_user_page(values, {'username': [translate(exc.message)]}, exc.message), 409
        return super().handle_error(exc)


def _unit_field(session: Session, paths: tuple[str, ...], code: str) -> OrgUnit:
    """The unit a form names by code, within ``paths``; otherwise an error beside the field."""
    try:
        return unit_within(session, paths, code)
    except NotFound:
        raise ValidationFailed(MSG_FORM, {'org_unit': [MSG_UNIT_OUTSIDE]}) from None


def _translated(fields: Mapping[str, list[str]]) -> dict[str, list[str]]:
    return {name: field_errors(fields, name) for name in fields}


def _user_page(user: User, *, values: Mapping[str, str] | None = None, errors: Mapping[str, list[str]] | None = None,
               message: str | None = None) -> str:
    session = db()
    values = values or {'display_name': user.display_name, 'email': user.email or '', 'org_unit': user.org_unit.code}
    return render_template('admin/user.html', user=user, values=values, errors=errors or {},
                           units=scoped_unit_choices(session, current_scope().paths_of(SYSTEM_ADMIN_ROLES)),
                           memberships=memberships_of(session, user), state=account_state(user),
                           locked=is_locked(user), message=translate(message) if message else None)


class UserView(UserAdminView):
    """One account: its details (editable), its roles (read only), password, unlock, deactivate."""

    def load(self, user_id: int) -> None:
        super().load()
        self.user = user_within(db(), current_scope(), self.roles, user_id)

    def get(self, user_id: int) -> ResponseReturnValue:
        return _user_page(self.user)

    def post(self, user_id: int) -> ResponseReturnValue:
        session = db()
        args = load_form(UserDetailsSchema(), request.form)
        unit = _unit_field(session, self.paths, args['org_unit'])
        update_user(session, self.user, display_name=args['display_name'], email=args['email'], org_unit=unit,
                    actor=current_actor())
        flash(gettext('已保存用户 %(username)s 的信息。', username=self.user.username), 'success')
        return redirect(url_for('admin.show_user', user_id=self.user.id))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed) and hasattr(self, 'user'):
            values = {key: value for key, value in request.form.items() if key != 'csrf_token'}
            return _user_page(self.user, values=values, errors=_translated(exc.fields), message=exc.message), 400
        return super().handle_error(exc)


class UserActionView(UserView):
    """Base of an account's buttons: a refusal flashes its reason on the account's page."""

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, (AccessDenied, Conflict)) and hasattr(self, 'user'):
            flash(translate(exc.message), 'error')
            return redirect(url_for('admin.show_user', user_id=self.user.id))
        return super().handle_error(exc)


class ResetPasswordView(UserActionView):
    """重置密码: a new password under the policy; every session of the user ends."""

    def post(self, user_id: int) -> ResponseReturnValue:
        load_form(PasswordSchema(), request.form)
        reset_password(db(), self.user, request.form.get('password', ''), actor=current_actor())
        flash(gettext('已重置用户 %(username)s 的密码，其已登录的会话均已失效。', username=self.user.username),
              'success')
        return redirect(url_for('admin.show_user', user_id=self.user.id))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, ValidationFailed) and hasattr(self, 'user'):
            return _user_page(self.user, errors=_translated(exc.fields), message=exc.message), 400
        return super().handle_error(exc)


class DeactivateUserView(UserActionView):
    """停用: the account can no longer log in; its sessions and API tokens stop working."""

    def post(self, user_id: int) -> ResponseReturnValue:
        set_user_active(db(), self.user, False, actor=current_actor())
        flash(gettext('已停用用户 %(username)s。', username=self.user.username), 'success')
        return redirect(url_for('admin.show_user', user_id=self.user.id))


class ReactivateUserView(UserActionView):
    """启用: a deactivated account may log in again."""

    def post(self, user_id: int) -> ResponseReturnValue:
        set_user_active(db(), self.user, True, actor=current_actor())
        flash(gettext('已启用用户 %(username)s。', username=self.user.username), 'success')
        return redirect(url_for('admin.show_user', user_id=self.user.id))


class UnlockUserView(UserActionView):
    """解锁: lift a lockout after too many failed logins."""

    def post(self, user_id: int) -> ResponseReturnValue:
        unlock_user(db(), self.user, actor=current_actor())
        flash(gettext('已解锁用户 %(username)s。', username=self.user.username), 'success')
        return redirect(url_for('admin.show_user', user_id=self.user.id))


# -- 角色权限 (security administrator) -----------------------------------------------------------------------------

class RoleAdminView(AdminAreaView):
    """Base of the role pages: security administrators."""

    roles = frozenset({SECURITY_ADMIN})
    refusal = MSG_NOT_SECURITY_ADMIN


class RolesView(RoleAdminView):
    """角色权限: every role with its members in the caller's subtrees, and the accounts to grant roles to."""

    def get(self) -> ResponseReturnValue:
        session = db()
        query = (request.args.get('q') or '').strip()[:64]
        users = list_users(session, self.paths, text=query or None, limit=USER_LIST_MAX + 1)
        return render_template('admin/roles.html', groups=group_counts(session, self.paths),
                               users=users[:USER_LIST_MAX], cut=len(users) > USER_LIST_MAX, query=query,
                               state=account_state)


def _roles_page(user: User, *, values: Mapping[str, str] | None = None,
                errors: Mapping[str, list[str]] | None = None, message: str | None = None) -> str:
    session = db()
    paths = current_scope().paths_of(frozenset({SECURITY_ADMIN}))
    return render_template('admin/user_roles.html', user=user, memberships=memberships_of(session, user),
                           revocable={m.id for m in memberships_of(session, user)
                                      if any(m.org_unit.path.startswith(p) for p in paths)},
                           groups=group_choices(session), units=scoped_unit_choices(session, paths),
                           values=values or {'org_unit': user.org_unit.code}, errors=errors or {},
                           is_self=user.id == current_actor().id, message=translate(message) if message else None)


class UserRolesView(RoleAdminView):
    """One account's roles: grant one at a unit of the caller's subtree, revoke one, reset the second factor."""

    def load(self, user_id: int) -> None:
        super().load()
        self.user = user_within(db(), current_scope(), self.roles, user_id)

    def get(self, user_id: int) -> ResponseReturnValue:
        return _roles_page(self.user)

    def post(self, user_id: int) -> ResponseReturnValue:
        session = db()
        args = load_form(GrantSchema(), request.form)
        group = session.scalars(sa.select(Group).where(Group.code == args['group'])).one_or_none()
        if group is None:
            raise ValidationFailed(MSG_FORM, {'group': [MSG_NO_GROUP]})
        unit = _unit_field(session, self.paths, args['org_unit'])
        add_membership(session, self.user, group, unit, actor=current_actor())
        flash(gettext('已授予 %(username)s 在%(unit)s的“%(group)s”角色。', username=self.user.username,
                      unit=unit.name, group=group.name), 'success')
        return redirect(url_for('admin.show_user_roles', user_id=self.user.id))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, (ValidationFailed, AccessDenied, Conflict)) and hasattr(self, 'user') \
                and request.method == 'POST':
            values = {key: value for key, value in request.form.items() if key != 'csrf_token'}
            fields = _translated(exc.fields) if isinstance(exc, ValidationFailed) else {}
            return _roles_page(self.user, values=values, errors=fields, message=exc.message), status_for(exc)
        return super().handle_error(exc)


class RevokeRoleView(RoleAdminView):
    """撤销: take one role back (at a unit of the caller's subtree, never the caller's own)."""

    def load(self, membership_id: int) -> None:
        super().load()
        self.membership = membership_within(db(), current_scope(), self.roles, membership_id)
        self.user = self.membership.user

    def post(self, membership_id: int) -> ResponseReturnValue:
        group, unit = self.membership.group, self.membership.org_unit
        remove_membership(db(), self.membership, actor=current_actor())
        flash(gettext('已撤销 %(username)s 在%(unit)s的“%(group)s”角色。', username=self.user.username,
                      unit=unit.name, group=group.name), 'success')
        return redirect(url_for('admin.show_user_roles', user_id=self.user.id))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, AccessDenied) and hasattr(self, 'user'):
            flash(translate(exc.message), 'error')
            return redirect(url_for('admin.show_user_roles', user_id=self.user.id))
        return super().handle_error(exc)


class ResetTotpView(RoleAdminView):
    """重置双因素认证: a lost phone; the user enrols again at the next login if their role needs it."""

    def load(self, user_id: int) -> None:
        super().load()
        self.user = user_within(db(), current_scope(), self.roles, user_id)

    def post(self, user_id: int) -> ResponseReturnValue:
        remove_totp(db(), self.user, actor=current_actor())
        flash(gettext('已重置用户 %(username)s 的双因素认证，其已登录的会话均已失效。', username=self.user.username),
              'success')
        return redirect(url_for('admin.show_user_roles', user_id=self.user.id))

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        if isinstance(exc, AccessDenied) and hasattr(self, 'user'):
            flash(translate(exc.message), 'error')
            return redirect(url_for('admin.show_user_roles', user_id=self.user.id))
        return super().handle_error(exc)
