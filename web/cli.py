"""``flask --app wsgi <command>``: init-db, load-demo, deploy, create-user."""

from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app

from engine.db import unit_of_work
from engine.directory import add_membership, create_user, get_group
from engine.errors import EngineError
from engine.models.org_units import OrgUnit
from web.core.database import session_factory

ROOT = Path(__file__).resolve().parent.parent


def register_commands(app: Flask) -> None:
    """Attach the CLI commands to ``app``."""
    for cmd in (init_db, load_demo_command, deploy_command, create_user_command):
        app.cli.add_command(cmd)


def _fail(exc: EngineError) -> None:
    lines = [exc.message]
    for problem in getattr(exc, 'problems', []):
        lines.append(f'  - {problem.get("element") or "-"}: {problem["message"]}')
    for field, messages in getattr(exc, 'fields', {}).items():
        lines.append(f'  - {field}: {"；".join(messages)}')
    raise click.ClickException('\n'.join(lines))


@click.command('init-db')
def init_db() -> None:
    """Create or upgrade the database schema (Alembic migrations)."""
    url = current_app.config['DATABASE_URL']
    if url.startswith('sqlite:///'):
        Path(url[len('sqlite:///'):]).parent.mkdir(parents=True, exist_ok=True)
    cfg = AlembicConfig(str(ROOT / 'alembic.ini'))
    cfg.set_main_option('sqlalchemy.url', url.replace('%', '%%'))
    click.echo('升级数据库结构…')
    command.upgrade(cfg, 'head')
    click.echo('数据库已就绪。')


@click.command('load-demo')
def load_demo_command() -> None:
    """Load demo org units, users, diagrams and cases (diagrams only, if already loaded)."""
    from workflows.demo import load_demo
    try:
        with unit_of_work(session_factory()) as session:
            loaded = load_demo(session, progress=click.echo)
    except EngineError as exc:
        _fail(exc)
    click.echo('演示数据已加载。' if loaded else '演示数据已存在，仅更新了流程定义。')


@click.command('deploy')
@click.argument('path', type=click.Path(exists=True, path_type=Path))
def deploy_command(path: Path) -> None:
    """Deploy a BPMN/DMN file, or every .dmn then .bpmn file under a folder."""
    from engine.definitions import deploy
    files = [path] if path.is_file() else sorted(path.rglob('*.dmn')) + sorted(path.rglob('*.bpmn'))
    for file in files:
        try:
            with unit_of_work(session_factory()) as session:
                definition, created = deploy(session, file.read_bytes(), actor=None, filename=file.name)
                click.echo(f'{file.name}: {definition.key} v{definition.version}'
                           f'{"" if created else "（未变化，未创建新版本）"}')
        except EngineError as exc:
            _fail(exc)


@click.command('create-user')
@click.argument('username')
@click.option('--name', 'display_name', required=True, help='显示名称')
@click.option('--org-unit', 'unit_code', required=True, help='所属机构代码')
@click.option('--group', 'groups', multiple=True, help='角色代码，可重复')
@click.password_option(help='密码（未提供则提示输入）')
def create_user_command(username: str, display_name: str, unit_code: str, groups: tuple[str, ...],
                        password: str) -> None:
    """Create a user at an org unit with the given roles."""
    try:
        with unit_of_work(session_factory()) as session:
            unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == unit_code)).one_or_none()
            if unit is None:
                raise click.ClickException(f'机构代码 {unit_code} 不存在')
            user = create_user(session, username, display_name, password, unit, actor=None)
            for code in groups:
                add_membership(session, user, get_group(session, code), unit, actor=None)
    except EngineError as exc:
        _fail(exc)
    click.echo(f'已创建用户 {username}。')
