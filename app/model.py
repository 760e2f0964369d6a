"""The app's one model, loaded once per process (which model, device and dtype: `semflow.loading`), and the ZeroGPU
decorator that the functions running it carry."""

from __future__ import annotations

import threading

from semflow.loading import LoadedModel, load_model

_lock = threading.Lock()
_loaded: LoadedModel | None = None


def get_model() -> LoadedModel:
    """The process-wide model, loaded on first use; a model that cannot be loaded falls back to the embedded default
    with a notice (the app must still start)."""
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = load_model(fallback=True)
        return _loaded


def _no_gpu(fn=None, **kwargs):
    return fn if fn is not None else (lambda f: f)


try:  # On ZeroGPU Spaces, inference functions must carry spaces.GPU; elsewhere it is a no-op.
    import spaces  # the Hugging Face package (this repository's spaces/ folder is not a package)

    gpu = getattr(spaces, "GPU", _no_gpu)
except ImportError:  # pragma: no cover - depends on the environment
    gpu = _no_gpu
