"""The `crystalclip` command line: one Typer app, commands grouped by module (data, models, search).

Every command's errors of the project's kind (`crystalclip.errors.CrystalclipError`) are caught once,
here, and printed as one line with exit status 2; anything else is a bug and keeps its traceback.
"""
from .app import app
from . import data, models, search  # noqa: E402,F401  (registers the commands)

__all__ = ["app"]
