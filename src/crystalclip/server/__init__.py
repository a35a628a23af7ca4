"""The HTTP API and web page: `crystalclip serve --index INDEX`, or `create_app(INDEX)` for any ASGI server."""
from .app import create_app

__all__ = ["create_app"]
