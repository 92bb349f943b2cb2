"""URLs of the diagrams area, and the template globals its partial uses."""

from __future__ import annotations

from flask import Blueprint

from web.diagrams.controllers import ShowDiagramDataView
from web.diagrams.util import case_diagrams, diagram_steps, diagram_times, diagram_url

bp = Blueprint('diagrams', __name__, template_folder='templates')

bp.add_url_rule('/cases/<int:case_id>/instances/<int:instance_id>/diagram.json', 'show_diagram_data',
                view_func=ShowDiagramDataView.as_view('show_diagram_data'), methods=['GET'])

bp.add_app_template_global(diagram_url)
bp.add_app_template_global(diagram_steps)
bp.add_app_template_global(case_diagrams)
bp.add_app_template_global(diagram_times)
