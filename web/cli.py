"""``flask --app wsgi <command>``: init-db, load-demo, deploy, create-user, create-client, worker, serve."""

from __future__ import annotations

import logging
import re
import signal
import threading
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import NoReturn

import click
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from flask.cli import with_appcontext
from werkzeug.serving import run_simple

from engine.audit import verify_chain
from engine.clock import LOCAL_ZONE
from engine.db import create_db_engine, create_session_factory, unit_of_work
from engine.directory import add_membership, check_role_codes, create_user, get_group
from engine.errors import DeploymentRejected, EngineError, WarningsNotAccepted
from engine.events import create_client
from engine.lint import ValidationReport
from engine.models.org_units import OrgUnit
from engine.worker import Worker
from web.core.collector import settle_collector
from web.core.database import session_factory

ROOT = Path(__file__).resolve().parent.parent
#: what ``create-user --email`` accepts: one @, no spaces, a dot in the domain
EMAIL = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s]+$')


def register_commands(app: Flask) -> None:
    """Attach the CLI commands to ``app``."""
    for cmd in (init_db, load_demo_command, deploy_command, create_user_command, create_client_command,
                worker_command, serve_command, audit_group):
        app.cli.add_command(cmd)


def _fail(exc: EngineError) -> NoReturn:
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
@click.option('--accept-warnings', is_flag=True, help='接受校验报告中的警告并照常部署（有错误时仍不部署）。')
@with_appcontext
def deploy_command(path: Path, accept_warnings: bool) -> None:
    """Deploy a BPMN/DMN file, or every .dmn then .bpmn file under a folder, printing each validation report.

    Stops at the first file that is refused: one with errors, or with warnings when ``--accept-warnings``
    is not given; the exit status is then 1.
    """
    files = [path] if path.is_file() else sorted(path.rglob('*.dmn')) + sorted(path.rglob('*.bpmn'))
    for file in files:
        _deploy_file(file, accept_warnings)


def _deploy_file(file: Path, accept_warnings: bool) -> None:
    from engine.definitions import deploy_with_report
    try:
        with unit_of_work(session_factory()) as session:
            result = deploy_with_report(session, file.read_bytes(), actor=None, filename=file.name,
                                        accept_warnings=accept_warnings)
    except (DeploymentRejected, WarningsNotAccepted) as exc:
        if exc.report is None:
            _fail(exc)
        click.echo(f'{file.name}: {exc.message}', err=True)
        _echo_findings(exc.report, err=True)
        if isinstance(exc, WarningsNotAccepted):
            click.echo('确认警告无误后，可加 --accept-warnings 重新部署。', err=True)
        raise click.exceptions.Exit(1) from None
    except EngineError as exc:
        _fail(exc)
    definition = result.definition
    click.echo(f'{file.name}: {definition.key} v{definition.version}'
               f'{"" if result.created else "（未变化，未创建新版本）"}')
    if result.created:
        _echo_findings(result.report)


def _echo_findings(report: ValidationReport, *, err: bool = False) -> None:
    """One line per finding: severity, rule, element, message."""
    for finding in [*report.errors, *report.warnings]:
        element = finding.element_id or '-'
        if finding.element_name:
            element += f'（{finding.element_name}）'
        severity = '错误' if finding.severity == 'error' else '警告'
        click.echo(f'  {severity} {finding.rule} {element}: {finding.message}', err=err)


def _email(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An e-mail address that at least looks like one (``name@host.domain``), or None."""
    if value is not None and not EMAIL.match(value):
        raise click.BadParameter(f'“{value}”不是有效的电子邮件地址')
    return value


@click.command('create-user')
@click.argument('username')
@click.option('--name', 'display_name', required=True, help='显示名称')
@click.option('--org-unit', 'unit_code', required=True, help='所属机构代码')
@click.option('--group', 'groups', multiple=True, help='角色代码，可重复')
@click.option('--email', default=None, callback=_email, help='电子邮件地址（配置 SMTP 后提醒也发到此地址）')
@click.password_option(help='密码（未提供则提示输入）')
def create_user_command(username: str, display_name: str, unit_code: str, groups: tuple[str, ...],
                        email: str | None, password: str) -> None:
    """Create a user at an org unit with the given roles (三员: at most one of system_admin, security_admin,
    audit_admin)."""
    try:
        check_role_codes(groups)
        with unit_of_work(session_factory()) as session:
            unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == unit_code)).one_or_none()
            if unit is None:
                raise click.ClickException(f'机构代码 {unit_code} 不存在')
            user = create_user(session, username, display_name, password, unit, actor=None, email=email)
            for code in groups:
                add_membership(session, user, get_group(session, code), unit, actor=None)
    except EngineError as exc:
        _fail(exc)
    click.echo(f'已创建用户 {username}。')


@click.command('create-client')
@click.argument('name')
@click.option('--org-unit', 'unit_code', required=True, help='接入方所代表的机构代码（在其下级范围内关联案件）')
@click.option('--kinds', required=True, help='可发送的事件类型，逗号分隔：alarm,referral')
@with_appcontext
def create_client_command(name: str, unit_code: str, kinds: str) -> None:
    """Create a machine client for POST /api/v1/events and print its token (shown this once only)."""
    try:
        with unit_of_work(session_factory()) as session:
            unit = session.scalars(sa.select(OrgUnit).where(OrgUnit.code == unit_code)).one_or_none()
            if unit is None:
                raise click.ClickException(f'机构代码 {unit_code} 不存在')
            _client, token = create_client(session, name, unit, kinds.split(','), actor=None)
    except EngineError as exc:
        _fail(exc)
    click.echo(f'已创建接入方 {name.strip()}。令牌只显示这一次，请妥善保存：')
    click.echo(token)


def _log_to_console() -> None:
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    # SpiffWorkflow logs every task state change at INFO; one line per job is what an operator reads.
    logging.getLogger('spiff').setLevel(logging.WARNING)


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM or Ctrl-C: finish the job in hand, give back the rest of the batch, exit."""
    def handle(signum: int, frame: FrameType | None) -> None:
        click.echo('正在停止：完成当前作业后退出（再按一次 Ctrl-C 立即退出）…', err=True)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


@click.command('worker')
@click.option('--once', is_flag=True, help='处理完当前所有到期作业后退出（用于定时任务）。')
@click.option('--batch', default=20, show_default=True, type=click.IntRange(1, 1000), help='每轮认领的作业数')
@click.option('--name', default=None, help='锁持有者名称，每个 worker 须不同（默认：主机:进程号:随机串）')
@with_appcontext
def worker_command(once: bool, batch: int, name: str | None) -> None:
    """Fire due BPMN timers, reminders and escalations from the job table.

    On SQLite run exactly one worker (``serve`` already runs one); on PostgreSQL run as many as you like.
    """
    _log_to_console()
    worker = Worker(session_factory(), name=name, batch_size=batch)
    if once:
        total = 0
        while count := worker.run_once():
            total += count
        click.echo(f'已处理 {total} 个作业。')
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    settle_collector()  # as deploy/gunicorn.conf.py does
    worker.run_forever(stop)


def start_worker_thread(database_url: str) -> tuple[threading.Thread, threading.Event]:
    """Run a worker in a daemon thread, on its own engine and sessions; set the event to stop it."""
    worker = Worker(create_session_factory(create_db_engine(database_url)), name=None)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), name='fengqiao-worker', daemon=True)
    thread.start()
    return thread, stop


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@click.command('serve')
@click.option('--host', default='127.0.0.1', show_default=True)
@click.option('--port', default=5000, show_default=True, type=int)
@click.option('--worker/--no-worker', 'with_worker', default=True, show_default=True,
              help='在同一进程中运行 worker（使用 SQLite 时不要再另开 worker）')
@with_appcontext
def serve_command(host: str, port: int, with_worker: bool) -> None:
    """Run the development server with a worker beside it, so timers and reminders fire (``make run``)."""
    _log_to_console()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    worker = start_worker_thread(app.config['DATABASE_URL']) if with_worker else None
    signal.signal(signal.SIGTERM, _interrupt)  # stop like Ctrl-C: the server returns, the worker finishes its job
    try:
        # No reloader: it would start this command, and so a second worker, in a child process.
        run_simple(host, port, app, use_reloader=False, use_debugger=False, threaded=True)
    finally:
        if worker is not None:
            thread, stop = worker
            stop.set()
            thread.join(timeout=10)


@click.group('audit')
def audit_group() -> None:
    """The audit log: check its hash chain."""


@audit_group.command('verify')
@click.option('--batch', default=2000, show_default=True, type=click.IntRange(1, 100000), help='每次读取的记录数')
@click.option('--archive', 'archives', multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help='同时校验的归档文件（audit archive 生成），可重复：归档文件与数据库中的记录作为一条链校验')
@with_appcontext
def audit_verify_command(batch: int, archives: tuple[Path, ...]) -> None:
    """Recompute the audit chain: print OK and the row count, or the first broken row and exit with status 1.

    With ``--archive``, the archive files' rows and the live table are checked as one chain.
    """
    from engine.archive import verify_archives
    with session_factory()() as session:
        if archives:
            report = verify_archives(session, [path.read_bytes() for path in archives], batch=batch)
        else:
            report = verify_chain(session, batch=batch)
    if report.ok:
        click.echo(f'OK：审计链完整，共校验 {report.checked} 条记录。')
        return
    when = report.occurred_dt.astimezone(LOCAL_ZONE).strftime('%Y-%m-%d %H:%M:%S') if report.occurred_dt else '—'
    click.echo(f'审计链断裂：第一处断裂的记录 id={report.first_broken_id} kind={report.kind or "—"} '
               f'时间={when}', err=True)
    click.echo(f'{report.message}（此前 {report.checked} 条记录校验无误）', err=True)
    raise SystemExit(1)


@audit_group.command('archive')
@click.option('--before', required=True, type=click.DateTime(formats=['%Y-%m-%d']),
              help='截止日期（YYYY-MM-DD，北京时间）：归档此日之前发生的记录')
@click.option('--out', 'out_path', required=True, type=click.Path(dir_okay=False, path_type=Path),
              help='写入的归档文件（JSON Lines），不得已存在')
@click.option('--retention-months', default=6, show_default=True, type=click.IntRange(6, 1200),
              envvar='FENGQIAO_AUDIT_RETENTION_MONTHS', help='审计日志至少保留的月数（不少于 6）')
@with_appcontext
def audit_archive_command(before: datetime, out_path: Path, retention_months: int) -> None:
    """Move audit events older than ``--before`` to a JSON-lines file, keeping the chain verifiable.

    Records a checkpoint (last archived hash, the file's sha256) and deletes the archived rows in one
    transaction; on any failure nothing is deleted and the file is removed.
    """
    from engine.archive import archive_events
    try:
        with out_path.open('xb') as out, unit_of_work(session_factory()) as session:
            result = archive_events(session, before.date(), out, file_name=out_path.name,
                                    retention_months=retention_months)
    except FileExistsError:
        raise click.ClickException(f'文件 {out_path} 已存在，不会覆盖。') from None
    except BaseException as exc:
        out_path.unlink(missing_ok=True)
        if isinstance(exc, EngineError):
            _fail(exc)
        raise
    if result.checkpoint is None:
        out_path.unlink(missing_ok=True)
        click.echo(f'{before.date().isoformat()} 之前没有可归档的审计记录。')
        return
    checkpoint = result.checkpoint
    click.echo(f'已归档 {result.count} 条审计记录（第 {checkpoint.first_event_id} 至第 {checkpoint.last_event_id} 条）'
               f'到 {out_path}，sha256={checkpoint.file_sha256}，检查点 #{checkpoint.id}。')
    click.echo('请妥善保存该文件；用 audit verify --archive 文件 可将其与数据库中的记录一起校验。')
