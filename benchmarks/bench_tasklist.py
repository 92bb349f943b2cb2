"""The to-do list at scale: the to-do page and the task-list API against the bare query, on SQLite and PostgreSQL.

A generated case load (default 1,000,000 human tasks, 10,000 users, ~300,000 cases over a province of ~1,500
townships; the mix is in the constants below and is printed, as counted, before each run) is loaded through the
real migrations once per backend and size, and kept: a SQLite file under /tmp/fq-bench-tasklist, and on the
``BENCH_POSTGRES_URL`` server a database of its own, ``fengqiao_bench_tasklist_<tasks>_<users>`` (the other
benchmarks drop and recreate ``fengqiao_bench`` on every run). A marker table records what generated it; a
cached copy is migrated to head and reused. Then, for five representative users and every view:

* **page**: ``GET /tasks?view=...`` through the Flask test client, logged in (the page renders every tab's
  capped count and one page of 50 rows);
* **api**: ``GET /api/v1/tasks?view=...`` with a bearer token;
* **bare** (baseline, measured in the same run): the very statements ``engine.tasks.list_tasks`` and
  ``count_tasks`` execute for that request (captured from the ORM session, so the SQL is the same), run on a
  SQLAlchemy Core connection: the database's floor for the page of 50 plus the capped count.

The three run interleaved, call by call, so that load from elsewhere on the machine falls on all of them alike.
Server time is the wall time around ``client.get`` (no network), with the process's CPU time beside it. The
clock is frozen at the instant the data was generated for, so "overdue" means the same on every run. Rows over
50 ms at p95, or over 3× the bare query at p95, are flagged; ``--explain N`` prints the plans of the N slowest
bare statements of flagged rows and where the slowest pages spend their SQL time.

    .venv/bin/python -m benchmarks.bench_tasklist [--tasks 1000000] [--users 10000] [--backend both]
        [--samples 50] [--warmup 5] [--budget 120] [--explain 12] [--only "county officer" ...] [--rebuild]
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import itertools
import json
import os
import random
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.pool import NullPool

from benchmarks.common import (
    PG_URL,
    ROOT,
    Timing,
    create_postgres_database,
    fresh_database,
    measure_interleaved,
    migrate,
)
from benchmarks.suite import Options, ratio, with_growth
from benchmarks.suite import Row as SuiteRow
from config import TestConfig
from engine.access import Scope, load_scope
from engine.clock import FrozenClock, get_clock, set_clock
from engine.db import UTCDateTime, create_db_engine, create_session_factory
from engine.directory import configure_hashing, hash_password
from engine.models.cases import Case
from engine.models.definitions import ProcessDefinition
from engine.models.tasks import HumanTask
from engine.models.users import User
from engine.tasks import VIEWS, TaskFilter, count_tasks, list_tasks
from workflows.shared.id_numbers import check_digit
from workflows.shared.sensitive import looks_like_id_number

#: bump when the generated data changes shape: cached databases of another version are rebuilt
GENERATOR_VERSION = 1
SEED = 20261124
PASSWORD = 'bench-pass-2026'
SQLITE_DIR = Path('/tmp/fq-bench-tasklist')
CHUNK = 50_000
P95_TARGET_MS = 50.0
#: a row's rounds never drop below this, whatever the time budget
MIN_SAMPLES = 10
RATIO_TARGET = 3.0

# -- the data mix ---------------------------------------------------------------------------------------

CITIES, COUNTIES, TOWNSHIPS = 14, 120, 1_500
#: users per county by role (one membership each; one mediator per county is also senior_mediator)
COUNTY_ROLES = {'county_officer': 8, 'mediator': 4, 'counsellor': 1, 'expert': 1, 'health_bureau': 1,
                'hospital_liaison': 1, 'supervisor': 2}
CITY_SUPERVISORS, PROVINCE_SUPERVISORS = 3, 5
#: groups whose tasks are handled at the township; every other group's at the case's county
TOWNSHIP_GROUPS = frozenset({'township_staff', 'village_mediator', 'township_mediator'})
#: the kind of each case (its lifecycle process); reception cases also run 0–2 request processes
CASE_KINDS = {'corrections_reception': 0.45, 'corrections_assessment': 0.25, 'dispute_mediation': 0.30}
CASE_PREFIXES = {'corrections_reception': 'SJ', 'corrections_assessment': 'DP', 'dispute_mediation': 'YT'}
REQUEST_KINDS = ('corrections_leave', 'corrections_report', 'corrections_sanction', 'corrections_alarm',
                 'corrections_monitoring', 'corrections_release', 'corrections_residence_change')
CASE_OPEN_SHARE = 0.70
#: open tasks of an open case
OPEN_TASKS = {1: 0.60, 2: 0.35, 3: 0.05}
#: finished tasks of a case (a closed case has at least one)
HISTORY_TASKS = (0, 1, 1, 2, 2, 3, 3, 4, 5, 2)
CANCELLED_SHARE = 0.10
COLOURS = {'red': 0.10, 'yellow': 0.25, 'green': 0.55, None: 0.10}
#: the due date of an open task
OPEN_DUE = {'none': 0.15, 'overdue': 0.12, 'due_soon': 0.10, 'later': 0.63}
ESCALATED_SHARE = 0.60  # of the overdue open tasks
ESCALATION_LEVELS = {'county': 0.80, 'city': 0.15, 'province': 0.05}
ASSIGNED_SHARE = 0.50  # of the open tasks; the rest wait in their group's queue
DELEGATED_SHARE = 0.01  # of the assigned open tasks
SURNAMES = ('王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁'
            '任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴'
            '莫孔向汤')
GIVEN = ('伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建文辉力永宁春梅国庆志海林丹东晨亮浩凯鹏'
         '飞斌云峰波宇欣怡思雨佳琳晓慧')

# -- tables and their columns, in the order the generator writes them ----------------------------------

COLUMNS = {
    'org_units': ('id', 'code', 'name', 'level', 'parent_id', 'path', 'created_dt'),
    'groups': ('id', 'code', 'name'),
    'users': ('id', 'username', 'display_name', 'password_hash', 'org_unit_id', 'is_active', 'failed_logins',
              'created_dt'),
    'memberships': ('id', 'user_id', 'group_id', 'org_unit_id'),
    'cases': ('id', 'number', 'public_code', 'kind', 'title', 'org_unit_id', 'org_path', 'status', 'risk_colour',
              'person_name', 'id_number', 'start_data', 'counters', 'is_minor', 'created_dt', 'closed_dt'),
    'process_instances': ('id', 'case_id', 'definition_id', 'is_lifecycle', 'status', 'revision', 'state',
                          'serializer_version', 'task_count', 'created_dt', 'completed_dt'),
    'human_tasks': ('id', 'instance_id', 'case_id', 'spiff_task_id', 'bpmn_id', 'title', 'candidate_group',
                    'org_unit_id', 'org_path', 'assignee_id', 'owner_id', 'delegation_state', 'priority',
                    'process_key', 'risk_colour', 'status', 'form_key', 'due_dt', 'due_rule', 'created_dt',
                    'completed_dt', 'completed_by_id', 'is_escalated', 'escalated_dt', 'escalated_to_group',
                    'escalated_org_unit_id', 'escalated_org_path'),
}
#: the tables bulk-loaded (their secondary indexes are dropped during the load and rebuilt after it)
BULK_TABLES = ('org_units', 'users', 'memberships', 'cases', 'process_instances', 'human_tasks')

Row = tuple[Any, ...]
Stamp = Callable[[datetime], Any]


@dataclass(frozen=True)
class DatasetSpec:
    """What a cached database was generated from; a different spec means a new database."""

    tasks: int
    users: int
    seed: int = SEED
    version: int = GENERATOR_VERSION

    def key(self) -> str:
        """The spec as stored in the marker table."""
        return json.dumps(self.__dict__, sort_keys=True)

    def url(self, backend: str) -> str:
        """Where this spec's database lives on ``backend``."""
        suffix = f'tasklist_{self.tasks}_{self.users}'
        if backend == 'sqlite':
            return f'sqlite:///{SQLITE_DIR / f"{suffix}.db"}'
        return f'{PG_URL}_{suffix}'


# -- the org tree and the directory ---------------------------------------------------------------------

@dataclass(frozen=True)
class Unit:
    """An org unit and its ancestors' ids (for the county- and city-level tasks and escalations)."""

    id: int
    code: str
    level: str
    path: str
    parent_id: int | None
    county_id: int = 0
    city_id: int = 0


def _spread(count: int, parents: Sequence[Unit]) -> Iterator[tuple[int, Unit]]:
    """Yield (index within parent, parent) for ``count`` children dealt round-robin over ``parents``."""
    seen: dict[int, int] = {}
    for index in range(count):
        parent = parents[index % len(parents)]
        seen[parent.id] = seen.get(parent.id, 0) + 1
        yield seen[parent.id], parent


def build_units() -> list[Unit]:
    """1 province, 14 cities, 120 counties, 1,500 townships, with paths like '/1/4/9/'."""
    province = Unit(1, '430000', 'province', '/1/', None)
    cities = [Unit(2 + i, f'43{i + 1:02d}00', 'city', f'/1/{2 + i}/', 1, city_id=2 + i) for i in range(CITIES)]
    counties, townships = [], []
    for n, (k, city) in enumerate(_spread(COUNTIES, cities)):
        uid = 2 + CITIES + n
        counties.append(Unit(uid, f'{city.code[:4]}{k:02d}', 'county', f'{city.path}{uid}/', city.id, uid, city.id))
    for n, (k, county) in enumerate(_spread(TOWNSHIPS, counties)):
        uid = 2 + CITIES + COUNTIES + n
        townships.append(Unit(uid, f'{county.code}{k:03d}', 'township', f'{county.path}{uid}/', county.id,
                              county.id, county.city_id))
    return [province, *cities, *counties, *townships]


def unit_rows(units: Sequence[Unit], stamp: Stamp, created: datetime) -> list[Row]:
    """``org_units`` rows."""
    names = {'province': '省司法厅', 'city': '市司法局', 'county': '县司法局', 'township': '司法所'}
    return [(u.id, u.code, f'{u.code}{names[u.level]}', u.level, u.parent_id, u.path, stamp(created)) for u in units]


@dataclass
class Directory:
    """Users, their memberships, and who holds which group where."""

    groups: dict[str, int]
    users: list[Row] = field(default_factory=list)
    memberships: list[Row] = field(default_factory=list)
    #: (group code, org unit id) → ids of the users holding that group there
    holders: dict[tuple[str, int], list[int]] = field(default_factory=dict)

    def add(self, rng: random.Random, unit: Unit, roles: Sequence[str], n: int, stamp: Stamp,
            created: datetime, password_hash: str) -> None:
        """Add one user at ``unit`` holding ``roles`` (named after the first role, the unit and ``n``)."""
        uid = len(self.users) + 1
        self.users.append((uid, f'{roles[0]}-{unit.code}-{n}', person_name(rng), password_hash, unit.id, True, 0,
                           stamp(created)))
        for role in roles:
            self.memberships.append((len(self.memberships) + 1, uid, self.groups[role], unit.id))
            self.holders.setdefault((role, unit.id), []).append(uid)


def fixed_user_count() -> int:
    """Users that are not township staff: township mediators, county roles, supervisors, designer, admin."""
    return TOWNSHIPS + COUNTIES * sum(COUNTY_ROLES.values()) + CITIES * CITY_SUPERVISORS + PROVINCE_SUPERVISORS + 2


def build_directory(units: Sequence[Unit], user_count: int, stamp: Stamp, created: datetime) -> Directory:
    """``user_count`` users: the fixed roles per unit, the rest township staff dealt over the townships."""
    from workflows.demo import GROUPS

    staff = user_count - fixed_user_count()
    if staff < TOWNSHIPS:
        raise SystemExit(f'--users must be at least {fixed_user_count() + TOWNSHIPS}')
    rng = random.Random(SEED)
    directory = Directory({code: i + 1 for i, code in enumerate(GROUPS)})
    password_hash = hash_password(PASSWORD)
    by_level = {level: [u for u in units if u.level == level] for level in ('province', 'city', 'county', 'township')}

    def add(unit: Unit, roles: Sequence[str], n: int) -> None:
        directory.add(rng, unit, roles, n, stamp, created, password_hash)

    province = by_level['province'][0]
    for n in range(1, PROVINCE_SUPERVISORS + 1):
        add(province, ('supervisor',), n)
    add(province, ('designer',), 1)
    add(province, ('admin',), 1)
    for city in by_level['city']:
        for n in range(1, CITY_SUPERVISORS + 1):
            add(city, ('supervisor',), n)
    for county in by_level['county']:
        for role, count in COUNTY_ROLES.items():
            for n in range(1, count + 1):
                add(county, (role, 'senior_mediator') if role == 'mediator' and n == 1 else (role,), n)
    for township in by_level['township']:
        add(township, ('township_mediator', 'village_mediator'), 1)
    for n, township in _spread(staff, by_level['township']):
        add(township, ('township_staff',), n)
    return directory


def person_name(rng: random.Random) -> str:
    """A plausible Chinese name: a surname and one or two given characters."""
    return rng.choice(SURNAMES) + ''.join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


# -- process definitions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class UserTaskSpec:
    """One user task of a deployed diagram, as its tasks appear in human_tasks."""

    bpmn_id: str
    title: str
    group: str
    priority: int
    form_key: str | None


@dataclass(frozen=True)
class Process:
    """A deployed process: its definition row and its user tasks."""

    key: str
    definition_id: int
    user_tasks: tuple[UserTaskSpec, ...]


_BPMN = '{http://www.omg.org/spec/BPMN/20100524/MODEL}'
_CAMUNDA = '{http://camunda.org/schema/1.0/bpmn}'


def user_tasks(source: str, key: str) -> tuple[UserTaskSpec, ...]:
    """The user tasks of process ``key`` in a BPMN source (in sub-processes too)."""
    root = ET.fromstring(source.encode())
    process = next(p for p in root.iter(f'{_BPMN}process') if p.get('id') == key)
    return tuple(UserTaskSpec(t.get('id') or '', (t.get('name') or '')[:200],
                              (t.get(f'{_CAMUNDA}candidateGroups') or 'township_staff').split(',')[0].strip(),
                              int(t.get(f'{_CAMUNDA}priority') or 0), t.get(f'{_CAMUNDA}formKey'))
                 for t in process.iter(f'{_BPMN}userTask'))


def deploy_definitions(url: str) -> dict[str, Process]:
    """Deploy the shipped diagrams through the engine and read back each process's user tasks."""
    from workflows.demo import deploy_shipped

    engine = create_db_engine(url, poolclass=NullPool)
    with create_session_factory(engine).begin() as session:
        deploy_shipped(session, progress=lambda _: None)
        rows = session.execute(sa.select(ProcessDefinition.key, ProcessDefinition.id, ProcessDefinition.source)
                               .where(ProcessDefinition.kind == 'bpmn')).all()
    engine.dispose()
    return {key: Process(key, def_id, user_tasks(source, key)) for key, def_id, source in rows}


# -- cases, instances and tasks -------------------------------------------------------------------------

class Picker:
    """Draws from a weighted table in O(log n)."""

    def __init__(self, weights: dict[Any, float]) -> None:
        self.values = list(weights)
        self.cumulative = list(itertools.accumulate(weights.values()))

    def __call__(self, rng: random.Random) -> Any:
        return self.values[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


@dataclass
class Batch:
    """Rows generated for a run of cases, written together."""

    cases: list[Row] = field(default_factory=list)
    instances: list[Row] = field(default_factory=list)
    tasks: list[Row] = field(default_factory=list)


class CaseGenerator:
    """Generates cases, their process instances and their human tasks, deterministically from the seed.

    :param reference: the instant the data is "now" for (overdue and due-soon are relative to it)
    :param stamp: turns a naive UTC datetime into what the backend's bulk path takes
    """

    def __init__(self, spec: DatasetSpec, units: Sequence[Unit], directory: Directory,
                 processes: dict[str, Process], reference: datetime, stamp: Stamp) -> None:
        self.spec, self.directory, self.processes, self.ref, self.stamp = spec, directory, processes, reference, stamp
        self.rng = random.Random(spec.seed)
        self.townships = [u for u in units if u.level == 'township']
        self.by_id = {u.id: u for u in units}
        self.kind, self.colour = Picker(CASE_KINDS), Picker(COLOURS)
        self.open_count, self.due = Picker(OPEN_TASKS), Picker(OPEN_DUE)
        self.escalation_level = Picker(ESCALATION_LEVELS)
        self.task_id = self.instance_id = 0

    def batches(self) -> Iterator[Batch]:
        """Cases until ``spec.tasks`` tasks exist, in batches of about CHUNK tasks."""
        batch, case_id = Batch(), 0
        while self.task_id < self.spec.tasks:
            case_id += 1
            self.add_case(batch, case_id)
            if len(batch.tasks) >= CHUNK:
                yield batch
                batch = Batch()
        yield batch

    def add_case(self, batch: Batch, case_id: int) -> None:
        """One case with its instances and tasks."""
        rng = self.rng
        kind, township, colour = self.kind(rng), rng.choice(self.townships), self.colour(rng)
        is_open = rng.random() < CASE_OPEN_SHARE
        days_ago = rng.uniform(20, 365) if is_open else rng.uniform(60, 3 * 365)
        created = self.ref - timedelta(days=days_ago)
        instances = [self.processes[kind]]
        if kind == 'corrections_reception':
            instances += [self.processes[rng.choice(REQUEST_KINDS)] for _ in range(rng.choice((0, 0, 1, 2)))]
        first_instance = self.instance_id + 1
        self.instance_id += len(instances)
        ctx = _CaseContext(case_id, township, colour, instances, first_instance)
        history = rng.choice(HISTORY_TASKS) if is_open else max(1, rng.choice(HISTORY_TASKS))
        when = created
        for _ in range(min(history, self.spec.tasks - self.task_id)):
            when = min(when + timedelta(days=rng.uniform(0.5, 10)), self.ref - timedelta(hours=2))
            when = self.add_history_task(batch, ctx, when)
        opened = self.open_count(rng) if is_open else 0
        for _ in range(min(opened, self.spec.tasks - self.task_id)):
            self.add_open_task(batch, ctx)
        closed = None if is_open else when
        batch.cases.append(self.case_row(case_id, kind, township, colour, created, closed))
        for offset, process in enumerate(instances):
            batch.instances.append((first_instance + offset, case_id, process.definition_id, offset == 0,
                                    'waiting' if is_open else 'completed', 1, '{}', '1', ctx.counts[offset],
                                    self.stamp(created), None if closed is None else self.stamp(closed)))

    def case_row(self, case_id: int, kind: str, township: Unit, colour: str | None, created: datetime,
                 closed: datetime | None) -> Row:
        """The ``cases`` row: number, public code, subject columns."""
        rng, local_year = self.rng, (created + timedelta(hours=8)).year
        name = person_name(rng)
        first17 = (f'{township.code[:6]}{rng.randrange(1950, 2005)}{rng.randrange(1, 13):02d}'
                   f'{rng.randrange(1, 29):02d}{rng.randrange(1000):03d}')
        return (case_id, f'{CASE_PREFIXES[kind]}-{local_year}-{case_id:06d}', f'{rng.getrandbits(96):024x}', kind,
                f'{name}（{kind}）', township.id, township.path, 'open' if closed is None else 'closed', colour,
                name, first17 + check_digit(first17), '{}', '{}', False, self.stamp(created),
                None if closed is None else self.stamp(closed))

    def _task_place(self, ctx: _CaseContext) -> tuple[int, Process, UserTaskSpec, Unit]:
        """Pick the instance and user task of a new task, and the unit it is handled at."""
        rng = self.rng
        index = 0 if len(ctx.instances) == 1 or rng.random() < 0.6 else rng.randrange(1, len(ctx.instances))
        process = ctx.instances[index]
        spec = rng.choice(process.user_tasks)
        unit = ctx.township if spec.group in TOWNSHIP_GROUPS else self.by_id[ctx.township.county_id]
        ctx.counts[index] += 1
        return ctx.first_instance + index, process, spec, unit

    def _base(self, ctx: _CaseContext, instance_id: int, process: Process, spec: UserTaskSpec,
              unit: Unit) -> list[Any]:
        """The columns every task has, up to and including ``form_key`` (status and people filled in later)."""
        self.task_id += 1
        raw = f'{self.rng.getrandbits(128):032x}'
        spiff_id = f'{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}'
        priority = spec.priority + {'red': 3, 'yellow': 2, 'green': 1}.get(ctx.colour or '', 0)
        return [self.task_id, instance_id, ctx.case_id, spiff_id, spec.bpmn_id, spec.title, spec.group, unit.id,
                unit.path, None, None, None, priority, process.key, ctx.colour, 'open', spec.form_key]

    def add_history_task(self, batch: Batch, ctx: _CaseContext, created: datetime) -> datetime:
        """A completed or cancelled task created at ``created``; returns when it finished."""
        rng = self.rng
        instance_id, process, spec, unit = self._task_place(ctx)
        row = self._base(ctx, instance_id, process, spec, unit)
        finished = min(created + timedelta(days=rng.uniform(0.05, 8)), self.ref - timedelta(hours=1))
        due = created + timedelta(days=10) if rng.random() < 0.85 else None
        holders = self.directory.holders.get((spec.group, unit.id))
        cancelled = rng.random() < CANCELLED_SHARE
        completer = None if cancelled or not holders else rng.choice(holders)
        row[9] = completer
        row[15] = 'cancelled' if cancelled else 'completed'
        row += [self._stamp(due), _due_rule(due), self.stamp(created), self.stamp(finished), completer,
                False, None, None, None, None]
        batch.tasks.append(tuple(row))
        return finished

    def add_open_task(self, batch: Batch, ctx: _CaseContext) -> None:
        """An open task: maybe assigned (rarely delegated), maybe overdue (and then often escalated)."""
        rng = self.rng
        instance_id, process, spec, unit = self._task_place(ctx)
        row = self._base(ctx, instance_id, process, spec, unit)
        holders = self.directory.holders.get((spec.group, unit.id))
        if holders and rng.random() < ASSIGNED_SHARE:
            row[9] = rng.choice(holders)
            if len(holders) > 1 and rng.random() < DELEGATED_SHARE:
                row[10], row[11] = row[9], 'pending'
                row[9] = rng.choice([h for h in holders if h != row[10]])
        created = self.ref - timedelta(days=rng.uniform(0.01, 20))
        due = self._open_due()
        escalated = due is not None and due < self.ref and rng.random() < ESCALATED_SHARE
        target = self._escalation_unit(unit) if escalated else None
        row += [self._stamp(due), _due_rule(due), self.stamp(created), None, None, escalated,
                self._stamp(due) if escalated else None, 'supervisor' if escalated else None, target,
                self.by_id[target].path if target is not None else None]
        batch.tasks.append(tuple(row))

    def _open_due(self) -> datetime | None:
        rng, kind = self.rng, self.due(self.rng)
        if kind == 'none':
            return None
        hours = {'overdue': (-30 * 24, -1), 'due_soon': (1, 3 * 24 - 1), 'later': (3 * 24 + 1, 60 * 24)}[kind]
        return self.ref + timedelta(hours=rng.uniform(*hours))

    def _escalation_unit(self, unit: Unit) -> int:
        level = self.escalation_level(self.rng)
        county = self.by_id[unit.county_id]
        return {'county': county.id, 'city': county.city_id, 'province': 1}[level]

    def _stamp(self, value: datetime | None) -> Any:
        return None if value is None else self.stamp(value)


@dataclass
class _CaseContext:
    case_id: int
    township: Unit
    colour: str | None
    instances: list[Process]
    first_instance: int
    counts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.instances)


def _due_rule(due: datetime | None) -> str | None:
    """A due rule record of the size the engine stores (what the list reads back with each row)."""
    if due is None:
        return None
    start = (due - timedelta(days=14)).date().isoformat()
    return ('{"kind": "period", "length": 10, "unit": "working_days", "start": "' + start + '", '
            '"from_label": "收到委托函", "basis": "社区矫正法实施办法 §14", "reminders": ["-P2D", "-P1D"], '
            '"escalate": {"to": "supervisor", "level": "same"}}')


# -- bulk loading ---------------------------------------------------------------------------------------

class BulkLoader:
    """Writes rows fast: secondary indexes dropped during the load and rebuilt after, constraints not checked."""

    def __init__(self, connection: Any) -> None:
        self.conn = connection
        self.indexes: list[str] = []

    def stamp(self, value: datetime) -> Any:
        """A naive UTC datetime as this backend's bulk path takes it."""
        return value

    def write(self, table: str, rows: Sequence[Row]) -> None:
        """Insert ``rows`` (in ``COLUMNS[table]`` order)."""
        raise NotImplementedError

    def finish(self) -> None:
        """Rebuild the indexes and gather statistics."""
        raise NotImplementedError


class SqliteLoader(BulkLoader):
    """``executemany`` in large transactions, ``synchronous=OFF`` and no foreign keys during the load."""

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        for pragma in ('foreign_keys=OFF', 'synchronous=OFF', 'cache_size=-500000'):
            connection.execute(f'PRAGMA {pragma}')
        placeholders = ', '.join('?' * len(BULK_TABLES))
        rows = connection.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                                  f'AND tbl_name IN ({placeholders})', BULK_TABLES).fetchall()
        self.indexes = [sql for _, sql in rows]
        for name, _ in rows:
            connection.execute(f'DROP INDEX {name}')

    def stamp(self, value: datetime) -> Any:
        # SQLAlchemy's SQLite DateTime format: comparisons are on these strings
        return f'{value:%Y-%m-%d %H:%M:%S.%f}'

    def write(self, table: str, rows: Sequence[Row]) -> None:
        columns = COLUMNS[table]
        self.conn.execute('BEGIN')
        self.conn.executemany(f'INSERT INTO {table} ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})',
                              rows)
        self.conn.execute('COMMIT')

    def finish(self) -> None:
        for sql in self.indexes:
            self.conn.execute(sql)
        self.conn.execute('ANALYZE')
        self.conn.execute('PRAGMA wal_checkpoint(TRUNCATE)')


class PostgresLoader(BulkLoader):
    """``COPY`` with triggers (foreign keys) off; VACUUM ANALYZE after, as autovacuum would leave the tables."""

    def __init__(self, connection: Any) -> None:
        super().__init__(connection)
        connection.autocommit = True
        connection.execute("SET session_replication_role = 'replica'")
        connection.execute("SET maintenance_work_mem = '1GB'")
        rows = connection.execute(
            'SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() '
            'AND i.tablename = ANY(%s) AND NOT EXISTS (SELECT 1 FROM pg_constraint c '
            'WHERE c.conindid = (quote_ident(i.schemaname) || \'.\' || quote_ident(i.indexname))::regclass)',
            (list(BULK_TABLES),)).fetchall()
        self.indexes = [definition for _, definition in rows]
        for name, _ in rows:
            connection.execute(f'DROP INDEX {name}')

    def write(self, table: str, rows: Sequence[Row]) -> None:
        sql = f'COPY {table} ({", ".join(COLUMNS[table])}) FROM STDIN'
        with self.conn.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)

    def finish(self) -> None:
        for definition in self.indexes:
            self.conn.execute(definition)
        for table in (*BULK_TABLES, 'groups'):
            self.conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                              f'(SELECT coalesce(max(id), 1) FROM {table}))')
        self.conn.execute("SET session_replication_role = 'origin'")
        self.conn.execute('VACUUM (ANALYZE)')


@contextmanager
def bulk_loader(url: str) -> Iterator[BulkLoader]:
    """A loader on a raw DBAPI connection to ``url``; indexes come back when the block ends."""
    engine = sa.create_engine(url, poolclass=NullPool)
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        if url.startswith('sqlite'):
            driver.isolation_level = None
        loader: BulkLoader = SqliteLoader(driver) if url.startswith('sqlite') else PostgresLoader(driver)
        yield loader
        loader.finish()
    finally:
        raw.close()
        engine.dispose()


# -- the cached dataset ---------------------------------------------------------------------------------

marker_metadata = sa.MetaData()
marker = sa.Table('bench_tasklist_dataset', marker_metadata,
                  sa.Column('spec', sa.Text, nullable=False),
                  sa.Column('reference', sa.String(40), nullable=False),
                  sa.Column('load_seconds', sa.Float, nullable=False),
                  sa.Column('migrations', sa.Text, nullable=True))


@dataclass(frozen=True)
class Dataset:
    """A loaded database: where it is, the instant its data is "now" for, and how long loading took."""

    backend: str
    url: str
    reference: datetime
    load_seconds: float
    reused: bool


def migration_hashes() -> dict[str, str]:
    """Each migration file's SHA-256: a cached copy stays usable only while the files it ran are unchanged."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted((ROOT / 'migrations' / 'versions').glob('*.py'))}


def cached_dataset(backend: str, spec: DatasetSpec) -> tuple[Dataset | None, str]:
    """The database of ``spec`` on ``backend`` if a complete one is there, else None and why not."""
    url = spec.url(backend)
    if backend == 'sqlite' and not Path(url.removeprefix('sqlite:///')).exists():
        return None, 'no cached copy'
    if backend == 'postgresql':
        create_postgres_database(url)
    engine = create_db_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(marker.name):
                return None, 'no cached copy'
            if 'migrations' not in {c['name'] for c in sa.inspect(conn).get_columns(marker.name)}:
                return None, 'the cached copy predates the record of its migrations'
            row = conn.execute(sa.select(marker).where(marker.c.spec == spec.key())).first()
    finally:
        engine.dispose()
    if row is None:
        return None, 'no cached copy of these parameters'
    current = migration_hashes()
    changed = sorted(name for name, digest in json.loads(row.migrations or '{}').items() if current.get(name) != digest)
    if changed or not row.migrations:
        return None, f'migrations edited since the data was loaded: {", ".join(changed) or "unknown"}'
    return Dataset(backend, url, datetime.fromisoformat(row.reference), row.load_seconds, reused=True), ''


def refresh(data: Dataset) -> str:
    """Bring a cached copy to head (new migrations apply to it); return what makes it unusable, if anything."""
    before = schema_revision(data.url)
    migrate(data.url)
    if schema_revision(data.url) != before:
        analyze(data.url)
    missing, extra = index_drift(data.url)
    if missing or extra:
        return f'its indexes differ from the migrations\' (missing {missing}, extra {extra})'
    engine = create_db_engine(data.url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(marker.update().values(migrations=json.dumps(migration_hashes())))
    engine.dispose()
    return ''


#: by backend: the migrations create some indexes on PostgreSQL only
_reference_indexes: dict[str, dict[str, set[str]]] = {}


def index_drift(url: str) -> tuple[list[str], list[str]]:
    """The ``ix_`` indexes of the bulk tables that the migrations create on ``url``'s backend but ``url`` lacks,
    and the other way round (an index added by hand to try something)."""
    backend = sa.engine.make_url(url).get_backend_name()
    if backend not in _reference_indexes:
        _reference_indexes[backend] = _indexes(fresh_database(backend))
    reference, found = _reference_indexes[backend], _indexes(url)
    missing = sorted(n for t in BULK_TABLES for n in reference[t] - found[t])
    extra = sorted(n for t in BULK_TABLES for n in found[t] - reference[t])
    return missing, extra


def _indexes(url: str) -> dict[str, set[str]]:
    engine = create_db_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        names = {table: {str(i['name']) for i in inspector.get_indexes(table) if str(i['name']).startswith('ix_')}
                 for table in BULK_TABLES}
    engine.dispose()
    return names


def build_dataset(backend: str, spec: DatasetSpec) -> Dataset:
    """Generate and load ``spec`` on ``backend`` into a fresh database migrated to head."""
    started = time.perf_counter()
    url = spec.url(backend)
    if backend == 'sqlite':
        SQLITE_DIR.mkdir(parents=True, exist_ok=True)
        for suffix in ('', '-wal', '-shm'):
            Path(url.removeprefix('sqlite:///') + suffix).unlink(missing_ok=True)
    else:
        create_postgres_database(url, drop=True)
    migrate(url)
    processes = deploy_definitions(url)
    reference = datetime.now(UTC).replace(second=0, microsecond=0, tzinfo=None)
    with bulk_loader(url) as loader:
        _load(loader, spec, processes, reference)
    seconds = time.perf_counter() - started
    engine = create_db_engine(url, poolclass=NullPool)
    marker_metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(marker.delete())
        conn.execute(marker.insert().values(spec=spec.key(), reference=reference.isoformat(), load_seconds=seconds,
                                            migrations=json.dumps(migration_hashes())))
    engine.dispose()
    return Dataset(backend, url, reference, seconds, reused=False)


def _load(loader: BulkLoader, spec: DatasetSpec, processes: dict[str, Process], reference: datetime) -> None:
    """Write the org tree, the directory, then the cases, instances and tasks batch by batch."""
    created = reference - timedelta(days=4 * 365)
    units = build_units()
    directory = build_directory(units, spec.users, loader.stamp, created)
    loader.write('org_units', unit_rows(units, loader.stamp, created))
    # the migrations seed the 三员 groups; the directory writes every group, those too, with its own ids
    loader.conn.execute('DELETE FROM groups')
    loader.write('groups', [(gid, code, code) for code, gid in directory.groups.items()])
    loader.write('users', directory.users)
    loader.write('memberships', directory.memberships)
    generator = CaseGenerator(spec, units, directory, processes, reference, loader.stamp)
    for batch in generator.batches():
        loader.write('cases', batch.cases)
        loader.write('process_instances', batch.instances)
        loader.write('human_tasks', batch.tasks)
        print(f'  … {generator.task_id:,} tasks', end='\r', flush=True)
    print()


def dataset(backend: str, spec: DatasetSpec, *, rebuild: bool) -> Dataset:
    """The cached database of ``spec`` on ``backend``, migrated to head; generated first if missing or stale."""
    reason = 'asked to rebuild'
    if not rebuild:
        found, reason = cached_dataset(backend, spec)
        if found is not None:
            reason = refresh(found)
            if not reason:
                return found
    print(f'Generating {spec.tasks:,} tasks and {spec.users:,} users on {backend} ({reason}) …', flush=True)
    return build_dataset(backend, spec)


def schema_revision(url: str) -> str | None:
    """The Alembic revision the database at ``url`` is at."""
    engine = create_db_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        revision = conn.execute(sa.text('SELECT version_num FROM alembic_version')).scalar()
    engine.dispose()
    return revision


def analyze(url: str) -> None:
    """Gather the planner's statistics again (after a migration added indexes to the cached data)."""
    engine = create_db_engine(url, poolclass=NullPool, isolation_level='AUTOCOMMIT')
    with engine.connect() as conn:
        conn.execute(sa.text('ANALYZE'))
    engine.dispose()


def describe_mix(url: str, reference: datetime) -> list[str]:
    """The generated data as counted in the database (so the report states what was measured)."""
    sql = {
        'org units': 'SELECT count(*) FROM org_units',
        'users': 'SELECT count(*) FROM users',
        'memberships': 'SELECT count(*) FROM memberships',
        'cases (open)': "SELECT count(*), sum(CASE WHEN status = 'open' THEN 1 ELSE 0 END) FROM cases",
        'process instances': 'SELECT count(*) FROM process_instances',
        'tasks': 'SELECT count(*) FROM human_tasks',
        'tasks by status': 'SELECT status, count(*) FROM human_tasks GROUP BY status ORDER BY status',
        'open: assigned / delegated / in a group queue': (
            "SELECT sum(CASE WHEN assignee_id IS NOT NULL THEN 1 ELSE 0 END), "
            "sum(CASE WHEN delegation_state = 'pending' THEN 1 ELSE 0 END), "
            "sum(CASE WHEN assignee_id IS NULL THEN 1 ELSE 0 END) FROM human_tasks WHERE status = 'open'"),
        'open: overdue / due in 3 days / no due date / escalated': (
            "SELECT sum(CASE WHEN due_dt < :now THEN 1 ELSE 0 END), "
            "sum(CASE WHEN due_dt >= :now AND due_dt < :soon THEN 1 ELSE 0 END), "
            "sum(CASE WHEN due_dt IS NULL THEN 1 ELSE 0 END), "
            "sum(CASE WHEN is_escalated THEN 1 ELSE 0 END) FROM human_tasks WHERE status = 'open'"),
        'open by colour': ("SELECT coalesce(risk_colour, '-'), count(*) FROM human_tasks WHERE status = 'open' "
                           'GROUP BY risk_colour ORDER BY 2 DESC'),
        'open by candidate group': ("SELECT candidate_group, count(*) FROM human_tasks WHERE status = 'open' "
                                    'GROUP BY candidate_group ORDER BY 2 DESC'),
    }
    engine = create_db_engine(url, poolclass=NullPool)
    now = reference.replace(tzinfo=UTC)
    times = {'now': now, 'soon': now + timedelta(days=3)}
    lines = []
    with engine.connect() as conn:
        for label, query in sql.items():
            names = [name for name in times if f':{name}' in query]
            stmt = sa.text(query).bindparams(*(sa.bindparam(name, type_=UTCDateTime()) for name in names))
            rows = conn.execute(stmt, {name: times[name] for name in names}).all()
            lines.append(f'{label}: ' + '; '.join(', '.join(f'{v:,}' if isinstance(v, int) else str(v) for v in r)
                                                  for r in rows))
    engine.dispose()
    return lines


# -- what is measured -----------------------------------------------------------------------------------

def representatives() -> list[tuple[str, str]]:
    """The five users measured, by label and username (first township, county and city of the tree)."""
    units = build_units()
    first = {level: next(u for u in units if u.level == level) for level in ('township', 'county', 'city')}
    return [('township staff', f'township_staff-{first["township"].code}-1'),
            ('county officer', f'county_officer-{first["county"].code}-1'),
            ('county supervisor', f'supervisor-{first["county"].code}-1'),
            ('city supervisor', f'supervisor-{first["city"].code}-1'),
            ('province supervisor', 'supervisor-430000-1')]


@dataclass
class Scenario:
    """One request shape: a user, a view, filters, a sort, maybe a cursor; and what the engine returns for it."""

    user: str
    view: str
    variant: str
    params: dict[str, str]
    statements: list[Any]
    expected_ids: list[int]
    count: int


@dataclass
class Result:
    """A scenario's timings on one backend."""

    backend: str
    scenario: Scenario
    bare: Timing
    page: Timing | None
    page_note: str
    api: Timing | None
    api_note: str

    def ratio(self, timing: Timing | None, p: float) -> float | None:
        """``timing``'s p-th percentile over the bare query's."""
        return None if timing is None else timing.pct(p) / self.bare.pct(p)

    @property
    def flagged(self) -> bool:
        """Over 50 ms at p95, or over 3× the bare query at p95."""
        for timing in (self.page, self.api):
            if timing is not None and (timing.pct(95) > P95_TARGET_MS
                                       or (self.ratio(timing, 95) or 0) > RATIO_TARGET):
                return True
        return self.bare.pct(95) > P95_TARGET_MS


def engine_call(session: Session, scope: Scope, view: str, task_filter: TaskFilter | None, sort: str,
                cursor: str | None) -> tuple[list[int], str | None, int, list[Any]]:
    """Run the engine's list and count for one request; return ids, next cursor, count and the statements run."""
    captured: list[Any] = []

    def capture(state: ORMExecuteState) -> None:
        captured.append(state.statement)

    event.listen(session, 'do_orm_execute', capture)
    try:
        page = list_tasks(session, scope, view, task_filter=task_filter, sort=sort, cursor=cursor)
        count = count_tasks(session, scope, view, task_filter=task_filter)
    finally:
        event.remove(session, 'do_orm_execute', capture)
    return [task.id for task in page.items], page.next_cursor, count, captured


def plan_scenarios(session: Session, label: str, user: User) -> list[Scenario]:
    """Every view (and its second page), plus the typical filters and the priority sort on ``all``."""
    scope = load_scope(session, user)
    scenarios = []
    for view in VIEWS:
        ids, cursor, count, statements = engine_call(session, scope, view, None, 'due', None)
        scenarios.append(Scenario(label, view, '', {'view': view}, statements, ids, count))
        if cursor:
            ids2, _, count, statements = engine_call(session, scope, view, None, 'due', cursor)
            scenarios.append(Scenario(label, view, 'page 2', {'view': view, 'cursor': cursor}, statements, ids2,
                                      count))
    for variant, task_filter, sort in _filters(session, scope):
        ids, _, count, statements = engine_call(session, scope, 'all', task_filter, sort, None)
        params = {'view': 'all', **(task_filter.to_dict() if task_filter else {})}
        if sort != 'due':
            params['sort'] = sort
        scenarios.append(Scenario(label, 'all', variant, params, statements, ids, count))
    return scenarios


def _filters(session: Session, scope: Scope) -> list[tuple[str, TaskFilter | None, str]]:
    """Red only; a case number's first twelve characters (up to 100 cases); a name's first two characters;
    an exact ID number; no filter but sorted by priority. The text comes from a task the user sees."""
    ids, _, _, _ = engine_call(session, scope, 'all', None, 'due', None)
    filters: list[tuple[str, TaskFilter | None, str]] = [('red', TaskFilter(risk_colour='red'), 'due')]
    if ids:
        case = session.scalars(sa.select(Case).join(HumanTask, HumanTask.case_id == Case.id)
                               .where(HumanTask.id == ids[len(ids) // 2])).one()
        filters += [('number prefix', TaskFilter(text=case.number[:12]), 'due'),
                    ('name prefix', TaskFilter(text=(case.person_name or '')[:2]), 'due'),
                    ('ID number', TaskFilter(text=case.id_number), 'due')]
    filters.append(('sort priority', None, 'priority'))
    return filters


# -- timing ---------------------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_TASK_LINK = re.compile(r'href="/tasks/(\d+)"')


def log_in(client: FlaskClient, username: str) -> dict[str, str]:
    """Log ``client`` in (a session cookie) and return bearer-token headers for the same user."""
    html = client.get('/login').get_data(as_text=True)
    match = _CSRF.search(html)
    if match is None:
        raise RuntimeError('no CSRF token on /login')
    response = client.post('/login', data={'username': username, 'password': PASSWORD,
                                           'csrf_token': match.group(1) or match.group(2)})
    if response.status_code != 302:
        raise RuntimeError(f'login of {username} failed: {response.status_code}')
    response = client.post('/api/v1/auth/token', json={'username': username, 'password': PASSWORD})
    if response.status_code != 200:
        raise RuntimeError(f'token for {username}: {response.status_code}')
    return {'Authorization': f'Bearer {response.get_json()["token"]}'}


def _page_ids(html: str) -> list[int]:
    return list(dict.fromkeys(int(i) for i in _TASK_LINK.findall(html)))


def api_params(params: dict[str, str]) -> dict[str, str]:
    """The API's names for the page's query parameters: the text search is ``q`` there."""
    return {('q' if key == 'text' else key): value for key, value in params.items()}


def http_get(client: FlaskClient, path: str, scenario: Scenario,
             headers: dict[str, str] | None) -> tuple[Callable[[int], None] | None, str]:
    """A GET of ``path`` for ``scenario`` to time, or None and why not; the note also says if the answer holds
    other rows than the engine returns for the same arguments (a parameter the endpoint ignores)."""
    params = api_params(scenario.params) if path.startswith('/api') else scenario.params
    if not path.startswith('/api') and looks_like_id_number(params.get('text')):
        return _post_search(client, path, params, scenario)
    first = client.get(path, query_string=params, headers=headers)
    if first.status_code != 200:
        return None, f'HTTP {first.status_code}'
    if path.startswith('/api'):
        served = [item['id'] for item in first.get_json()['items']]
    else:
        served = _page_ids(first.get_data(as_text=True))
    note = '' if served == scenario.expected_ids else 'other rows'

    def get(_: int) -> None:
        response = client.get(path, query_string=params, headers=headers)
        response.get_data()
        if response.status_code != 200:
            raise RuntimeError(f'{path} {scenario.params}: HTTP {response.status_code}')

    return get, note


def _post_search(client: FlaskClient, path: str, params: dict[str, str],
                 scenario: Scenario) -> tuple[Callable[[int], None] | None, str]:
    """The page's ID-number search, which the filter bar POSTs (an ID number never goes into a URL)."""
    match = _CSRF.search(client.get(path).get_data(as_text=True))
    if match is None:
        return None, 'no CSRF token on the page'
    form = {**params, 'csrf_token': match.group(1) or match.group(2)}
    first = client.post(path, data=form)
    if first.status_code != 200:
        return None, f'HTTP {first.status_code}'
    note = '' if _page_ids(first.get_data(as_text=True)) == scenario.expected_ids else 'other rows'

    def post(_: int) -> None:
        response = client.post(path, data=form)
        response.get_data()
        if response.status_code != 200:
            raise RuntimeError(f'POST {path} {scenario.params}: HTTP {response.status_code}')

    return post, note


def bare_run(conn: Connection, scenario: Scenario) -> Callable[[int], None]:
    """The scenario's statements on a Core connection, all rows fetched, one transaction per call."""
    def run(_: int) -> None:
        for statement in scenario.statements:
            conn.execute(statement).all()
        conn.rollback()

    return run


@dataclass(frozen=True)
class Sampling:
    """How many times to call each operation: ``samples`` rounds after ``warmup``, unless a round is so slow
    that they would take more than ``budget`` seconds; then as many as fit, but never fewer than MIN_SAMPLES."""

    samples: int
    warmup: int
    budget: float

    def rounds(self, round_seconds: float) -> int:
        """The number of rounds to time, given how long one took."""
        if round_seconds * self.samples <= self.budget:
            return self.samples
        return max(min(MIN_SAMPLES, self.samples), int(self.budget / round_seconds))


def time_scenario(backend: str, client: FlaskClient, headers: dict[str, str], conn: Connection,
                  scenario: Scenario, sampling: Sampling) -> Result:
    """Page, API and bare query, interleaved call by call after the warm-up rounds."""
    page, page_note = http_get(client, '/tasks', scenario, None)
    api, api_note = http_get(client, '/api/v1/tasks', scenario, headers)
    operations = {'bare': bare_run(conn, scenario)}
    operations.update({name: op for name, op in (('page', page), ('api', api)) if op is not None})
    probe = measure_interleaved(operations, max(1, sampling.warmup))
    rounds = sampling.rounds(sum(timing.wall[-1] for timing in probe.values()))
    timings = measure_interleaved(operations, rounds)
    return Result(backend, scenario, timings['bare'], timings.get('page'), page_note, timings.get('api'), api_note)


def measure_backend(data: Dataset, sampling: Sampling, only: set[str] | None) -> list[Result]:
    """Every scenario of every representative user on one backend."""
    from web.app import create_app
    from web.core.collector import settle_collector

    set_clock(FrozenClock(data.reference.replace(tzinfo=UTC)))
    app = create_app(TestConfig(data.url))
    settle_collector()  # as each gunicorn worker does once the app is loaded (deploy/gunicorn.conf.py)
    bare_engine = create_db_engine(data.url)
    factory = create_session_factory(bare_engine)
    results = []
    with bare_engine.connect() as conn:
        for label, username in representatives():
            if only and label not in only:
                continue
            client = app.test_client()
            headers = log_in(client, username)
            with factory() as session:
                user = session.scalars(sa.select(User).where(User.username == username)).one()
                scenarios = plan_scenarios(session, label, user)
            for scenario in scenarios:
                results.append(time_scenario(data.backend, client, headers, conn, scenario, sampling))
                print_row(results[-1])
    bare_engine.dispose()
    app.extensions['fengqiao_db_engine'].dispose()
    return results


# -- the report -----------------------------------------------------------------------------------------

HEADER = (f'{"backend":10} {"user":19} {"view":9} {"variant":13} {"rows":>9} {"n":>3} | {"page p50":>8} {"p95":>6} '
          f'{"cpu":>6} | {"api p50":>7} {"p95":>6} {"cpu":>6} | {"bare p50":>8} {"p95":>6} | '
          f'{"page/bare":>9} {"api/bare":>8}  note')


def _ms(timing: Timing | None, p: float) -> str:
    return '—' if timing is None else f'{timing.pct(p):.1f}'


def _cpu(timing: Timing | None) -> str:
    return '—' if timing is None else f'{timing.mean_cpu_ms:.1f}'


def _ratio(value: float | None) -> str:
    return '—' if value is None else f'{value:.1f}×'


def print_row(r: Result) -> None:
    """One line: timings in ms (p50, p95, mean CPU), ratios of p95 over the bare p95, notes."""
    s = r.scenario
    rows = f'{len(s.expected_ids)}/{s.count if s.count <= 1000 else "1000+"}'
    notes = [n for n in (f'page: {r.page_note}' if r.page_note else '', f'api: {r.api_note}' if r.api_note else '')
             if n]
    flag = '  !' if r.flagged else ''
    timings = (f'{_ms(r.page, 50):>8} {_ms(r.page, 95):>6} {_cpu(r.page):>6} | '
               f'{_ms(r.api, 50):>7} {_ms(r.api, 95):>6} {_cpu(r.api):>6} | {_ms(r.bare, 50):>8} {_ms(r.bare, 95):>6}')
    ratios = f'{_ratio(r.ratio(r.page, 95)):>9} {_ratio(r.ratio(r.api, 95)):>8}'
    print(f'{r.backend:10} {s.user:19} {s.view:9} {s.variant:13} {rows:>9} {len(r.bare.wall):>3} | {timings} | '
          f'{ratios}{flag}  {"; ".join(notes)}', flush=True)


def print_table(title: str, results: Sequence[Result]) -> None:
    """The whole table for one run."""
    print(f'\n{title}\n{HEADER}')
    for result in results:
        print_row(result)
    flagged = sum(r.flagged for r in results)
    print(f'{flagged} of {len(results)} rows flagged (!): p95 over {P95_TARGET_MS:.0f} ms or over '
          f'{RATIO_TARGET:.0f}× the bare query')


_COLUMN_LIST = re.compile(r'SELECT human_tasks\.id, .*?\sFROM', re.S)


def _short_sql(sql: str) -> str:
    return ' '.join(_COLUMN_LIST.sub('SELECT human_tasks.* FROM', sql).split())


def explain(data: Dataset, results: Sequence[Result], limit: int) -> None:
    """The plans of the slowest bare statements of the flagged rows: each statement of each flagged row is run
    once and timed, and the ``limit`` slowest distinct ones are explained."""
    engine = create_db_engine(data.url)
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        captured.append((statement, parameters))

    event.listen(engine, 'before_cursor_execute', capture)
    timed: dict[str, tuple[float, Result, str, Any]] = {}
    with engine.connect() as conn:
        for result in (r for r in results if r.flagged):
            for statement in result.scenario.statements:
                captured.clear()
                started = time.perf_counter()
                conn.execute(statement).all()
                ms = (time.perf_counter() - started) * 1000
                sql, parameters = captured[-1]
                key = f'{_short_sql(sql)} {parameters}'
                if key not in timed or timed[key][0] < ms:
                    timed[key] = (ms, result, sql, parameters)
            conn.rollback()
        for ms, result, sql, parameters in sorted(timed.values(), key=lambda t: -t[0])[:limit]:
            _print_plan(conn, result, sql, parameters, ms)
    engine.dispose()


def _print_plan(conn: Connection, result: Result, sql: str, parameters: Any, ms: float) -> None:
    s = result.scenario
    prefix = 'EXPLAIN QUERY PLAN ' if result.backend == 'sqlite' else 'EXPLAIN (ANALYZE, BUFFERS) '
    print(f'\n--- {result.backend} / {s.user} / {s.view} {s.variant}: {ms:.1f} ms once '
          f'(the row\'s bare p95 {result.bare.pct(95):.1f} ms)')
    print(_short_sql(sql))
    print(f'params: {parameters}')
    for row in conn.exec_driver_sql(prefix + sql, parameters).all():
        # SQLite: (id, parent, notused, detail); PostgreSQL: one line of text
        print(f'  {row[0]:>3} {row[1]:>3} {row[3]}' if result.backend == 'sqlite' else f'  {row[0]}')
    conn.rollback()


def trace_page(data: Dataset, result: Result, headers: dict[str, str] | None = None) -> list[tuple[float, str]]:
    """Time each statement of one page request (the slowest first): where the page's time goes."""
    from web.app import create_app

    app = create_app(TestConfig(data.url))
    timings: list[tuple[float, str]] = []
    starts: list[float] = []
    engine: Engine = app.extensions['fengqiao_db_engine']
    event.listen(engine, 'before_cursor_execute', lambda *args: starts.append(time.perf_counter()))
    event.listen(engine, 'after_cursor_execute',
                 lambda c, cur, sql, *rest: timings.append(((time.perf_counter() - starts.pop()) * 1000,
                                                            _short_sql(sql))))
    client = app.test_client()
    username = dict(representatives())[result.scenario.user]
    log_in(client, username)
    client.get('/tasks', query_string=result.scenario.params)
    timings.clear()
    client.get('/tasks', query_string=result.scenario.params)
    engine.dispose()
    return sorted(timings, reverse=True)


def slowest_pages(results: Sequence[Result], count: int) -> list[Result]:
    """The flagged rows with the slowest pages, one per user."""
    by_user: dict[str, Result] = {}
    for result in results:
        if result.flagged and result.page is not None:
            best = by_user.get(result.scenario.user)
            if best is None or best.page is None or best.page.pct(50) < result.page.pct(50):
                by_user[result.scenario.user] = result
    return sorted(by_user.values(), key=lambda r: -(r.page.pct(50) if r.page else 0))[:count]


def code_state() -> str:
    """The commit measured and how many files of the working tree differ from it (others edit it meanwhile)."""
    def git(*args: str) -> str:
        return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    changed = [line for line in git('status', '--porcelain', '--', 'engine', 'web').splitlines() if line]
    return f'commit {git("rev-parse", "--short", "HEAD")} + {len(changed)} changed files under engine/ and web/'


def _worst(results: Sequence[Result], which: str) -> Result | None:
    """The result whose page (or API) answer is slowest at p95."""
    timed = [r for r in results if getattr(r, which) is not None]
    return max(timed, key=lambda r: getattr(r, which).pct(95)) if timed else None


def run(options: Options) -> list[SuiteRow]:
    """The suite's rows: per backend and task count, the slowest scenario's page and API p95 against the same
    scenario's bare query p95; growth over the task counts (10,000 users throughout). --quick: the county
    officer only, 10 rounds."""
    import workflows

    workflows.register()
    configure_hashing(time_cost=1, memory_cost=1024)
    sizes = options.sizes_for('tasklist', [1_000, 10_000], [1_000, 10_000, 100_000, 1_000_000])
    sampling = Sampling(10, 2, 10.0) if options.quick else Sampling(50, 5, 120.0)
    only = {'county officer'} if options.quick else None
    who = 'county officer' if options.quick else '5 users'
    previous = get_clock()
    rows: list[SuiteRow] = []
    try:
        for backend in ('sqlite', 'postgresql') if options.postgres else ('sqlite',):
            series: dict[str, list[tuple[int, SuiteRow]]] = {'page': [], 'api': []}
            for tasks in sizes:
                data = dataset(backend, DatasetSpec(tasks, 10_000), rebuild=False)
                results = measure_backend(data, sampling, only)
                for which in series:
                    worst = _worst(results, which)
                    if worst is None:
                        continue
                    timing, s = getattr(worst, which), worst.scenario
                    series[which].append((tasks, SuiteRow(
                        f'to-do {which} p95, {backend}, {tasks:,} tasks, slowest of {len(results)} ({who}): '
                        f'{s.view} {s.variant}'.rstrip(), timing.pct(95), 'ms', 'bare query p95, same request',
                        worst.bare.pct(95), ratio(timing.pct(95), worst.bare.pct(95)), '≤ 50 ms, ≤ 3×')))
            for points in series.values():
                rows += with_growth(points)
    finally:
        set_clock(previous)
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--tasks', type=int, default=1_000_000)
    parser.add_argument('--users', type=int, default=10_000)
    parser.add_argument('--backend', choices=('sqlite', 'postgresql', 'both'), default='both')
    parser.add_argument('--samples', type=int, default=50)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--budget', type=float, default=120.0, metavar='SECONDS',
                        help=f'time per row before its samples are cut (never below {MIN_SAMPLES})')
    parser.add_argument('--rebuild', action='store_true', help='regenerate the data even if a cached copy matches')
    parser.add_argument('--only', nargs='*', help='user labels to measure (default: all five)')
    parser.add_argument('--explain', type=int, default=0, metavar='N',
                        help='print the plans of up to N distinct statements of flagged rows')
    args = parser.parse_args(argv)
    import workflows

    workflows.register()
    configure_hashing(time_cost=1, memory_cost=1024)
    spec = DatasetSpec(args.tasks, args.users)
    backends = ('sqlite', 'postgresql') if args.backend == 'both' else (args.backend,)
    for backend in backends:
        data = dataset(backend, spec, rebuild=args.rebuild)
        print(f'\n{backend}: {spec.tasks:,} tasks, {spec.users:,} users — load {data.load_seconds:.0f} s'
              f'{" (cached copy reused)" if data.reused else ""}; '
              f'data is "now" for {data.reference:%Y-%m-%d %H:%M} UTC')
        for line in describe_mix(data.url, data.reference):
            print(f'  {line}')
        print(f'  code: {code_state()}')
        print(f'  load average before: {"/".join(f"{x:.1f}" for x in os.getloadavg())} on {os.cpu_count()} cores')
        print(f'\n{HEADER}')
        results = measure_backend(data, Sampling(args.samples, args.warmup, args.budget),
                                  set(args.only) if args.only else None)
        print_table(f'To-do list on {backend}, {spec.tasks:,} tasks, {spec.users:,} users; ms per request, '
                    f'n rounds of page, api and bare interleaved ({args.samples} unless over the '
                    f'{args.budget:.0f} s budget) after {args.warmup} warm-up; ratios are p95 over the bare p95',
                    results)
        print(f'load average after: {"/".join(f"{x:.1f}" for x in os.getloadavg())}')
        if args.explain:
            explain(data, results, args.explain)
            for result in slowest_pages(results, max(1, args.explain // 4)):
                print(f'\n--- page statements, {backend} / {result.scenario.user} / {result.scenario.view} '
                      f'{result.scenario.variant}:')
                for ms, sql in trace_page(data, result)[:6]:
                    print(f'  {ms:7.2f} ms  {sql[:220]}')


if __name__ == '__main__':
    main(sys.argv[1:])
