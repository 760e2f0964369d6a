"""The app's one model: loaded once from `SEMFLOW_MODEL` (Hub id[@revision] or folder) or the embedded default."""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from semflow import SemFlowPipeline
from semflow.hub import parse_model_ref, resolve_model
from semflow.loading import EMBEDDED_MODEL, ENV_MODEL

logger = logging.getLogger(__name__)
SPACE_CONFIG = Path(__file__).resolve().parents[1] / "semflow_space.json"


@dataclass(frozen=True)
class LoadedModel:
    """The pipeline and where it came from.

    Attributes:
        source: What was loaded: a folder, or ``org/name`` for a Hub model.
        revision: The Hub commit the cache resolved to (None for folders).
        notice: Set when the requested model could not be loaded and the embedded default was used instead.
        card: The model card (README.md) text, if the folder has one.
    """

    pipe: SemFlowPipeline
    source: str
    revision: str | None
    notice: str | None
    card: str | None


_lock = threading.Lock()
_loaded: LoadedModel | None = None


def get_model() -> LoadedModel:
    """The process-wide model, loaded on first use."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = load_model()
        return _loaded


def requested_model() -> str | None:
    """`$SEMFLOW_MODEL`, else the model a built Space was made for (semflow_space.json), else None (embedded)."""
    if os.environ.get(ENV_MODEL):
        return os.environ[ENV_MODEL]
    if SPACE_CONFIG.is_file():
        return json.loads(SPACE_CONFIG.read_text()).get("model") or None
    return None


def load_model(requested: str | None = None) -> LoadedModel:
    """Load `requested` (default: `requested_model()`); if that fails (Hub unreachable, not in the cache, broken
    folder), fall back to the embedded default with a notice instead of failing."""
    requested = requested or requested_model()
    if requested:
        try:
            return _load(requested)
        except Exception as error:  # any failure to reach or read the model: the app must still start
            logger.warning("could not load %s: %s", requested, error)
            notice = (f"Could not load the model '{requested}' ({type(error).__name__}: {_first_line(error)}); "
                      f"using the embedded default model instead.")
            return _with_notice(_load(str(EMBEDDED_MODEL)), notice)
    return _load(str(EMBEDDED_MODEL))


def _load(requested: str) -> LoadedModel:
    ref = parse_model_ref(requested)
    folder = Path(resolve_model(requested))
    pipe = SemFlowPipeline.from_pretrained(folder, dtype=torch.float32)
    if torch.cuda.is_available():
        pipe.to("cuda")
    revision = None if ref.is_local else folder.name  # the snapshot folder is named after the commit
    card = (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").is_file() else None
    source = ref.repo_id_or_path if not ref.is_local else str(folder)
    return LoadedModel(pipe=pipe, source=source, revision=revision, notice=None, card=card)


def _with_notice(model: LoadedModel, notice: str) -> LoadedModel:
    return LoadedModel(model.pipe, model.source, model.revision, notice, model.card)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""


def _no_gpu(fn=None, **kwargs):
    return fn if fn is not None else (lambda f: f)


try:  # On ZeroGPU Spaces, inference functions must carry spaces.GPU; elsewhere it is a no-op.
    import spaces  # the Hugging Face package (this repository's spaces/ folder is not a package)

    gpu = getattr(spaces, "GPU", _no_gpu)
except ImportError:  # pragma: no cover - depends on the environment
    gpu = _no_gpu
