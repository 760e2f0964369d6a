"""The app's models, each loaded once per process (which model, device and dtype: `semflow.loading`): the configured
one and the embedded ones a visitor may pick instead; and the ZeroGPU decorator the functions running them carry."""

from __future__ import annotations

import threading

from semflow.loading import DEFAULT_MODEL, EMBEDDED_MODELS, LoadedModel, load_model, requested_model

_lock = threading.Lock()
_loaded: dict[str | None, LoadedModel] = {}  # by choice; None: the configured model


def get_model(choice: str | None = None) -> LoadedModel:
    """The model of `choice` (one of `model_choices`), or for None the configured one (`SEMFLOW_MODEL`, a built
    Space's model, the embedded default), loaded on first use. The configured model falls back to the embedded default
    with a notice when it cannot be loaded (the app must still start)."""
    with _lock:
        if None not in _loaded:
            _loaded[None] = load_model(fallback=True)
        if choice is None or choice == _configured_choice(_loaded[None]):
            return _loaded[None]
        if choice not in _loaded:
            _loaded[choice] = load_model(choice)
        return _loaded[choice]


def model_choices() -> list[str]:
    """What a visitor may pick: the configured model first (by its name, never a path), then the embedded models
    present in this install."""
    configured = _configured_choice(get_model())
    return [configured, *(name for name, folder in EMBEDDED_MODELS.items() if name != configured and folder.is_dir())]


def _configured_choice(loaded: LoadedModel) -> str:
    """The configured model as a choice: an embedded model by its name (also when the app fell back to it)."""
    if loaded.notice:
        return DEFAULT_MODEL
    source = requested_model()
    return source if source in EMBEDDED_MODELS else loaded.name


def _no_gpu(fn=None, **kwargs):
    return fn if fn is not None else (lambda f: f)


try:  # On ZeroGPU Spaces, inference functions must carry spaces.GPU; elsewhere it is a no-op.
    import spaces  # the Hugging Face package (this repository's spaces/ folder is not a package)

    gpu = getattr(spaces, "GPU", _no_gpu)
except ImportError:  # pragma: no cover - depends on the environment
    gpu = _no_gpu
