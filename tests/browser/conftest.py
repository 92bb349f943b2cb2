"""Fixtures of the browser tests: the real app served from a thread, headless Chromium, screenshots."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize, sync_playwright
from werkzeug.serving import make_server

from config import TestConfig
from tests.browser.support import Problems
from web.app import create_app

CHROMIUM = Path('/usr/bin/chromium')
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / 'test-artifacts'
CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']


@pytest.fixture
def live_server(db_url: str, db_engine: object) -> Iterator[str]:
    """The real app on this test's database, served on a free port; yields its base URL."""
    server = make_server('127.0.0.1', 0, create_app(TestConfig(db_url)), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name='live-server', daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_port}'
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture(scope='session')
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless (Playwright cannot download its own browser here)."""
    if not CHROMIUM.exists():
        pytest.fail('Chromium is not installed: run scripts/ensure-chromium.sh (make test runs it)')
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope='session')
def artifacts() -> Path:
    """Where screenshots go (gitignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def watched_page(browser: Browser) -> Iterator[Callable[..., tuple[Page, Problems]]]:
    """Opens a page in a new zh-CN context of its own, its problems watched (see ``Problems.watch``); every
    context opened is closed after the test."""
    contexts: list[BrowserContext] = []

    def open_page(viewport: ViewportSize, **options: Any) -> tuple[Page, Problems]:
        context = browser.new_context(viewport=viewport, locale='zh-CN', **options)
        contexts.append(context)
        page = context.new_page()
        return page, Problems.watch(page)

    yield open_page
    for context in contexts:
        context.close()
