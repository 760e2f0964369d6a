"""The velocity net (a diffusers UNet or an `EncoderUNet`): calling it at (x_t, t) with t·1000, its input-size
multiple, and the stored empty-prompt embedding of the SD layout."""

from __future__ import annotations

from typing import Union

import torch
from diffusers import ModelMixin, UNet2DConditionModel, UNet2DModel
from diffusers.configuration_utils import ConfigMixin, register_to_config

from .encoder_unet import EncoderUNet

VelocityNet = Union[UNet2DModel, UNet2DConditionModel, EncoderUNet]

TIMESTEP_SCALE = 1000.0  # the net sees t·1000, as in the official code


class PromptEmbedding(ModelMixin, ConfigMixin):
    """A fixed text-encoder output (the CLIP embedding of the empty prompt), computed once and stored.

    The official SD1.5 layout conditions its `UNet2DConditionModel` on this constant; storing it means the
    pipeline needs neither the text encoder nor the tokenizer at run time.
    """

    @register_to_config
    def __init__(self, sequence_length: int = 77, hidden_size: int = 768) -> None:
        super().__init__()
        self.embedding = torch.nn.Parameter(torch.zeros(1, sequence_length, hidden_size), requires_grad=False)

    def forward(self, batch_size: int) -> torch.Tensor:
        """(batch_size, sequence_length, hidden_size) copies of the embedding."""
        return self.embedding.expand(batch_size, -1, -1)


def size_multiple(net: VelocityNet) -> int:
    """The net's input sides must be multiples of this: its deepest downsampling."""
    if isinstance(net, EncoderUNet):
        return net.size_multiple
    return 2 ** (len(net.config.block_out_channels) - 1)


def net_output(
    net: VelocityNet,
    x_t: torch.Tensor,
    t: float | torch.Tensor,
    prompt_embedding: PromptEmbedding | None = None,
) -> torch.Tensor:
    """net(x_t, t·1000): the net's output at state `x_t` and time `t` ∈ [0, 1] — the velocity, or what the net was
    trained to predict instead (the clean ends with data prediction, a baseline's class logits).

    Args:
        net: `UNet2DModel` or `EncoderUNet` (unconditional), or `UNet2DConditionModel` (needs `prompt_embedding`).
        x_t: (B, C, h, w) state in the net's space.
        t: A float for the whole batch or a (B,) tensor.
    Returns:
        (B, C, h, w) output, in the dtype of `x_t`.
    """
    batch = x_t.shape[0]
    param = next(net.parameters())
    if torch.is_tensor(t) and t.dim() == 1:
        t = t.to(device=x_t.device, dtype=torch.float32)
    else:
        t = torch.full((batch,), float(t), device=x_t.device, dtype=torch.float32)
    timesteps = t * TIMESTEP_SCALE
    sample = x_t.to(param.dtype)
    if isinstance(net, UNet2DConditionModel):
        if prompt_embedding is None:
            raise ValueError("a UNet2DConditionModel velocity net needs a prompt_embedding")
        encoder_hidden_states = prompt_embedding(batch).to(device=sample.device, dtype=param.dtype)
        output = net(sample, timesteps, encoder_hidden_states=encoder_hidden_states, return_dict=False)[0]
    else:
        output = net(sample, timesteps, return_dict=False)[0]
    return output.to(x_t.dtype)
