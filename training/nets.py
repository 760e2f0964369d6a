"""The velocity nets a run can start fresh: a from-scratch `UNet2DModel`, or an `EncoderUNet` whose trunk starts from
ImageNet; and loading either back from a saved folder by its config's class name."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from diffusers import UNet2DModel
from diffusers.utils import CONFIG_NAME

from semflow import EncoderUNet

NETS = {"unet2d": UNet2DModel, "encoder-unet": EncoderUNet}


def fresh_net(kind: str, in_channels: int, out_channels: int, sample_size: tuple[int, int],
              settings: dict[str, Any]) -> UNet2DModel | EncoderUNet:
    """A new net of `kind` (``"unet2d"`` or ``"encoder-unet"``) with `settings` (the config's ``unet`` mapping) and the
    given channels; `sample_size` is in the net's input units. An `EncoderUNet` trunk starts from ImageNet."""
    if kind not in NETS:
        raise ValueError(f"net must be one of {sorted(NETS)}, got {kind!r}")
    config = dict(in_channels=in_channels, out_channels=out_channels, sample_size=tuple(sample_size), **settings)
    if kind == "encoder-unet":
        return EncoderUNet.from_imagenet(**config)
    return UNet2DModel(**config)


def load_net(folder: str | os.PathLike) -> UNet2DModel | EncoderUNet:
    """A saved net (its config + safetensors) of either kind, by the class name its config records."""
    name = json.loads((Path(folder) / CONFIG_NAME).read_text()).get("_class_name")
    classes = {cls.__name__: cls for cls in NETS.values()}
    if name not in classes:
        raise ValueError(f"{folder} holds a {name!r}, not one of {sorted(classes)}")
    return classes[name].from_pretrained(folder)
