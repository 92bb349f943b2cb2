"""What gunicorn and ``flask --app wsgi`` load."""

from web.app import create_app

app = create_app()
