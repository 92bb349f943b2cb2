"""The shipped corrections diagrams: deployable once per change, complete task metadata, laid out for bpmn-js."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from lxml import etree
from sqlalchemy.orm import Session

from engine.definitions import deploy
from engine.forms import registered_form
from engine.models.definitions import ProcessDefinition
from engine.specs import ProcessBundle, parse_definition
from tests.workflows.corrections.conftest import DIAGRAMS, ROOT
from workflows.corrections import PROCESS_KEYS

GROUPS = {'township_staff', 'county_officer', 'supervisor'}
NS = {'bpmn': 'http://www.omg.org/spec/BPMN/20100524/MODEL', 'bpmndi': 'http://www.omg.org/spec/BPMN/20100524/DI'}


def test_every_catalogue_key_is_shipped() -> None:
    keys = {parse_definition(path.read_bytes()).key for path in DIAGRAMS}
    assert keys == set(PROCESS_KEYS)


@pytest.mark.parametrize('path', DIAGRAMS, ids=lambda p: p.stem)
def test_deploying_twice_creates_one_version(session: Session, path: Path) -> None:
    first, created = deploy(session, path.read_bytes(), actor=None, filename=path.name, accept_warnings=True)
    again, created_again = deploy(session, path.read_bytes(), actor=None, filename=path.name, accept_warnings=True)
    assert created and not created_again and again.id == first.id
    count = session.scalar(sa.select(sa.func.count()).select_from(ProcessDefinition)
                           .where(ProcessDefinition.key == first.key))
    assert count == 1


@pytest.mark.parametrize('path', DIAGRAMS, ids=lambda p: p.stem)
def test_every_user_task_has_group_form_deadline_basis_and_documentation(path: Path) -> None:
    bundle = parse_definition(path.read_bytes())
    assert isinstance(bundle, ProcessBundle) and bundle.documentation
    for info in bundle.user_tasks.values():
        assert info.candidate_groups and set(info.candidate_groups) <= GROUPS, info.bpmn_id
        assert info.form.fields or registered_form(info.form.key), info.bpmn_id
        assert info.properties.get('deadline') or info.properties.get('clock'), info.bpmn_id
        assert info.properties.get('deadline.basis'), info.bpmn_id
        assert info.documentation and len(info.documentation) > 20, info.bpmn_id


@pytest.mark.parametrize('path', DIAGRAMS, ids=lambda p: p.stem)
def test_every_element_is_drawn(path: Path) -> None:
    root = etree.fromstring(path.read_bytes())
    drawn = {el.get('bpmnElement') for el in root.iterfind('.//bpmndi:BPMNPlane/*', NS)}
    elements = {el.get('id') for el in root.iter() if isinstance(el.tag, str) and el.get('id')
                and etree.QName(el).namespace == NS['bpmn']
                and etree.QName(el).localname not in {'definitions', 'process', 'collaboration', 'laneSet',
                                                      'signal', 'conditionExpression', 'timerEventDefinition',
                                                      'signalEventDefinition', 'terminateEventDefinition'}}
    assert elements - drawn == set()


def test_layout_is_up_to_date() -> None:
    result = subprocess.run([sys.executable, str(ROOT / 'scripts' / 'bpmn_layout.py'), '--check',
                             *map(str, DIAGRAMS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
