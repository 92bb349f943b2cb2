"""``flask --app wsgi deploy PATH [--accept-warnings]``: the validation report, one line per finding."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from engine.models.definitions import ProcessDefinition

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / 'tests/fixtures/bpmn/demo_intake.bpmn'
DEADLINE = '<camunda:property name="deadline" value="365 calendar_days" />'
WARNING_LINE = '  警告 fake-join register（登记案件情况）: '


def _versions(session: Session) -> list[tuple[str, int]]:
    session.expire_all()
    return [tuple(row) for row in session.execute(sa.select(ProcessDefinition.key, ProcessDefinition.version))]


def test_warnings_stop_the_deployment_until_accepted(app: Flask, session: Session) -> None:
    runner = app.test_cli_runner()
    refused = runner.invoke(args=['deploy', str(DEMO)])
    assert refused.exit_code == 1
    assert WARNING_LINE in refused.output and '--accept-warnings' in refused.output
    assert _versions(session) == []

    accepted = runner.invoke(args=['deploy', str(DEMO), '--accept-warnings'])
    assert accepted.exit_code == 0, accepted.output
    assert 'demo_intake.bpmn: demo_intake v1' in accepted.output and WARNING_LINE in accepted.output
    assert _versions(session) == [('demo_intake', 1)]

    again = runner.invoke(args=['deploy', str(DEMO)])
    assert again.exit_code == 0 and '未变化' in again.output


def test_errors_stop_the_deployment_whatever_is_accepted(app: Flask, session: Session, tmp_path: Path) -> None:
    broken = tmp_path / 'broken.bpmn'
    broken.write_text(DEMO.read_text(encoding='utf-8').replace(DEADLINE, ''), encoding='utf-8')
    result = app.test_cli_runner().invoke(args=['deploy', str(broken), '--accept-warnings'])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == 'broken.bpmn: 流程定义未通过校验'
    assert any(line.startswith('  错误 user-task-deadline register（登记案件情况）: ') for line in lines)
    assert any(line.startswith('  错误 user-task-deadline review（审核登记情况）: ') for line in lines)
    assert WARNING_LINE in result.output  # the whole report, warnings included
    assert _versions(session) == []


def test_a_folder_deploys_tables_first_and_stops_at_the_first_refusal(app: Flask, session: Session,
                                                                     tmp_path: Path) -> None:
    (tmp_path / 'triage.dmn').write_bytes((ROOT / 'bpmn/disputes/triage.dmn').read_bytes())
    (tmp_path / 'demo.bpmn').write_bytes(DEMO.read_bytes())
    runner = app.test_cli_runner()
    result = runner.invoke(args=['deploy', str(tmp_path)])
    assert result.exit_code == 1 and result.output.startswith('triage.dmn: dispute_triage_definitions v1')
    assert _versions(session) == [('dispute_triage_definitions', 1)]
    result = runner.invoke(args=['deploy', str(tmp_path), '--accept-warnings'])
    assert result.exit_code == 0 and 'demo.bpmn: demo_intake v1' in result.output
