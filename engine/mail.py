"""Outgoing e-mail over SMTP, for reminders and escalations when a server is configured.

Nothing is sent until :func:`configure_mail` is called with a host (the app and the worker call it from
their settings at start-up); without it the engine gives in-app notifications only. Sending happens
inside the job that caused it: a job rolled back after its mail went out mails again when it is retried
(at least once, never silently lost).
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

__all__ = ['MailSettings', 'OutgoingMail', 'configure_mail', 'mail_enabled', 'mail_settings', 'send_mail']

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MailSettings:
    """Where and how to send.

    :param host: the SMTP server
    :param port: its port (25, 587 with STARTTLS...)
    :param sender: the From address
    :param use_tls: upgrade the connection with STARTTLS
    :param username: log in with this user (and ``password``) when given
    :param timeout: seconds before a connection attempt or command gives up
    """

    host: str
    port: int
    sender: str
    use_tls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 10.0


@dataclass(frozen=True)
class OutgoingMail:
    """One plain-text message to one address."""

    to: str
    subject: str
    body: str


_settings: MailSettings | None = None


def configure_mail(host: str | None, port: int = 25, sender: str = '', use_tls: bool = False,
                   username: str | None = None, password: str | None = None, timeout: float = 10.0) -> None:
    """Set the SMTP server used for every mail from now on; ``host=None`` turns mail off.

    :param sender: the From address (required with a host)
    """
    global _settings
    if host is None:
        _settings = None
        return
    if not sender:
        raise ValueError('a sender address is required to send mail')
    _settings = MailSettings(host, port, sender, use_tls, username, password, timeout)


def mail_settings() -> MailSettings | None:
    """The settings in force, or None when mail is off."""
    return _settings


def mail_enabled() -> bool:
    """Whether an SMTP server is configured."""
    return _settings is not None


def _message(settings: MailSettings, mail: OutgoingMail) -> EmailMessage:
    message = EmailMessage()
    message['From'] = settings.sender
    message['To'] = mail.to
    message['Subject'] = mail.subject
    message['Date'] = formatdate(localtime=True)
    message['Message-ID'] = make_msgid(domain=settings.sender.rpartition('@')[2] or None)
    message.set_content(mail.body)
    return message


def send_mail(mails: Sequence[OutgoingMail]) -> list[str]:
    """Send ``mails`` over one SMTP connection.

    :return: the addresses that could not be sent to (all of them if the server could not be reached);
        empty when mail is off or everything went out
    """
    settings = _settings
    if settings is None or not mails:
        return []
    failed: list[str] = []
    try:
        with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
            if settings.use_tls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, settings.password or '')
            for mail in mails:
                try:
                    smtp.send_message(_message(settings, mail))
                except smtplib.SMTPException as error:
                    logger.warning('mail to %s refused: %s', mail.to, error)
                    failed.append(mail.to)
    except (OSError, smtplib.SMTPException) as error:
        logger.warning('SMTP server %s:%s unusable: %s', settings.host, settings.port, error)
        return [mail.to for mail in mails]
    return failed
