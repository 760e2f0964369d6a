"""Which model to load and how: the source chain (argument → `$SEMFLOW_MODEL` → the embedded default), resolved once
to a folder; the models embedded in the package by name, the device/dtype policy, and the identity a model is
recorded under (never a path of the machine it runs on)."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .model_versions import version_of
from .pipeline import SemFlowPipeline

logger = logging.getLogger(__name__)

ENV_MODEL = "SEMFLOW_MODEL"
MODELS_DIR = Path(__file__).resolve().parent / "models"
# Models shipped inside the package, by the name `load_pipeline(name)` takes.
EMBEDDED_MODELS = {"semflow": MODELS_DIR / "semflow-camvid", "symmetric": MODELS_DIR / "symmetric-camvid"}
DEFAULT_MODEL = "symmetric"
EMBEDDED_MODEL = EMBEDDED_MODELS[DEFAULT_MODEL]


@dataclass(frozen=True)
class LoadedModel:
    """A pipeline and where it came from.

    Attributes:
        name: What the model is called where it is recorded (metadata rows, /model_info, the info panel): the Hub id,
            the embedded model's name, or a local folder's name; never a full path.
        revision: The Hub commit the cache resolved to, or ``sha256:<first 16 hex>`` of the weights for a folder.
        notice: Set when the requested model could not be loaded and the embedded default was used instead.
        card: The model card (README.md) text, if the folder has one.
        version: For a version a workspace promoted (`model_versions.version_of`): its promotion record, with the
            model it descends from as ``base``; its `name` is then the base's with the version's (``"… v2"``).
    """

    pipe: SemFlowPipeline
    name: str
    revision: str
    notice: str | None = None
    card: str | None = None
    folder: Path | None = None  # where it was read from (for the command line; never recorded or served)
    version: dict[str, Any] | None = None

    def identity(self) -> dict[str, str]:
        return {"model": self.name, "model_revision": self.revision}

    def describe(self) -> dict[str, Any]:
        """The model's one description (`SemFlowPipeline.describe`) with its identity first: the name and revision it
        is recorded under, and the notice of a fallback (None when the requested model was loaded)."""
        return {"model": self.name, "revision": self.revision, "notice": self.notice, **self.pipe.describe()}


def env_model(environ: Mapping[str, str] | None = None) -> str | None:
    """The model `$SEMFLOW_MODEL` names (None when unset or blank): the one place that variable is read, from
    `environ` (default: the process environment; the app's settings pass the environment they read)."""
    value = ((os.environ if environ is None else environ).get(ENV_MODEL) or "").strip()
    return value or None


def requested_model(model: str | os.PathLike | None = None) -> str:
    """The first of: `model`, `$SEMFLOW_MODEL`, the embedded default's name."""
    if model is not None and os.fspath(model):
        return os.fspath(model)
    return env_model() or DEFAULT_MODEL


@dataclass(frozen=True)
class ModelSource:
    """A model reference resolved once: the local folder it is read from and the name it is recorded under.

    Attributes:
        reference: What was asked for: an embedded model's name, a folder, or a Hub id ``org/name[@revision]``.
        folder: The folder holding it: an embedded model's, the folder itself, or a Hub model's HF-cache snapshot.
        name: The Hub id, the embedded model's folder name with " (embedded)", or a local folder's name (for a
            workspace's version, its base model's name and the version's, ``"symmetric-camvid (embedded) v2"``).
        version: A workspace version's promotion record (`model_versions.version_of`), else None.
    """

    reference: str
    folder: Path
    name: str
    hub: bool = False
    version: dict[str, Any] | None = None

    @functools.cached_property
    def revision(self) -> str:
        """The Hub commit the cache resolved to (the snapshot folder's name), or ``sha256:<16 hex>`` of the weights."""
        return self.folder.name if self.hub else weights_hash(self.folder)


def resolve_source(model: str | os.PathLike | None = None) -> ModelSource:
    """Resolve the requested model (`requested_model`) to its folder, once: nothing else looks it up again.

    Raises:
        FileNotFoundError: an embedded model is missing (a checkout without it).
        ValueError: neither an embedded name, an existing folder nor a Hub id.
    """
    from .hub import parse_model_ref, resolve_model

    source = requested_model(model)
    if source in EMBEDDED_MODELS:
        folder = EMBEDDED_MODELS[source]
        if not (folder / SemFlowPipeline.config_name).is_file():
            default = "default " if source == DEFAULT_MODEL else ""
            raise FileNotFoundError(f"the embedded {default}model is missing ('{source}', expected at {folder}); pass "
                                    f"a model folder or Hub id")
        return ModelSource(source, folder, f"{folder.name} (embedded)")
    ref = parse_model_ref(source)
    if ref.is_local:
        version = version_of(source)
        if version is not None:
            return ModelSource(source, Path(source), f"{version['base'] or 'model'} {version['version']}",
                               version=version)
        return ModelSource(source, Path(source), Path(source).resolve().name)
    return ModelSource(source, Path(resolve_model(source)), ref.repo_id_or_path, hub=True)


def model_folder(model: str | os.PathLike | None = None) -> Path:
    """The local folder `load_pipeline(model)` reads (`resolve_source`)."""
    return resolve_source(model).folder


def default_device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_process_group() -> bool:
    """Whether this process is one of several launched on a machine without CUDA (`accelerate launch --multi_gpu`
    there): such processes join one gloo group only when they ask for the CPU; one process keeps its device."""
    return not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1")) > 1


def default_dtype(device: torch.device) -> torch.dtype:
    """float16 on CUDA, float32 on the CPU (where half precision is slow)."""
    return torch.float16 if device.type == "cuda" else torch.float32


def load_model(
    model: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    fallback: bool = False,
) -> LoadedModel:
    """Load the requested model (`requested_model`) ready for inference, with its identity and card.

    Args:
        model: An embedded model's name (``"semflow"``, ``"symmetric"``), a folder, or a Hub repo id
            ``org/name[@revision]`` (through the HF cache; offline with ``HF_HUB_OFFLINE=1``).
        fallback: If the model cannot be loaded (Hub unreachable, not cached, broken folder), load the embedded
            default instead and say so in `notice`, rather than raising.
    """
    source = requested_model(model)
    try:
        return _load(source, device, dtype)
    except Exception as error:  # any failure to reach or read the model
        if not fallback or source == DEFAULT_MODEL:
            raise
        logger.warning("could not load %s: %s", source, error)
        notice = (f"Could not load the model '{source}' ({type(error).__name__}: {_first_line(error)}); using the "
                  f"embedded default model instead.")
        loaded = _load(DEFAULT_MODEL, device, dtype)
        return dataclasses.replace(loaded, notice=notice)


def load_pipeline(
    model: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> SemFlowPipeline:
    """Load a `SemFlowPipeline` ready for inference (see `load_model`).

    Args:
        model: ``None`` → ``$SEMFLOW_MODEL`` → the embedded default.
        device: Default: CUDA when available, else CPU.
        dtype: Default: float16 on CUDA, float32 on CPU.
    Raises:
        FileNotFoundError: the embedded model asked for is missing.
    """
    return load_model(model, device, dtype).pipe


def _load(reference: str, device: str | torch.device | None, dtype: torch.dtype | None) -> LoadedModel:
    source = resolve_source(reference)
    device = torch.device(device) if device is not None else default_device()
    pipe = SemFlowPipeline.from_pretrained(source.folder, dtype=dtype or default_dtype(device))  # handed the folder
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    card_file = source.folder / "README.md"
    card = card_file.read_text(encoding="utf-8") if card_file.is_file() else None
    pipe.register_to_config(_name_or_path=source.name)
    return LoadedModel(pipe=pipe, name=source.name, revision=source.revision, card=card, folder=source.folder,
                       version=source.version)


def weights_hash(folder: str | os.PathLike) -> str:
    """``sha256:<16 hex>`` over the model's safetensors files and their names: the same weights, the same hash."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*.safetensors")):
        digest.update(path.relative_to(folder).as_posix().encode())
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()[:16]


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0][:200] if text else ""
