"""URLs of the dashboard area: 统计 (``/dashboard``) and 工作评比 (``/ranking``)."""

from __future__ import annotations

from flask import Blueprint

from web.dashboard.controllers import (
    DashboardView,
    ExportRankingView,
    OwnDashboardView,
    OwnRankingView,
    PublishRankingView,
    RankingView,
    WeightsView,
)
from web.dashboard.util import ranking_visible

bp = Blueprint('dashboard', __name__, template_folder='templates')
# The header's 工作评比 link (web/templates/base.html) shows only where a ranking exists.
bp.add_app_template_global(ranking_visible)

bp.add_url_rule('/dashboard', 'show_own', view_func=OwnDashboardView.as_view('show_own'), methods=['GET'])
bp.add_url_rule('/dashboard/<code>', 'show_unit', view_func=DashboardView.as_view('show_unit'), methods=['GET'])
bp.add_url_rule('/ranking', 'show_own_ranking', view_func=OwnRankingView.as_view('show_own_ranking'),
                methods=['GET'])
bp.add_url_rule('/ranking/<code>', 'show_ranking', view_func=RankingView.as_view('show_ranking'), methods=['GET'])
bp.add_url_rule('/ranking/<code>/export.<fmt>', 'export_ranking',
                view_func=ExportRankingView.as_view('export_ranking'), methods=['GET'])
bp.add_url_rule('/ranking/<code>/publish', 'publish_ranking', view_func=PublishRankingView.as_view('publish_ranking'),
                methods=['POST'])
bp.add_url_rule('/ranking/<code>/weights', 'edit_weights', view_func=WeightsView.as_view('edit_weights'),
                methods=['GET', 'POST'])
