"""Demo data from the reports in shared/domain/seeds: the Hunan units, a user per role, sample cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine.definitions import deploy
from engine.directory import add_membership, create_org_unit, create_user, get_group
from engine.models.org_units import OrgUnit
from engine.models.users import User
from workflows.corrections.demo import load_demo_cases as load_corrections_cases
from workflows.disputes.demo import load_demo_cases

DEMO_PASSWORD = 'demo1234'
BPMN_DIR = Path(__file__).resolve().parent.parent / 'bpmn'

GROUPS = {
    'township_staff': '司法所工作人员', 'county_officer': '县级社区矫正机构', 'mediator': '医调委调解员',
    'senior_mediator': '资深调解员', 'counsellor': '心理咨询师', 'expert': '医学专家',
    'health_bureau': '卫健局工作人员', 'supervisor': '主管领导', 'designer': '流程设计人员',
    # 三员; ``admin`` is the role older installs had, kept as a system administrator by another name
    'system_admin': '系统管理员', 'security_admin': '安全保密管理员', 'audit_admin': '安全审计员',
    'admin': '系统管理员（旧版角色）',
    'village_mediator': '网格员/村（居）人民调解员', 'township_mediator': '乡镇（街道）人民调解委员会',
    'hospital_liaison': '医院医患关系办公室',
}

# (code, name, level, parent code)
UNITS = [
    ('430000', '湖南省司法厅', 'province', None),
    ('430100', '长沙市司法局', 'city', '430000'),
    ('430181', '浏阳市司法局', 'county', '430100'),
    ('430181001', '淮川街道司法所', 'township', '430181'),
    ('430181002', '集里街道司法所', 'township', '430181'),
    ('430900', '益阳市司法局', 'city', '430000'),
    ('430922', '桃江县司法局', 'county', '430900'),
    ('430922001', '桃花江镇司法所', 'township', '430922'),
    ('430922002', '灰山港镇司法所', 'township', '430922'),
    ('430903', '赫山区司法局', 'county', '430900'),
    ('430903001', '龙光桥街道司法所', 'township', '430903'),
    ('431300', '娄底市司法局', 'city', '430000'),
    ('431381', '冷水江市司法局', 'county', '431300'),
    ('431381001', '锡矿山街道司法所', 'township', '431381'),
    ('431381002', '沙塘湾街道司法所', 'township', '431381'),
]

# (username, display name, unit code, groups)
USERS = [
    ('lsj_staff', '刘晓燕（冷水江锡矿山司法所）', '431381001', ('township_staff',)),
    ('lsj_officer', '曾志强（冷水江市社区矫正科）', '431381', ('county_officer',)),
    ('lsj_chief', '彭建华（冷水江市司法局科长）', '431381', ('supervisor',)),
    ('ly_staff', '陈丽（浏阳淮川司法所）', '430181001', ('township_staff',)),
    ('ly_officer', '罗伟（浏阳市社区矫正科）', '430181', ('county_officer',)),
    ('tj_staff', '周敏（桃江桃花江镇司法所）', '430922001', ('township_staff',)),
    ('tj_officer', '李强（桃江县社区矫正科）', '430922', ('county_officer',)),
    ('tj_mediator', '王红梅（桃江县医调委调解员）', '430922', ('mediator',)),
    ('tj_senior', '胡国平（桃江县医调委资深调解员）', '430922', ('mediator', 'senior_mediator')),
    ('tj_counsellor', '谢芳（心理咨询师）', '430922', ('counsellor',)),
    ('tj_expert', '汤医生（医学专家库）', '430922', ('expert',)),
    ('tj_health', '蒋卫东（桃江县卫健局）', '430922', ('health_bureau',)),
    ('tj_chief', '邓志刚（桃江县司法局副局长）', '430922', ('supervisor',)),
    ('tj_village', '刘桂兰（桃花江镇网格员、村人民调解员）', '430922001', ('village_mediator',)),
    ('tj_township', '曹建军（桃花江镇人民调解委员会）', '430922001', ('township_mediator',)),
    ('tj_hospital', '陈志明（桃江县人民医院医患办）', '430922', ('hospital_liaison',)),
    ('hs_staff', '黄磊（赫山龙光桥司法所）', '430903001', ('township_staff',)),
    ('yy_chief', '易建军（益阳市司法局）', '430900', ('supervisor',)),
    ('hn_chief', '张卫国（湖南省司法厅）', '430000', ('supervisor',)),
    ('designer', '流程设计员', '430000', ('designer',)),
    ('admin', '系统管理员', '430000', ('admin',)),
    ('sysadmin', '赵建国（省厅系统管理员）', '430000', ('system_admin',)),
    ('secadmin', '孙立新（省厅安全保密管理员）', '430000', ('security_admin',)),
    ('auditadmin', '钱雅琴（省厅安全审计员）', '430000', ('audit_admin',)),
]

Progress = Callable[[str], None]


def _units(session: Session, progress: Progress) -> dict[str, OrgUnit]:
    units: dict[str, OrgUnit] = {}
    for code, name, level, parent in UNITS:
        units[code] = create_org_unit(session, code, name, level, units[parent] if parent else None)
    progress(f'机构 {len(units)} 个')
    return units


def _users(session: Session, units: dict[str, OrgUnit], progress: Progress) -> dict[str, User]:
    groups = {code: get_group(session, code, name) for code, name in GROUPS.items()}
    users: dict[str, User] = {}
    for username, name, unit_code, roles in USERS:
        user = create_user(session, username, name, DEMO_PASSWORD, units[unit_code], actor=None,
                           enforce_policy=False)
        for role in roles:
            add_membership(session, user, groups[role], units[unit_code], actor=None)
        users[username] = user
    progress(f'用户 {len(users)} 个（演示密码 {DEMO_PASSWORD}）')
    return users


def deploy_shipped(session: Session, progress: Progress) -> int:
    """Deploy every shipped DMN, then every BPMN, under ``bpmn/``; unchanged files add no version."""
    created = 0
    files = sorted(BPMN_DIR.rglob('*.dmn')) + sorted(BPMN_DIR.rglob('*.bpmn'))
    for path in files:
        definition, is_new = deploy(session, path.read_bytes(), actor=None, filename=path.name, accept_warnings=True)
        created += is_new
        progress(f'{"部署" if is_new else "未变化"} {definition.key} v{definition.version}（{path.name}）')
    return created


def _cases(session: Session, units: dict[str, OrgUnit], users: dict[str, User], progress: Progress) -> None:
    progress(f'医疗纠纷演示案件 {load_demo_cases(session, units, users)} 件')
    progress(f'社区矫正演示案件 {load_corrections_cases(session, units, users)} 件')


def load_demo(session: Session, progress: Progress = print) -> bool:
    """Load the demo org tree, users, diagrams and cases; return False if demo data is already there."""
    if session.scalar(sa.select(sa.func.count()).select_from(OrgUnit)):
        deploy_shipped(session, progress)
        return False
    units = _units(session, progress)
    users = _users(session, units, progress)
    deploy_shipped(session, progress)
    _cases(session, units, users, progress)
    return True
