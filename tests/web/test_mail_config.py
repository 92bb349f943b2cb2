"""SMTP settings from the environment, mail configured by create_app (worker included), create-user --email."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from config import TestConfig as AppTestConfig
from engine.clock import FrozenClock
from engine.directory import get_group
from engine.mail import MailSettings, configure_mail, mail_settings
from engine.models.audit import AuditEvent
from engine.models.tasks import HumanTask
from engine.models.users import User
from tests.engine.deadline_support import set_time
from tests.fixtures.directory import Org
from web.app import create_app

ROOT = Path(__file__).resolve().parents[2]
SMTP_ENV = ('SMTP_HOST', 'SMTP_PORT', 'SMTP_SENDER', 'SMTP_USE_TLS', 'SMTP_USERNAME', 'SMTP_PASSWORD')


def _config_in_subprocess(tmp_path: Path, **env: str) -> list[str]:
    """The SMTP_* settings of ``config.Config`` as a fresh interpreter reads them from ``env``."""
    clean = {k: v for k, v in os.environ.items() if k not in SMTP_ENV}
    code = ('from config import Config as C; '
            'print(repr((C.SMTP_HOST, C.SMTP_PORT, C.SMTP_SENDER, C.SMTP_USE_TLS, C.SMTP_USERNAME, C.SMTP_PASSWORD)))')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, check=True,
                            env={**clean, 'FENGQIAO_INSTANCE': str(tmp_path), **env})
    return [result.stdout.strip()]


def test_smtp_settings_come_from_the_environment(tmp_path: Path) -> None:
    assert _config_in_subprocess(tmp_path) == ["(None, 25, '', False, None, None)"]
    assert _config_in_subprocess(tmp_path, SMTP_HOST='smtp.example.org', SMTP_PORT='587',
                                 SMTP_SENDER='fengqiao@example.org', SMTP_USE_TLS='true',
                                 SMTP_USERNAME='fengqiao', SMTP_PASSWORD='s3cret') == [
        "('smtp.example.org', 587, 'fengqiao@example.org', True, 'fengqiao', 's3cret')"]


class _SmtpConfig(AppTestConfig):
    SMTP_HOST = '127.0.0.1'
    SMTP_SENDER = 'fengqiao@example.org'
    SMTP_USE_TLS = False

    def __init__(self, database_url: str, port: int) -> None:
        super().__init__(database_url)
        self.SMTP_PORT = port


@pytest.fixture
def mail_off() -> Iterator[None]:
    yield
    configure_mail(None)


def test_create_app_configures_mail_and_turns_it_off_without_a_host(db_url: str, db_engine: object,
                                                                    mail_off: None) -> None:
    create_app(_SmtpConfig(db_url, 2525))
    assert mail_settings() == MailSettings('127.0.0.1', 2525, 'fengqiao@example.org', False, None, None)
    create_app(AppTestConfig(db_url))
    assert mail_settings() is None


def test_a_host_without_a_sender_is_refused_at_start(db_url: str, db_engine: object, mail_off: None) -> None:
    config = _SmtpConfig(db_url, 2525)
    config.SMTP_SENDER = ''
    with pytest.raises(RuntimeError, match='SMTP_SENDER'):
        create_app(config)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


class _Sink:
    """Collects what the SMTP server receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], str]] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        self.messages.append((list(envelope.rcpt_tos), envelope.content.decode('utf-8')))
        return '250 OK'


def test_the_cli_worker_mails_reminders_with_the_apps_settings(db_url: str, session: Session, assess: HumanTask,
                                                               people: dict[str, User], clock: FrozenClock,
                                                               mail_off: None) -> None:
    from aiosmtpd.controller import Controller

    sink, port = _Sink(), _free_port()
    controller = Controller(sink, hostname='127.0.0.1', port=port)
    controller.start()
    try:
        people['staff'].email = 'staff@example.org'
        session.commit()
        app = create_app(_SmtpConfig(db_url, port))
        set_time(clock, '2025-10-10 09:00:00')
        result = app.test_cli_runner().invoke(args=['worker', '--once'])
        assert result.exit_code == 0, result.output
    finally:
        controller.stop()
    assert [to for to, _ in sink.messages] == [['staff@example.org']]
    assert 'From: fengqiao@example.org' in sink.messages[0][1]
    sent = session.scalars(sa.select(AuditEvent).where(AuditEvent.kind == 'reminder.sent')).one()
    assert sent.after is not None and sent.after['emailed'] == ['staff@example.org']


def test_create_user_takes_an_email(app: Flask, session: Session, org: Org) -> None:
    get_group(session, 'township_staff', '司法所工作人员')
    session.commit()
    runner = app.test_cli_runner()
    args = ['--org-unit', org.township.code, '--password', 'Tj-2025-Sifa!']
    with app.app_context():  # as `flask --app wsgi create-user` runs it
        result = runner.invoke(args=['create-user', 'newbie', '--name', '新同事', '--group', 'township_staff',
                                     '--email', 'newbie@example.org', *args])
        assert result.exit_code == 0, result.output
        result = runner.invoke(args=['create-user', 'nomail', '--name', '无邮箱', *args])
        assert result.exit_code == 0, result.output
        result = runner.invoke(args=['create-user', 'bad', '--name', '错', '--email', 'not-an-address', *args])
        assert result.exit_code != 0 and '不是有效的电子邮件地址' in result.output
    emails = dict(session.execute(sa.select(User.username, User.email)).all())
    assert emails == {'newbie': 'newbie@example.org', 'nomail': None}
