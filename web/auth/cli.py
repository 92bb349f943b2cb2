"""``flask --app wsgi unlock-user NAME`` and ``reset-totp NAME``: an administrator's account commands."""

from __future__ import annotations

import click

from engine.db import unit_of_work
from engine.directory import find_user, remove_totp, unlock_user
from engine.errors import EngineError
from web.core.database import session_factory


@click.command('unlock-user')
@click.argument('username')
def unlock_user_command(username: str) -> None:
    """Lift the lockout of USERNAME after too many failed logins (audited as user.unlocked)."""
    try:
        with unit_of_work(session_factory()) as session:
            unlock_user(session, find_user(session, username), actor=None)
    except EngineError as exc:
        raise click.ClickException(f'{exc.message}：{username}') from None
    click.echo(f'已解锁用户 {username}。')


@click.command('reset-totp')
@click.argument('username')
def reset_totp_command(username: str) -> None:
    """Remove USERNAME's second factor (a lost phone); they enrol again at the next login if required."""
    try:
        with unit_of_work(session_factory()) as session:
            remove_totp(session, find_user(session, username), actor=None)
    except EngineError as exc:
        raise click.ClickException(f'{exc.message}：{username}') from None
    click.echo(f'已清除用户 {username} 的双因素认证。')
