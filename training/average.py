"""Weight averaging ("model soups", Wortsman et al. 2022): one model whose net is the weighted mean of trained nets of
the same architecture, written as a model folder with its own config, summary (every source's lineage) and card."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import torch
from diffusers.utils import CONFIG_NAME, SAFETENSORS_WEIGHTS_NAME
from safetensors import safe_open

from semflow import SemFlowPipeline
from semflow.loading import model_folder

from .card import write_model_card
from .run_folder import CONFIG_FILE, SUMMARY_FILE, RunFolder
from .train import init_lineage, save_final

DATA_KEYS = ("dataset", "train_split")  # what every source must have been trained on alike
NET = "unet"  # the pipeline component that is averaged
SETTINGS_FILES = (SemFlowPipeline.config_name, f"{NET}/{CONFIG_NAME}")  # what every source must have alike


def average_state_dicts(states: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """θ = Σ_i w_i θ_i for every floating tensor (in float32, back in its dtype); integer buffers (a batch-norm's
    step count) must agree and are kept.

    Raises:
        ValueError: the nets differ in tensor names or shapes, or in an integer buffer.
    """
    first = states[0]
    for i, state in enumerate(states[1:], start=2):
        if state.keys() != first.keys():
            missing, extra = sorted(first.keys() - state.keys()), sorted(state.keys() - first.keys())
            raise ValueError(f"model {i} has other tensors than model 1 (missing {missing[:3]}, extra {extra[:3]}): "
                             f"only nets of one architecture can be averaged")
        for name, tensor in state.items():
            if tensor.shape != first[name].shape:
                raise ValueError(f"model {i}'s {name} is {tuple(tensor.shape)}, model 1's {tuple(first[name].shape)}: "
                                 f"only nets of one architecture can be averaged")
    averaged = {}
    for name, tensor in first.items():
        if tensor.is_floating_point():
            mean = sum(w * state[name].float() for w, state in zip(weights, states))
            averaged[name] = mean.to(tensor.dtype)
        elif all(torch.equal(state[name], tensor) for state in states[1:]):
            averaged[name] = tensor.clone()
        else:
            raise ValueError(f"the integer buffer {name} differs between the models; it cannot be averaged")
    return averaged


def normalised(weights: list[float] | None, count: int) -> list[float]:
    """The mixing weights, scaled to sum to 1 (equal weights when None).

    Raises:
        ValueError: a count other than one per model, or a weight that is not positive.
    """
    weights = [1.0] * count if weights is None else list(weights)
    if len(weights) != count:
        raise ValueError(f"{len(weights)} weights for {count} models: give one weight per model")
    if any(not w > 0 for w in weights):
        raise ValueError(f"weights must be positive (got {weights}): this tool interpolates, it does not extrapolate")
    total = sum(weights)
    return [w / total for w in weights]


def average_models(models: list[str], output_dir: Path, weights: list[float] | None = None,
                   command: str | None = None) -> Path:
    """Average the nets of `models` (folders, embedded names or Hub ids) into a new model folder `output_dir`.

    The pipeline settings (model_index.json) and net configs must be identical and the sources trained on the same
    data; the weights are saved in half precision when every source's are.

    Raises:
        ValueError: fewer than two models, differing settings or data, or an `output_dir` that already holds a model.
    """
    if len(models) < 2:
        raise ValueError(f"averaging needs at least two models (got {len(models)})")
    weights = normalised(weights, len(models))
    output_dir = Path(output_dir)
    if (output_dir / SemFlowPipeline.config_name).exists():
        raise ValueError(f"{output_dir} already holds a model; choose a new --output-dir")
    folders = [model_folder(model) for model in models]
    for model, folder in zip(models[1:], folders[1:]):
        for name in SETTINGS_FILES:
            if _settings(folders[0] / name) != _settings(folder / name):
                raise ValueError(f"{model}'s {name} differs from {models[0]}'s: only models with the same settings "
                                 f"and net can be averaged")
    configs = [RunFolder(folder).read(CONFIG_FILE) or {} for folder in folders]
    data = {key: configs[0].get(key) for key in DATA_KEYS}
    for model, config in zip(models[1:], configs[1:]):
        if {key: config.get(key) for key in DATA_KEYS} != data:
            raise ValueError(f"{model} was trained on other data than {models[0]} ({DATA_KEYS}); averaging them is "
                             f"not supported")
    pipes = [SemFlowPipeline.from_pretrained(folder) for folder in folders]
    averaged = average_state_dicts([pipe.unet.state_dict() for pipe in pipes], weights)
    model = pipes[0]
    model.unet.load_state_dict(averaged)
    save_dtype = "fp16" if all(_stored_half(folder) for folder in folders) else "fp32"
    save_final(model, output_dir, save_dtype)
    sources = [{**init_lineage(name), "weight": weight} for name, weight in zip(models, weights)]
    config = {**data, "averaged_from": models, "weights": weights}
    first = RunFolder(folders[0]).read(SUMMARY_FILE) or {}
    summary = {"command": command or _command(models, output_dir, weights), "steps": 0, "wall_clock_s": 0.0,
               "device": "cpu", "num_processes": 1, "save_dtype": save_dtype, "train_rows": first.get("train_rows"),
               "data_license": first.get("data_license"), "averaged_from": sources}
    run = RunFolder(output_dir)
    run.write(CONFIG_FILE, config)
    run.write(SUMMARY_FILE, summary)
    write_model_card(output_dir, config, summary)
    return output_dir


def _settings(path: Path) -> dict[str, Any]:
    """A config file without the keys that name versions or the file's origin."""
    return {k: v for k, v in json.loads(path.read_text()).items() if k not in ("_diffusers_version", "_name_or_path")}


def _stored_half(folder: Path) -> bool:
    """Whether the net's saved floating weights are float16."""
    with safe_open(str(folder / NET / SAFETENSORS_WEIGHTS_NAME), "pt") as f:
        dtypes = [f.get_slice(name).get_dtype() for name in f.keys()]
    return all(dtype == "F16" for dtype in dtypes if dtype.startswith(("F", "BF")))


def _command(models: list[str], output_dir: Path, weights: list[float]) -> str:
    return (f"python -m training.average {' '.join(shlex.quote(m) for m in models)} --output-dir "
            f"{shlex.quote(str(output_dir))} --weights {' '.join(f'{w:g}' for w in weights)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.average", description=__doc__)
    parser.add_argument("models", nargs="+", help="two or more model folders, embedded names or Hub ids")
    parser.add_argument("--output-dir", required=True, type=Path, help="the new model folder")
    parser.add_argument("--weights", nargs="+", type=float, default=None,
                        help="one positive weight per model, scaled to sum to 1 (default: equal)")
    args = parser.parse_args(argv)
    given = sys.argv[1:] if argv is None else argv
    command = "python -m training.average " + " ".join(shlex.quote(a) for a in given)
    try:
        folder = average_models(args.models, args.output_dir, args.weights, command)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"averaged {len(args.models)} models into {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
