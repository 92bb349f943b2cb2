"""Settings, read from environment variables only."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get('FENGQIAO_INSTANCE', BASE_DIR / 'instance'))


def _env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.lower() in ('1', 'true', 'yes', 'on')


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, '').strip()
    return int(value) if value else default


def _secret_key() -> str:
    """SECRET_KEY from the environment, else one generated once per installation (never in the repo)."""
    if os.environ.get('SECRET_KEY'):
        return os.environ['SECRET_KEY']
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / 'secret_key'
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


class Config:
    """Production-shaped defaults; override through the environment."""

    DATABASE_URL = os.environ.get('DATABASE_URL', f'sqlite:///{INSTANCE_DIR / "fengqiao.db"}')
    TIMEZONE = os.environ.get('TIMEZONE', 'Asia/Shanghai')
    #: show demo passwords on the login page
    DEMO_MODE = _env_bool('FENGQIAO_DEMO', False)
    BABEL_DEFAULT_LOCALE = 'zh_CN'
    BABEL_DEFAULT_TIMEZONE = 'Asia/Shanghai'
    LANGUAGES = ('zh_CN', 'en')
    WTF_CSRF_TIME_LIMIT = None
    #: ``https`` when the site is served over HTTPS (directly or behind a proxy): cookies become Secure and
    #: responses carry HSTS
    PREFERRED_URL_SCHEME = os.environ.get('PREFERRED_URL_SCHEME', 'http')
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = 'Lax'
    SESSION_COOKIE_SECURE = _env_bool('SESSION_COOKIE_SECURE', PREFERRED_URL_SCHEME == 'https')
    #: trust one reverse proxy's X-Forwarded-For/-Proto/-Host (werkzeug ProxyFix); only behind a proxy
    PROXY_FIX = _env_bool('FENGQIAO_PROXY_FIX', False)
    #: a browser session idle this long ends
    IDLE_MINUTES = _env_int('FENGQIAO_IDLE_MINUTES', 30)
    #: a browser session ends this long after login, however active
    SESSION_HOURS = _env_int('FENGQIAO_SESSION_HOURS', 12)
    #: failed logins before an account locks
    MAX_FAILED_LOGINS = _env_int('FENGQIAO_MAX_FAILED_LOGINS', 5)
    #: how long a locked account stays locked (an administrator can unlock it earlier: ``unlock-user``)
    LOCKOUT_MINUTES = _env_int('FENGQIAO_LOCKOUT_MINUTES', 15)
    #: comma-separated group codes whose holders must use a TOTP second factor (e.g. ``supervisor,admin``)
    TOTP_REQUIRED_ROLES = os.environ.get('FENGQIAO_TOTP_REQUIRED_ROLES', '')
    #: login and token attempts per IP address and username within LOGIN_RATE_WINDOW seconds (per process)
    LOGIN_RATE_LIMIT = _env_int('FENGQIAO_LOGIN_RATE_LIMIT', 10)
    #: login and token attempts per IP address, whatever the username, within the window (per process)
    LOGIN_RATE_LIMIT_PER_IP = _env_int('FENGQIAO_LOGIN_RATE_LIMIT_PER_IP', 60)
    LOGIN_RATE_WINDOW = _env_int('FENGQIAO_LOGIN_RATE_WINDOW', 60)
    #: the address the public reaches the site at (``https://sfj.example.gov.cn``), encoded in every 一案一码;
    #: unset: the address each request came in on
    PUBLIC_BASE_URL = os.environ.get('FENGQIAO_PUBLIC_BASE_URL') or None
    #: the largest attachment accepted on a case, in bytes (10 MiB)
    ATTACHMENT_MAX_BYTES = _env_int('FENGQIAO_ATTACHMENT_MAX_BYTES', 10 * 1024 * 1024)
    #: keep attachment contents in this folder (random file names) instead of the database
    ATTACHMENT_FOLDER = os.environ.get('FENGQIAO_ATTACHMENT_FOLDER') or None
    #: the largest request: an attachment plus the form around it; anything larger is answered with 413
    MAX_CONTENT_LENGTH = ATTACHMENT_MAX_BYTES + 1024 * 1024
    TESTING = False
    #: reminders and escalations are mailed through this SMTP server as well; mail is off when it is unset
    SMTP_HOST = os.environ.get('SMTP_HOST') or None
    SMTP_PORT = _env_int('SMTP_PORT', 25)
    #: the From address (required with SMTP_HOST)
    SMTP_SENDER = os.environ.get('SMTP_SENDER', '')
    #: upgrade the connection with STARTTLS (port 587 usually)
    SMTP_USE_TLS = _env_bool('SMTP_USE_TLS', False)
    SMTP_USERNAME = os.environ.get('SMTP_USERNAME') or None
    SMTP_PASSWORD = os.environ.get('SMTP_PASSWORD') or None

    def __init__(self) -> None:
        self.SECRET_KEY = _secret_key()


class TestConfig(Config):
    """For the test suite: a database given by the tests, CSRF on as in production."""

    TESTING = True
    DEMO_MODE = True
    SMTP_HOST = None

    def __init__(self, database_url: str = 'sqlite://') -> None:
        self.SECRET_KEY = 'test-only-not-secret'
        self.DATABASE_URL = database_url
