"""Codecs: the pixel codec is exact both ways; the VAE codec applies the config's scaling factor."""

import pytest
import torch
from diffusers import AutoencoderKL

from semflow.codec import PixelCodec, VAECodec


@pytest.mark.parametrize("factor", [1, 2, 4, 8])
def test_pixel_codec_round_trip_is_exact(factor):
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(factor)) * 2 - 1
    codec = PixelCodec(factor)
    z = codec.encode(x)
    assert z.shape == (2, 3 * factor**2, 16 // factor, 24 // factor) == (2, codec.latent_channels, 16 // factor,
                                                                         24 // factor)
    assert torch.equal(codec.decode(z), x)
    assert torch.equal(codec.encode(codec.decode(z)), z)


def test_pixel_codec_rejects_bad_factor():
    with pytest.raises(ValueError, match="pixel_factor"):
        PixelCodec(0)


def test_vae_codec_scales_latents():
    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=4,
                        scaling_factor=0.18215).eval()
    codec = VAECodec(vae)
    assert (codec.latent_channels, codec.downsample) == (4, 2)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        z = codec.encode(x)
        assert torch.allclose(z, vae.encode(x).latent_dist.mode() * 0.18215)
        assert torch.allclose(codec.decode(z), vae.decode(z / 0.18215).sample)
        sampled = codec.encode(x, torch.Generator().manual_seed(0))
    assert sampled.shape == z.shape and not torch.equal(sampled, z)
