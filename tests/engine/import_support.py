"""A county with corrections and dispute staff, every shipped diagram deployed, and import files to feed it.

Shared by the engine, web and browser tests of bulk import (engine.imports). The clock stands at
2025-11-20 09:00 Beijing time, so the legal dates of the imported rows lie in the past.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from engine.clock import FrozenClock
from engine.definitions import deploy
from engine.directory import create_org_unit
from engine.imports import import_kind
from engine.models.org_units import OrgUnit
from engine.models.users import User

ROOT = Path(__file__).resolve().parents[2]
DIAGRAMS = (*sorted((ROOT / 'bpmn' / 'corrections').glob('*.bpmn')), ROOT / 'bpmn/disputes/triage.dmn',
            ROOT / 'bpmn/disputes/subsidy.dmn', ROOT / 'bpmn/disputes/dispute_mediation.bpmn')
NOW = datetime(2025, 11, 20, 1, 0, tzinfo=UTC)

#: valid ID numbers (GB 11643 check digit): two men and a woman
MALE_ID = '431381198503120015'
MALE_ID_2 = '430922198001010010'
FEMALE_ID = '431381199007010022'

OFFENDER = {'姓名': '李某', '公民身份号码': MALE_ID, '性别': '男', '矫正类别': '缓刑', '决定机关': '冷水江市人民法院',
            '罪名': '危险驾驶罪', '判决生效日期': '2025-09-25', '矫正起始日': '2025-09-25', '矫正结束日': '2026-09-24',
            '收到法律文书日期': '2025-09-26', '报到日期': '2025-09-28', '居住地': '冷水江市锡矿山街道',
            '管理类别': '普管', '机构代码': '431381001', '当前阶段': '矫正执行'}
DISPUTE = {'申请人': '王某', '患者姓名': '王某某', '患者公民身份号码': MALE_ID_2, '医疗机构': '冷水江市某医院',
           '案件来源': '当事人申请', '申请日期': '2025-11-03', '受理日期': '2025-11-05', '索赔金额（元）': '80000',
           '争议事项': '术后感染，患方认为医院护理不当', '患者是否死亡': '否', '涉及人数': '1', '机构代码': '431381',
           '当前阶段': '调解'}


@dataclass
class World:
    """冷水江 (county) with 锡矿山 (township), 浏阳 in another city, and a user per role."""

    province: OrgUnit
    county: OrgUnit
    township: OrgUnit
    other_county: OrgUnit
    users: dict[str, User] = field(default_factory=dict)


def build_world(session: Session, create_member: Callable[..., User]) -> World:
    """Create the units and users and deploy every diagram (committed)."""
    province = create_org_unit(session, '430000', '湖南省司法厅', 'province', None)
    loudi = create_org_unit(session, '431300', '娄底市司法局', 'city', province)
    changsha = create_org_unit(session, '430100', '长沙市司法局', 'city', province)
    county = create_org_unit(session, '431381', '冷水江市司法局', 'county', loudi)
    township = create_org_unit(session, '431381001', '锡矿山街道司法所', 'township', county)
    other_county = create_org_unit(session, '430181', '浏阳市司法局', 'county', changsha)
    session.commit()
    world = World(province, county, township, other_county)
    for name, group, unit in (('officer', 'county_officer', county), ('staff', 'township_staff', township),
                              ('mediator', 'mediator', county), ('chief', 'supervisor', county),
                              ('other_officer', 'county_officer', other_county),
                              ('designer', 'designer', province)):
        world.users[name] = create_member(name, group, unit)
    for path in DIAGRAMS:
        deploy(session, path.read_bytes(), actor=None, filename=path.name, accept_warnings=True)
    session.commit()
    return world


def frozen_clock() -> FrozenClock:
    """The clock these tests run on."""
    return FrozenClock(NOW)


def csv_file(kind: str, rows: Iterable[dict[str, str]], *, encoding: str = 'utf-8-sig',
             headers: Sequence[str] | None = None) -> bytes:
    """A CSV import file of ``kind`` (headers from the kind's template unless given)."""
    names = list(headers) if headers is not None else [c.header for c in import_kind(kind).all_columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator='\r\n')
    writer.writerow(names)
    for row in rows:
        writer.writerow([row.get(name, '') for name in names])
    return out.getvalue().encode(encoding)


def offender(**changes: str) -> dict[str, str]:
    """An offender row (矫正执行 at 锡矿山) with ``changes`` by header."""
    return {**OFFENDER, **changes}


def dispute(**changes: str) -> dict[str, str]:
    """A dispute row (调解 at 冷水江) with ``changes`` by header."""
    return {**DISPUTE, **changes}
