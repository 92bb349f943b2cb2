"""Exceptions the engine raises; the web layer maps each to an HTTP status."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.lint import ValidationReport


class EngineError(Exception):
    """Base class for every error the engine reports to a caller.

    :param message: text a user may read (Simplified Chinese)
    :param code: a stable machine-readable code
    """

    code = 'engine_error'

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class NotFound(EngineError):
    """The record does not exist or is outside the caller's org-unit subtree."""

    code = 'not_found'


class AccessDenied(EngineError):
    """The caller may see the record but not do this to it."""

    code = 'forbidden'


class Conflict(EngineError):
    """Someone else changed the record first (revision mismatch, task already done)."""

    code = 'conflict'


class ValidationFailed(EngineError):
    """Input was rejected; ``fields`` maps each field to its messages.

    :param fields: ``{field_id: [message, ...]}``
    """

    code = 'invalid'

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.fields: dict[str, list[str]] = fields or {}


class DeploymentRejected(EngineError):
    """A BPMN/DMN source failed validation; nothing was stored.

    :param problems: list of ``{"element": id or None, "message": text}`` (the parser adds the
        ``"rule"`` that found each)
    :param report: the whole validation report, when a deployment made one (errors and warnings)
    """

    code = 'invalid_definition'

    def __init__(self, message: str, problems: list[dict[str, Any]], report: ValidationReport | None = None) -> None:
        super().__init__(message)
        self.problems = problems
        self.report = report


class WarningsNotAccepted(EngineError):
    """A BPMN/DMN source has no errors but has warnings the deployer did not accept; nothing was stored.

    The API answers 409: the source is fine as it is, the request only lacks the designer's
    ``accept_warnings``; repeating it with that set deploys.

    :param report: the validation report (no errors, some warnings)
    """

    code = 'warnings_not_accepted'

    def __init__(self, message: str, report: ValidationReport) -> None:
        super().__init__(message)
        self.report = report


class ScriptRefused(EngineError):
    """A designer-supplied script or expression was refused by the sandbox."""

    code = 'script_refused'


class WorkflowFault(EngineError):
    """The engine stopped an instance rather than let it go wrong silently."""

    code = 'workflow_fault'
