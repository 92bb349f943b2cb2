"""The diagram data of one instance of a case: load → check access → act, JSON in every outcome."""

from __future__ import annotations

from flask import jsonify
from flask.typing import ResponseReturnValue
from flask_babel import gettext

from engine.access import can_view_case, refuse
from engine.diagrams import instance_diagram
from engine.errors import EngineError, NotFound
from engine.models.cases import Case
from engine.models.instances import ProcessInstance
from web.core.auth import current_scope
from web.core.database import db
from web.core.pages import translate
from web.core.views import BaseView, status_for
from web.diagrams.schemas import DiagramSchema

#: one message for every refusal, so an outsider cannot tell a missing case from one they may not see
MSG_NOT_FOUND = '流程实例不存在'


def _error(code: str, message: str, status: int) -> ResponseReturnValue:
    return jsonify(error=code, message=message, fields={}), status


class DiagramView(BaseView):
    """Base of the diagram endpoints: a case the caller may read, and one of that case's own instances.

    A case outside the caller's subtrees and an instance of another case are both 404, like any
    record the caller may not see.
    """

    def load(self, case_id: int, instance_id: int) -> None:
        session = db()
        case = session.get(Case, case_id)
        if case is None:
            raise NotFound(MSG_NOT_FOUND)
        instance = session.get(ProcessInstance, instance_id)
        if instance is None or instance.case_id != case.id:
            raise NotFound(MSG_NOT_FOUND)
        self.case, self.instance = case, instance

    def check_access(self) -> None:
        scope = current_scope()
        if not can_view_case(db(), scope, self.case):
            raise refuse(db(), scope.user_id, 'case', self.case.id, self.case.org_path, MSG_NOT_FOUND)

    def unauthenticated(self) -> ResponseReturnValue:
        return _error('unauthorized', gettext('请先登录。'), 401)

    def handle_error(self, exc: EngineError) -> ResponseReturnValue:
        return _error(exc.code, translate(exc.message), status_for(exc))


class ShowDiagramDataView(DiagramView):
    """The instance's BPMN source with its completed steps, current steps and the flows taken."""

    def get(self, case_id: int, instance_id: int) -> ResponseReturnValue:
        response = jsonify(DiagramSchema().dump(instance_diagram(db(), self.instance)))
        # Where a case stands changes with every step and is visible to its readers only.
        response.headers['Cache-Control'] = 'private, no-store'
        return response
