"""The domain: registers case profiles and operations with the engine (the engine never imports this)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.profiles import CaseProfile, register_profile
from workflows.shared.id_numbers import id_number_problem


def _check_id_number(data: Mapping[str, Any]) -> dict[str, list[str]]:
    value = data.get('id_number')
    problem = id_number_problem(str(value)) if value else None
    return {'id_number': [problem]} if problem else {}


def register() -> None:
    """Register every lifecycle's case profile and service operations with the engine; idempotent."""
    from workflows.shared import documents  # noqa: F401  (registers documents.generate)
    register_profile('demo_intake', CaseProfile(prefix='YS', start_field='received_on',
                                                validate=_check_id_number))
    from workflows import corrections
    corrections.register()
    from workflows import disputes
    disputes.register()
