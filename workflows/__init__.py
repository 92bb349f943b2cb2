"""The domain: registers case profiles and operations with the engine (the engine never imports this)."""

from __future__ import annotations


def register() -> None:
    """Register every lifecycle's case profiles, forms and service operations with the engine; idempotent."""
    from workflows import corrections, disputes
    from workflows.shared import documents  # noqa: F401  (registers documents.generate)

    corrections.register()
    disputes.register()
