"""The models of one app process, each loaded once (which model, device and dtype: `semflow.loading`): the configured
one (as the version in use of its learning workspace, once one is promoted) and the embedded ones a visitor may pick
instead; and the ZeroGPU decorator the functions running them carry."""

from __future__ import annotations

import dataclasses
import importlib.machinery
import importlib.util
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from semflow.loading import DEFAULT_MODEL, EMBEDDED_MODELS, LoadedModel, load_model, requested_model
from semflow.model_versions import ModelVersions

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]  # the folder app.py (and this project's own spaces/ folder) is in


class Models:
    """The configured model (`configured`: an embedded model's name, a folder or a Hub id; None: `$SEMFLOW_MODEL`,
    else the embedded default) and the embedded models of `offered`, each loaded on first use. The configured model
    falls back to the embedded default with a notice when it cannot be loaded (the app must still start). With
    `versions` (its learning workspace's), the configured model is served as the version in use there, followed as it
    changes (a promotion or a roll-back, by this process or another)."""

    def __init__(self, configured: str | None = None, offered: Mapping[str, Path] = EMBEDDED_MODELS,
                 load: Callable[..., LoadedModel] = load_model, versions: ModelVersions | None = None) -> None:
        self.configured, self.offered, self._load = configured, dict(offered), load
        self.versions = versions
        self._lock = threading.Lock()
        self._loaded: dict[str | None, LoadedModel] = {}  # by choice; None: the configured model
        self._served: Path | None = None  # the version folder the configured model is loaded from (None: the base)
        self._fell_back = False  # the configured model could not be loaded: the embedded default serves instead

    @classmethod
    def of(cls, loaded: LoadedModel) -> Models:
        """Only `loaded`, as the configured model (tests and scripts that bring their own)."""
        models = cls(offered={})
        models._loaded[None] = loaded
        models._fell_back = loaded.notice is not None
        return models

    def get(self, choice: str | None = None) -> LoadedModel:
        """The model of `choice` (one of `choices`), or for None the configured one (the version in use)."""
        with self._lock:
            served = self._version_in_use()
            if None not in self._loaded or served != self._served:
                self._loaded[None] = self._load_configured(served)
                self._served = served
            if choice is None or choice == self._configured_choice(self._loaded[None]):
                return self._loaded[None]
            if choice not in self._loaded:
                self._loaded[choice] = self._load(choice)
            return self._loaded[choice]

    def choices(self) -> list[str]:
        """What a visitor may pick: the configured model first (by its name, never a path), then the offered
        embedded models present in this install."""
        configured = self._configured_choice(self.get())
        return [configured, *(name for name, folder in self.offered.items()
                              if name != configured and folder.is_dir())]

    def _version_in_use(self) -> Path | None:
        if self.versions is None:
            return None
        try:
            return self.versions.current_folder()
        except (OSError, ValueError) as error:  # a damaged record: the base model serves, and the log says why
            logger.warning("reading the model versions in %s: %r", self.versions.folder, error)
            return None

    def _load_configured(self, version: Path | None) -> LoadedModel:
        """The configured model, as the version in use when there is one (its base, with a notice, when the version
        cannot be loaded)."""
        problem = None
        if version is not None:
            try:
                loaded = self._load(str(version))
                self._fell_back = False
                return loaded
            except Exception as error:  # a folder removed or damaged by hand
                logger.warning("could not load the version %s: %r", version, error)
                problem = f"Could not load the learned version {version.name} ({type(error).__name__}); serving the " \
                          f"base model."
        base = self._load(self.configured, fallback=True)
        self._fell_back = base.notice is not None
        if problem:
            base = dataclasses.replace(base, notice=f"{base.notice} {problem}" if base.notice else problem)
        return base

    def _configured_choice(self, loaded: LoadedModel) -> str:
        """The configured model as a choice: an embedded model by its name (also when the app fell back to it); a
        version in use by its base's name, so that a tab's choice stays valid across promotions."""
        if self._fell_back:
            return DEFAULT_MODEL
        source = requested_model(self.configured)
        if source in self.offered:
            return source
        return (loaded.version or {}).get("base") or loaded.name


def model_identity(loaded: LoadedModel) -> str:
    """The model as a saved version records what it started from: ``name@revision`` (a Hub id and commit, or an
    embedded or local model's name and weights hash; never a path)."""
    identity = loaded.identity()
    return f"{identity['model']}@{identity['model_revision']}"


def _no_gpu(fn=None, **kwargs):
    return fn if fn is not None else (lambda f: f)


def hugging_face_spaces():
    """The Hugging Face `spaces` package, or None where it is not installed. From this project's root a plain
    ``import spaces`` can also find the project's own spaces/ folder (no __init__.py: a namespace package) first, or
    get it from an earlier import; the package is then looked for on the rest of the path."""
    module = sys.modules.get("spaces")
    if module is not None and getattr(module, "__file__", None):
        return module
    path = [entry for entry in sys.path if Path(entry or ".").resolve() != ROOT]
    spec = importlib.machinery.PathFinder.find_spec("spaces", path)
    if spec is None or spec.origin is None or spec.loader is None:  # absent, or only namespace folders
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["spaces"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["spaces"]
        raise
    return module


# On ZeroGPU Spaces, inference functions must carry spaces.GPU; elsewhere it is a no-op.
gpu = getattr(hugging_face_spaces(), "GPU", _no_gpu)
