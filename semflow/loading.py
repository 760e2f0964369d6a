"""Which model to load and how: the source chain (argument → `$SEMFLOW_MODEL` → the embedded default), the models
embedded in the package by name, the device/dtype policy, and the identity a model is recorded under (never a path
of the machine it runs on)."""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch

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
    """

    pipe: SemFlowPipeline
    name: str
    revision: str
    notice: str | None = None
    card: str | None = None

    def identity(self) -> dict[str, str]:
        return {"model": self.name, "model_revision": self.revision}


def requested_model(model: str | os.PathLike | None = None) -> str:
    """The first of: `model`, `$SEMFLOW_MODEL`, the embedded default's name."""
    if model is not None and os.fspath(model):
        return os.fspath(model)
    if os.environ.get(ENV_MODEL):
        return os.environ[ENV_MODEL]
    return DEFAULT_MODEL


def model_folder(model: str | os.PathLike | None = None) -> Path:
    """The local folder `load_pipeline(model)` reads: an embedded model's folder, the folder itself, or a Hub model's
    HF-cache snapshot.

    Raises:
        FileNotFoundError: an embedded model is missing (a checkout without it).
    """
    from .hub import resolve_model

    source = requested_model(model)
    if source in EMBEDDED_MODELS:
        folder = EMBEDDED_MODELS[source]
        if not (folder / SemFlowPipeline.config_name).is_file():
            default = "default " if source == DEFAULT_MODEL else ""
            raise FileNotFoundError(f"the embedded {default}model is missing ('{source}', expected at {folder}); pass "
                                    f"a model folder or Hub id")
        return folder
    return Path(resolve_model(source))


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
        return LoadedModel(loaded.pipe, loaded.name, loaded.revision, notice, loaded.card)


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


def _load(source: str, device: str | torch.device | None, dtype: torch.dtype | None) -> LoadedModel:
    from .hub import parse_model_ref

    folder = model_folder(source)
    device = torch.device(device) if device is not None else default_device()
    pipe = SemFlowPipeline.from_pretrained(folder, dtype=dtype or default_dtype(device))
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    card = (folder / "README.md").read_text(encoding="utf-8") if (folder / "README.md").is_file() else None
    if source in EMBEDDED_MODELS:
        name, revision = f"{folder.name} (embedded)", weights_hash(folder)
    elif parse_model_ref(source).is_local:
        name, revision = folder.resolve().name, weights_hash(folder)
    else:
        name, revision = parse_model_ref(source).repo_id_or_path, folder.name  # the snapshot folder is the commit
    pipe.register_to_config(_name_or_path=name)
    return LoadedModel(pipe=pipe, name=name, revision=revision, card=card)


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
