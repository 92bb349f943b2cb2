"""一案一码 on a phone: a party opens the address the QR code carries, enters the PIN and sees the stages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, ViewportSize, expect
from sqlalchemy.orm import Session

from engine import public_access
from engine.clock import FrozenClock
from engine.worker import Worker
from tests.browser.support import Problems
from tests.workflows.disputes import conftest as disputes
from tests.workflows.disputes.conftest import HOSPITAL, PATIENT_ID, Driver, Taojiang
from web.cases.util import qr_svg

pytestmark = pytest.mark.browser

# The dispute lifecycle's fixtures, by name (this module is not under tests/workflows/disputes).
taojiang, deployed, worker = disputes.taojiang, disputes.deployed, disputes.worker


@pytest.fixture
def dispute(session: Session, taojiang: Taojiang, deployed: None, clock: FrozenClock, worker: Worker) -> Driver:
    """Runs disputes at 桃江县 through the real engine (see tests/workflows/disputes/conftest.py)."""
    return Driver(session, taojiang, clock, worker)


PHONE: ViewportSize = {'width': 390, 'height': 844}


def test_a_party_opens_the_qr_address_on_a_phone_enters_the_pin_and_sees_the_stages(
        live_server: str, dispute: Driver, watched_page: Callable[..., tuple[Page, Problems]],
        artifacts: Path) -> None:
    case = dispute.start()
    dispute.accept(case)
    pin = public_access.issue_pin(dispute.session, case, actor=dispute.user('mediator'))
    dispute.session.commit()
    url = f'{live_server}/c/{case.public_code}'
    page, problems = watched_page(PHONE, is_mobile=True, has_touch=True)
    # The QR code printed on the notice encodes exactly this address.
    assert page.request.get(f'{url}/qr.svg').body() == qr_svg(url)

    page.goto(url)
    expect(page.get_by_role('heading', name='查询案件办理进度')).to_be_visible()
    page.get_by_label('查询密码或手机号后 4 位').fill(pin)
    page.get_by_role('button', name='查询').click()

    expect(page).to_have_url(url)
    expect(page.locator('#done-stages li')).to_have_count(1)
    expect(page.locator('#done-stages')).to_contain_text('受理审查')
    expect(page.locator('#current-stages')).to_contain_text('办理期限：')
    expect(page.locator('#party-documents')).to_contain_text('人民调解当事人权利义务告知书')
    body = page.locator('body').inner_text()
    assert PATIENT_ID not in body and HOSPITAL not in body and '王某某' not in body
    # Made for the phone: nothing wider than the screen, the button within reach.
    assert page.evaluate('document.documentElement.scrollWidth') <= PHONE['width']
    page.screenshot(path=str(artifacts / 'public-progress-phone.png'), full_page=True)
    problems.assert_none(page)

    page.reload()  # the verification holds for the reload
    expect(page.locator('#done-stages')).to_contain_text('受理审查')
