"""What the browser tests share: watching a page for problems, the bundles a module needs, logging in."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import ConsoleMessage, Error, Page, ViewportSize, expect

from tests.fixtures.directory import PASSWORD

DESKTOP: ViewportSize = {'width': 1280, 'height': 900}
DIST = Path(__file__).resolve().parents[2] / 'web' / 'static' / 'dist'
# Recorded before any page script runs (an init script is not subject to the page's CSP).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


def require_bundles(*names: str) -> None:
    """Fail (not skip) when a front-end bundle of ``web/static/dist`` a module needs has not been built."""
    missing = [str(DIST / name) for name in names if not (DIST / name).exists()]
    if missing:
        pytest.fail(f'{", ".join(missing)} {"is" if len(missing) == 1 else "are"} missing: build the front-end '
                    'bundles with `make setup` (or scripts/build-assets.sh) before running the browser tests.',
                    pytrace=False)


@dataclass
class Problems:
    """Console errors, uncaught exceptions and CSP violations seen by one page."""

    console: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)

    @classmethod
    def watch(cls, page: Page) -> Problems:
        """Start recording what ``page`` reports; call it before the page's first navigation."""
        problems = cls()
        page.add_init_script(WATCH_CSP)
        page.on('console', problems.on_console)
        page.on('pageerror', problems.on_error)
        return problems

    def on_console(self, message: ConsoleMessage) -> None:
        # The app serves no favicon.ico; Chromium's 404 for it is no fault of the page.
        if message.type == 'error' and not message.location.get('url', '').endswith('/favicon.ico'):
            self.console.append(f'{message.text} ({message.location.get("url")})')

    def on_error(self, error: Error) -> None:
        self.exceptions.append(str(error))

    def clear(self) -> None:
        """Forget what was seen so far (the login page, say): only what the page under test reports counts."""
        self.console.clear()
        self.exceptions.clear()

    def assert_none(self, page: Page) -> None:
        assert page.evaluate('window.__cspViolations') == []
        assert self.console == [] and self.exceptions == []


def login(page: Page, base_url: str, username: str, password: str = PASSWORD, *, start: str = '/login') -> None:
    """Log in through the login form and wait for the page it leads to (the to-do list).

    ``start`` is the page opened first; one other than ``/login`` must send a visitor without a session to the
    form (asserted), and the login then comes back to it.
    """
    page.goto(f'{base_url}{start}')
    if start != '/login':
        expect(page).to_have_url(re.compile(r'/login\?next='))
    page.get_by_label('用户名').fill(username)
    page.get_by_label('密码').fill(password)
    page.get_by_role('button', name='登录').click()
    expect(page).to_have_url(f'{base_url}{"/tasks" if start == "/login" else start}')
