"""URLs of the admin area: the working calendar and the accounts (system administrator), roles (security
administrator)."""

from __future__ import annotations

from flask import Blueprint

from web.admin.clients import ActivateClientView, ClientActiveView, ClientsView
from web.admin.controllers import (
    AddOverrideView,
    CalendarView,
    DeactivateUserView,
    NewUserView,
    ReactivateUserView,
    RemoveOverrideView,
    ResetPasswordView,
    ResetTotpView,
    RevokeRoleView,
    RolesView,
    UnlockUserView,
    UserRolesView,
    UsersView,
    UserView,
)

bp = Blueprint('admin', __name__, template_folder='templates', url_prefix='/admin')

bp.add_url_rule('/calendar', 'show_calendar', view_func=CalendarView.as_view('show_calendar'), methods=['GET'])
bp.add_url_rule('/calendar', 'add_override', view_func=AddOverrideView.as_view('add_override'), methods=['POST'])
bp.add_url_rule('/calendar/overrides/<int:override_id>/remove', 'remove_override',
                view_func=RemoveOverrideView.as_view('remove_override'), methods=['POST'])

bp.add_url_rule('/users', 'list_users', view_func=UsersView.as_view('list_users'), methods=['GET'])
bp.add_url_rule('/users/new', 'new_user', view_func=NewUserView.as_view('new_user'), methods=['GET'])
bp.add_url_rule('/users/new', 'create_user', view_func=NewUserView.as_view('create_user'), methods=['POST'])
bp.add_url_rule('/users/<int:user_id>', 'show_user', view_func=UserView.as_view('show_user'), methods=['GET'])
bp.add_url_rule('/users/<int:user_id>', 'update_user', view_func=UserView.as_view('update_user'), methods=['POST'])
bp.add_url_rule('/users/<int:user_id>/password', 'reset_password',
                view_func=ResetPasswordView.as_view('reset_password'), methods=['POST'])
bp.add_url_rule('/users/<int:user_id>/deactivate', 'deactivate_user',
                view_func=DeactivateUserView.as_view('deactivate_user'), methods=['POST'])
bp.add_url_rule('/users/<int:user_id>/reactivate', 'reactivate_user',
                view_func=ReactivateUserView.as_view('reactivate_user'), methods=['POST'])
bp.add_url_rule('/users/<int:user_id>/unlock', 'unlock_user', view_func=UnlockUserView.as_view('unlock_user'),
                methods=['POST'])

bp.add_url_rule('/roles', 'list_roles', view_func=RolesView.as_view('list_roles'), methods=['GET'])
bp.add_url_rule('/roles/users/<int:user_id>', 'show_user_roles', view_func=UserRolesView.as_view('show_user_roles'),
                methods=['GET'])
bp.add_url_rule('/roles/users/<int:user_id>', 'grant_role', view_func=UserRolesView.as_view('grant_role'),
                methods=['POST'])
bp.add_url_rule('/roles/memberships/<int:membership_id>/revoke', 'revoke_role',
                view_func=RevokeRoleView.as_view('revoke_role'), methods=['POST'])
bp.add_url_rule('/roles/users/<int:user_id>/totp/reset', 'reset_totp', view_func=ResetTotpView.as_view('reset_totp'),
                methods=['POST'])

bp.add_url_rule('/clients', 'list_clients', view_func=ClientsView.as_view('list_clients'), methods=['GET'])
bp.add_url_rule('/clients', 'create_client', view_func=ClientsView.as_view('create_client'), methods=['POST'])
bp.add_url_rule('/clients/<int:client_id>/deactivate', 'deactivate_client',
                view_func=ClientActiveView.as_view('deactivate_client'), methods=['POST'])
bp.add_url_rule('/clients/<int:client_id>/activate', 'activate_client',
                view_func=ActivateClientView.as_view('activate_client'), methods=['POST'])
