"""Saved to-do filters (常用筛选): a view, filter criteria and a sort under a name, personal or shared.

A filter shared with a group at a unit reaches whoever holds that group at that unit or below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from engine import audit
from engine.access import Scope, refuse
from engine.clock import now
from engine.errors import AccessDenied, NotFound, ValidationFailed
from engine.models.filters import SavedFilter
from engine.models.users import User
from engine.tasks import SORTS, VIEWS, TaskFilter

NAME_MAX = 60
#: saved filters one person may own
PER_USER_MAX = 50


def visible_filters_clause(scope: Scope) -> sa.ColumnElement[bool]:
    """The caller's own filters and those shared with a group they hold at or below the shared unit."""
    shared = [sa.and_(SavedFilter.shared_group == group, sa.literal(path).startswith(SavedFilter.shared_org_path))
              for group, path in scope.grants]
    return sa.or_(SavedFilter.owner_id == scope.user_id, *shared)


def list_filters(session: Session, scope: Scope) -> list[SavedFilter]:
    """The filters the caller sees: their own first, then shared ones, each by name."""
    query = (sa.select(SavedFilter).where(visible_filters_clause(scope))
             .order_by((SavedFilter.owner_id != scope.user_id), SavedFilter.name, SavedFilter.id))
    return list(session.scalars(query))


def get_filter(session: Session, filter_id: int, scope: Scope) -> SavedFilter:
    """One filter the caller sees, or NotFound."""
    saved = session.get(SavedFilter, filter_id)
    if saved is None:
        raise NotFound('筛选不存在')
    if not session.scalar(sa.select(sa.exists().where(SavedFilter.id == filter_id, visible_filters_clause(scope)))):
        raise refuse(session, scope.user_id, 'filter', filter_id, saved.shared_org_path, '筛选不存在')
    return saved


def _check(session: Session, actor: User, name: str, view: str, sort: str) -> str:
    name = name.strip()
    errors: dict[str, list[str]] = {}
    if not name:
        errors['name'] = ['请填写筛选名称。']
    elif len(name) > NAME_MAX:
        errors['name'] = [f'名称最多 {NAME_MAX} 个字。']
    elif session.scalar(sa.select(sa.exists().where(SavedFilter.owner_id == actor.id, SavedFilter.name == name))):
        errors['name'] = ['您已有同名的筛选。']
    if view not in VIEWS:
        errors['view'] = [f'可选值：{", ".join(VIEWS)}']
    if sort not in SORTS:
        errors['sort'] = [f'可选值：{", ".join(SORTS)}']
    if errors:
        raise ValidationFailed('无法保存筛选', errors)
    owned = session.scalar(sa.select(sa.func.count()).select_from(SavedFilter).where(SavedFilter.owner_id == actor.id))
    if (owned or 0) >= PER_USER_MAX:
        raise ValidationFailed('无法保存筛选', {'name': [f'每人最多保存 {PER_USER_MAX} 个筛选，请先删除不用的。']})
    return name


def _share_path(scope: Scope, group: str) -> str:
    """The highest unit at which the actor holds ``group``: the filter reaches that unit's subtree."""
    paths = sorted((path for held, path in scope.grants if held == group), key=len)
    if not paths:
        raise ValidationFailed('无法保存筛选', {'share_group': ['只能共享给您所在的组。']})
    return paths[0]


def save_filter(session: Session, name: str, view: str, criteria: Mapping[str, Any], *, actor: User,
                scope: Scope, sort: str = 'due', share_group: str | None = None) -> SavedFilter:
    """Save the current view, filters and sort under ``name``.

    :param criteria: the filter fields as text (``TaskFilter.from_dict`` checks them)
    :param share_group: a group the actor holds; its holders at the actor's unit and below see the filter
    """
    name = _check(session, actor, name, view, sort)
    task_filter = TaskFilter.from_dict(criteria)
    shared_path = _share_path(scope, share_group) if share_group else None
    saved = SavedFilter(owner_id=actor.id, name=name, view=view,
                        criteria={**task_filter.to_dict(), 'sort': sort},
                        shared_group=share_group or None, shared_org_path=shared_path, created_dt=now())
    session.add(saved)
    session.flush()
    audit.record(session, 'filter.saved', actor=actor, org_path=shared_path,
                 after={'filter_id': saved.id, 'name': name, 'view': view, 'shared_group': share_group})
    return saved


def delete_filter(session: Session, filter_id: int, *, actor: User, scope: Scope) -> None:
    """Delete a filter; only its owner may."""
    saved = get_filter(session, filter_id, scope)
    if saved.owner_id != actor.id:
        raise AccessDenied('只有创建人可以删除该筛选。')
    audit.record(session, 'filter.deleted', actor=actor, org_path=saved.shared_org_path,
                 before={'filter_id': saved.id, 'name': saved.name})
    session.delete(saved)


def filter_of(saved: SavedFilter) -> tuple[TaskFilter, str]:
    """The saved criteria as a TaskFilter and the sort order."""
    criteria = dict(saved.criteria)
    sort = str(criteria.pop('sort', 'due'))
    return TaskFilter.from_dict(criteria), sort if sort in SORTS else 'due'
