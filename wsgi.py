"""What gunicorn and ``flask --app wsgi`` load."""

import sys

from portal import create_app
from portal.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:  # a clear message, not a traceback
    sys.exit(f"portal: configuration error: {exc}")
