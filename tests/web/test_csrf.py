"""Every form POST of the HTML UI is refused without its CSRF token."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from engine.models.cases import Case
from engine.models.tasks import HumanTask
from tests.web.conftest import REGISTER

POSTS = ['/logout', '/tasks/{task}/claim', '/tasks/{task}/unclaim', '/tasks/{task}', '/cases/new/demo_intake',
         '/cases']


def test_login_needs_the_token(client: FlaskClient, demo_case: tuple[Case, HumanTask]) -> None:
    response = client.post('/login', data={'username': 'staff', 'password': 'Passw0rd!'})
    assert response.status_code == 400
    assert '页面已过期' in response.get_data(as_text=True)


@pytest.mark.parametrize('path', POSTS)
def test_logged_in_posts_need_the_token(client_for: Callable[[str], FlaskClient],
                                        demo_case: tuple[Case, HumanTask], path: str) -> None:
    _, task = demo_case
    staff = client_for('staff')
    response = staff.post(path.format(task=task.id), data={**REGISTER, 'person_name': '赵某某'})
    assert response.status_code == 400
    assert staff.get('/tasks').status_code == 200  # still logged in: the refused logout did nothing
