"""The project's errors: what a user can fix. Anything else is a bug and keeps its traceback.

The CLI and the server catch `CrystalclipError` once and show its one-line message; every subclass is
also the builtin a caller would expect (a bad input is a ValueError, a missing file a FileNotFoundError).
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable


class CrystalclipError(Exception):
    """Base of every error a user can act on; the message is one line that says what to do."""


class BadInput(CrystalclipError, ValueError):
    """A structure, file, query, label or dataset that cannot be used as given."""


class NotFound(BadInput, FileNotFoundError):
    """A path, dataset, index, model or derived text that does not exist."""


class ConfigError(CrystalclipError, ValueError):
    """A recipe or model setting that is unknown, of the wrong type or out of range."""


class ModelMismatch(CrystalclipError, ValueError):
    """An index or dataset built for another model (or other graph settings) than the one given."""


def did_you_mean(name: str, known: Iterable[str], prefix: str = "") -> str:
    """' (did you mean PREFIX+X?)' for the nearest known name, or ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""
