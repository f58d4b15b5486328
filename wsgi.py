"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi …``."""

import sys

from integration import create_app
from integration.errors import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    print("vats-bridge cannot start; fix these settings:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)
    sys.exit(2)
