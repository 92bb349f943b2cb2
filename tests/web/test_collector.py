"""A long-running process's collector: its start-up objects frozen, the young generation collected less often."""

from __future__ import annotations

import gc
import runpy
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT
from web.core.collector import YOUNG_GENERATION_THRESHOLD, settle_collector


@pytest.fixture
def collector_restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_settling_freezes_what_is_loaded_and_raises_the_young_threshold(collector_restored: None) -> None:
    loaded = [object()]
    _, middle, old = gc.get_threshold()
    settle_collector()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, middle, old)
    assert gc.is_tracked(loaded) and not any(loaded is o for o in gc.get_objects())


def test_each_gunicorn_worker_settles_its_collector(collector_restored: None) -> None:
    settings = runpy.run_path(str(ROOT / 'deploy' / 'gunicorn.conf.py'))
    settings['post_worker_init'](None)
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD and gc.get_freeze_count() > 0
