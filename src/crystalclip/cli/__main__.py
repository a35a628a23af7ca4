"""`python -m crystalclip.cli`: the same app as the `crystalclip` command."""
from . import app

app()
