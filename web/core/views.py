"""Base views: every handler runs load → check access → act, and commits once, here.

Engine errors become the right status; nothing else ever shows a user a stack trace.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from flask import abort, request
from flask.typing import ResponseReturnValue
from flask.views import MethodView
from flask_login import current_user
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from engine import access, runtime
from engine.errors import EngineError, WorkflowFault
from web.core.database import db, session_factory
from web.core.database_faults import database_fault, database_unavailable

log = logging.getLogger(__name__)


class BaseView(MethodView):
    """Subclasses implement ``load`` (404 for missing rows), ``check_access`` and one method per verb."""

    #: anonymous users are sent to the login page unless this is False
    login_required: ClassVar[bool] = True

    def load(self, **kwargs: Any) -> None:
        """Load the objects the request is about (raise NotFound for missing ones)."""

    def check_access(self) -> None:
        """Raise AccessDenied/NotFound when the caller may not do this."""

    def dispatch_request(self, **kwargs: Any) -> ResponseReturnValue:
        if self.login_required and not current_user.is_authenticated:
            return self.unauthenticated()
        session = db()
        try:
            self.load(**kwargs)
            self.check_access()
            response = super().dispatch_request(**kwargs)
            session.commit()
            return response
        except WorkflowFault as exc:
            session.rollback()
            self._note_fault(exc)
            return self.handle_error(exc)
        except EngineError as exc:
            session.rollback()
            return self.handle_error(exc)
        except (DBAPIError, PoolTimeout) as exc:
            fault = database_fault(exc)
            if fault is None:
                session.rollback()
                raise  # a constraint or a bad statement: a bug, logged with its traceback as a 500
            return database_unavailable(fault, exc)
        except BaseException:
            session.rollback()
            raise
        finally:
            _note_refusals(session)

    def _note_fault(self, exc: WorkflowFault) -> None:
        instance_id = getattr(self, 'fault_instance_id', None)
        if instance_id is None:
            return
        with session_factory()() as session, session.begin():
            runtime.record_fault(session, instance_id, exc.message)

    def unauthenticated(self) -> ResponseReturnValue:
        """Response for an anonymous caller."""
        abort(401)

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        """Turn an engine error into a response; subclasses render HTML or JSON."""
        raise NotImplementedError


def _note_refusals(session: Session) -> None:
    """Write the attempts on records outside the caller's reach, in a transaction of their own.

    The request's own transaction has ended by now, usually rolled back by the very refusal.
    """
    refusals = access.take_refusals(session)
    if not refusals:
        return
    for refusal in refusals:
        log.warning('access refused: user %s, %s %s at %s, %s %s', refusal.user_id, refusal.record,
                    refusal.record_id, refusal.org_path, request.method, request.endpoint)
    try:
        with session_factory()() as own, own.begin():
            access.record_refusals(own, refusals, endpoint=request.endpoint, method=request.method)
    except OperationalError:
        log.exception('refused attempts not audited: database unavailable')


STATUS_FOR_CODE = {'not_found': 404, 'forbidden': 403, 'conflict': 409, 'invalid': 400,
                   'invalid_definition': 400, 'script_refused': 400, 'workflow_fault': 422,
                   'warnings_not_accepted': 409}


def status_for(exc: EngineError) -> int:
    """HTTP status for an engine error."""
    return STATUS_FOR_CODE.get(exc.code, 400)
