"""One user-task completion through Fengqiao's engine service, against SpiffWorkflow alone.

Engine: lock, load, validate, complete, run to the next wait state, sync human tasks and jobs, audit,
commit — on SQLite and on PostgreSQL, twice: with the workflow the start left in memory reused (the usual
case: ``engine.loaded`` keeps the last 256 committed workflows per process) and restored from the database
every time (a case no command touched since this process started). Baseline, measured in the same run:
SpiffWorkflow alone doing deserialize → complete → run → serialize in memory, for the same 10-task process.

    .venv/bin/python -m benchmarks.bench_complete [--cases 300]
"""

from __future__ import annotations

import argparse
import sys

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG
from SpiffWorkflow.util.task import TaskState

from benchmarks.common import ROOT, Timing, fresh_database, measure, print_table
from benchmarks.suite import Options, Row, timing_rows
from engine import runtime
from engine.access import load_scope
from engine.db import create_db_engine, create_session_factory
from engine.definitions import deploy
from engine.directory import add_membership, configure_hashing, create_org_unit, create_user, get_group
from engine.loaded import loaded_workflows
from engine.models.tasks import HumanTask
from engine.sandbox import SandboxedScriptEngine

BPMN = ROOT / 'benchmarks' / 'bpmn' / 'ten_tasks.bpmn'
KEY = 'bench_ten_tasks'
DEFAULT_KEPT = loaded_workflows.size


def bare_spiff(repetitions: int) -> Timing:
    """SpiffWorkflow alone: deserialize, complete the ready task, run, serialize."""
    parser = CamundaParser()
    parser.add_bpmn_file(str(BPMN))
    spec = parser.get_spec(KEY)
    serializer = BpmnWorkflowSerializer(BpmnWorkflowSerializer.configure(CAMUNDA_CONFIG))
    engine = SandboxedScriptEngine()
    states = []
    for _ in range(repetitions):
        workflow = BpmnWorkflow(spec, script_engine=engine)
        workflow.do_engine_steps()
        states.append(serializer.serialize_json(workflow))

    def complete(index: int) -> None:
        workflow = serializer.deserialize_json(states[index])
        workflow.script_engine = engine
        task = workflow.get_next_task(state=TaskState.READY, manual=True)
        task.data.update({'note_1': '同意'})
        task.run()
        workflow.do_engine_steps()
        states[index] = serializer.serialize_json(workflow)

    return measure(complete, repetitions)


def engine_service(backend: str, repetitions: int, *, reuse: bool = True) -> Timing:
    """The full engine command, one transaction per completion.

    :param reuse: keep every started workflow in memory (else restore each from the database)
    """
    loaded_workflows.clear()
    loaded_workflows.size = repetitions if reuse else 0
    db = create_db_engine(fresh_database(backend))
    factory = create_session_factory(db)
    with factory() as session:
        unit = create_org_unit(session, '430922001', '桃花江镇司法所', 'township', None)
        user = create_user(session, 'bench', 'bench', 'x', unit, actor=None, enforce_policy=False)
        add_membership(session, user, get_group(session, 'township_staff', '司法所工作人员'), unit, actor=None)
        deploy(session, BPMN.read_bytes(), actor=None, accept_warnings=True)
        task_ids = []
        for _ in range(repetitions):
            _, tasks = runtime.start_case(session, KEY, {}, actor=user, org_unit=unit)
            task_ids.append(tasks[0].id)
        session.commit()
        user_id = user.id

    def complete(index: int) -> None:
        with factory() as session:
            actor = session.get(type(user), user_id)
            runtime.complete_task(session, task_ids[index], {'note_1': '同意'}, actor=actor,
                                  scope=load_scope(session, actor))
            session.commit()

    timing = measure(complete, repetitions)
    assert loaded_workflows.hits == (repetitions if reuse else 0)
    loaded_workflows.size = DEFAULT_KEPT
    with factory() as session:
        assert session.query(HumanTask).filter_by(bpmn_id='step_2', status='open').count() == repetitions
    db.dispose()  # the suite's next benchmark may drop and recreate this database
    return timing


BARE = 'SpiffWorkflow alone (deserialize→complete→serialize)'


def run(options: Options) -> list[Row]:
    """The suite's rows: the engine command on each backend against SpiffWorkflow alone (no growth: the
    process is fixed at ten tasks)."""
    cases = options.sizes_for('complete', [30], [300])[0]
    configure_hashing(time_cost=1, memory_cost=1024)
    bare = bare_spiff(cases)
    backends = ('sqlite', 'postgresql') if options.postgres else ('sqlite',)
    rows = []
    for backend in backends:
        for reuse, how in ((True, 'workflow kept'), (False, 'restored from the database')):
            rows += timing_rows(f'engine command, {backend}, {how}, {cases} completions',
                                engine_service(backend, cases, reuse=reuse), 'SpiffWorkflow alone', bare, '≤ 1.5×')
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--cases', type=int, default=300)
    parser.add_argument('--skip-postgres', action='store_true')
    args = parser.parse_args(argv)
    configure_hashing(time_cost=1, memory_cost=1024)
    rows = [(BARE, bare_spiff(args.cases))]
    for backend, name in (('sqlite', 'SQLite'), ('postgresql', 'PostgreSQL'))[:1 if args.skip_postgres else 2]:
        rows += [(f'Fengqiao engine command, {name}, workflow kept', engine_service(backend, args.cases)),
                 (f'Fengqiao engine command, {name}, restored', engine_service(backend, args.cases, reuse=False))]
    print_table(f'One task completion, 10-task process, {args.cases} completions each (one at a time)',
                rows, baseline=BARE)


if __name__ == '__main__':
    main(sys.argv[1:])
