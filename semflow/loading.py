"""`load_pipeline`: the model a user asked for, else `SEMFLOW_MODEL`, else the default shipped inside the package."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .pipeline import SemFlowPipeline

ENV_MODEL = "SEMFLOW_MODEL"
EMBEDDED_MODEL = Path(__file__).resolve().parent / "default_model"


def default_model_source() -> str:
    """What `load_pipeline()` would load with no argument: `$SEMFLOW_MODEL` if set, else the embedded folder."""
    return os.environ.get(ENV_MODEL) or str(EMBEDDED_MODEL)


def model_folder(model: str | os.PathLike | None = None) -> Path:
    """The local folder `load_pipeline(model)` reads: the folder itself, or a Hub model's HF-cache snapshot."""
    from .hub import resolve_model

    return Path(resolve_model(os.fspath(model) if model is not None else default_model_source()))


def load_pipeline(
    model: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> SemFlowPipeline:
    """Load a `SemFlowPipeline` ready for inference.

    Args:
        model: A folder, or a Hub repo id ``org/name[@revision]`` (through the HF cache; offline with
            ``HF_HUB_OFFLINE=1``). ``None`` → ``$SEMFLOW_MODEL`` → the embedded default model.
        device: Default: CUDA when available, else CPU.
        dtype: Default: float16 on CUDA, float32 on CPU.
    Raises:
        FileNotFoundError: the embedded default is missing (a checkout without it).
    """
    source = os.fspath(model) if model is not None else default_model_source()
    if source == str(EMBEDDED_MODEL) and not (EMBEDDED_MODEL / "model_index.json").is_file():
        raise FileNotFoundError(f"no model given, ${ENV_MODEL} is unset and the embedded default model is missing "
                                f"at {EMBEDDED_MODEL}; pass a model folder or Hub id")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    pipe = SemFlowPipeline.from_pretrained(source, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)
