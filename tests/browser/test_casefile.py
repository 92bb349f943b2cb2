"""The case file (卷宗) preview in Chromium: no CSP problem on screen, and on paper (print media) every section on
sheets of its own, A4, the toolbar gone, a small photo shown inline.

Leaves a screenshot and the printed PDF in test-artifacts/ for a person to look at.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from engine.access import load_scope
from engine.attachments import AttachmentSettings, store_attachment
from engine.models.cases import Case
from tests.browser.support import DESKTOP, Problems, login
from tests.engine.test_casefile import dispute_to_closure
from tests.workflows.disputes import conftest as disputes_fixtures
from tests.workflows.disputes.conftest import Driver

# The dispute driver, as the workflow tests use it (pytest finds fixtures by their module-level names).
deployed, driver, taojiang, worker = (disputes_fixtures.deployed, disputes_fixtures.driver, disputes_fixtures.taojiang,
                                      disputes_fixtures.worker)

pytestmark = pytest.mark.browser


def _png(width: int, height: int) -> bytes:
    """A real, decodable PNG of one grey colour."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + kind + data + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    rows = b''.join(b'\x00' + b'\x80\x80\x80' * width for _ in range(height))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))


@pytest.fixture
def closed(driver: Driver) -> Case:
    case, _ = dispute_to_closure(driver)
    mediator = driver.user('mediator')
    store_attachment(driver.session, case, '调解现场.png', _png(40, 30), actor=mediator,
                     scope=load_scope(driver.session, mediator), settings=AttachmentSettings())
    driver.session.commit()
    return case


def _open(watched_page: Callable[..., tuple[Page, Problems]], base: str, case: Case) -> tuple[Page, Problems]:
    page, problems = watched_page(DESKTOP)
    login(page, base, 'mediator')
    problems.clear()
    page.goto(f'{base}/cases/{case.id}/casefile')
    return page, problems


def test_preview_prints_each_section_on_its_own_sheets(watched_page: Callable[..., tuple[Page, Problems]],
                                                       live_server: str, closed: Case, artifacts: Path) -> None:
    page, problems = _open(watched_page, live_server, closed)
    expect(page.locator('section.cf-section').first).to_be_visible()
    photo = page.locator('img.cf-image[alt="调解现场.png"]')
    expect(photo).to_be_visible()
    assert photo.evaluate('img => img.complete && img.naturalWidth') == 40
    page.screenshot(path=str(artifacts / 'casefile-preview.png'), full_page=False)
    for key in ('contents', 'evidence', 'agreement'):
        page.locator(f'#section-{key}').screenshot(path=str(artifacts / f'casefile-{key}.png'))
    problems.assert_none(page)

    page.emulate_media(media='print')
    breaks = page.locator('section.cf-section').evaluate_all(
        'sections => sections.map(s => [s.dataset.section, getComputedStyle(s).breakBefore])')
    assert breaks[0] == ['cover', 'auto']
    assert len(breaks) > 8 and all(value == 'page' for _, value in breaks[1:]), breaks
    assert page.locator('section.cf-cover').evaluate('s => getComputedStyle(s).page') == 'cover'
    assert page.locator('.doc-toolbar').evaluate('e => getComputedStyle(e).display') == 'none'
    assert page.locator('.site-header').evaluate('e => getComputedStyle(e).display') == 'none'
    # on paper the sections lose their on-screen sheet frame: the page margins of @page are the sheet
    assert page.locator('section.cf-contents').evaluate('s => getComputedStyle(s).borderTopStyle') == 'none'

    pdf = page.pdf(prefer_css_page_size=True)
    (artifacts / 'casefile.pdf').write_bytes(pdf)
    pages = pdf.count(b'/Type /Page') - pdf.count(b'/Type /Pages')
    assert pages >= len(breaks)
    boxes = {tuple(round(float(v)) for v in box.split()) for box in re.findall(rb'/MediaBox \[0 0 ([\d. ]+)\]', pdf)}
    assert boxes == {(595, 842)}  # A4 in points, every page
