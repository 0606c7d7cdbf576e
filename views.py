"""Dashboard views (placeholder until the dashboard lands)."""

from flask import Blueprint

bp = Blueprint("views", __name__)


@bp.get("/")
def index():
    return "jobsift"
