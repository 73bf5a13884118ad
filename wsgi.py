"""What gunicorn and ``flask --app wsgi`` load."""

from portal import create_app

app = create_app()
