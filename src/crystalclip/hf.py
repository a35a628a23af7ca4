"""Loading Hugging Face models from local directories only, quietly: nothing touches the network."""
from __future__ import annotations

from pathlib import Path


def load_local(model_class, path: Path):
    """(tokenizer, model) from a checked local directory; local_files_only, so transformers has no
    reason to touch the network."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # the "Loading weights" bar is noise in a CLI
    try:
        return (AutoTokenizer.from_pretrained(str(path), local_files_only=True),
                model_class.from_pretrained(str(path), local_files_only=True))
    finally:
        if bar:
            hf_logging.enable_progress_bar()
