"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi …``."""

from integration import create_app
from integration.settings import settings_or_exit

app = create_app(settings_or_exit("vats-bridge"))
