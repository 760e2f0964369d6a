"""Import the official SemFlow checkpoint (a UNet state dict such as `face.pt`) into a `SemFlowPipeline` folder."""

from __future__ import annotations

import argparse
import os
import sys

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from .anchors import AnchorSpec
from .hub import resolve_model
from .labels import BUILTIN_LABEL_SETS, get_label_set
from .pipeline import SemFlowPipeline
from .velocity import PromptEmbedding

# Official perturbation: 0.1·(U(0,1) − 0.5) in [-1, 1] units, i.e. ±0.05·127.5 in 0..255 units.
OFFICIAL_PERTURBATION = 0.05 * 127.5
OFFICIAL_STEPS = 25


def load_official_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read an official UNet checkpoint safely (``weights_only=True``) and unwrap it to diffusers key names.

    Accepts a plain state dict, one nested under ``"module"``/``"state_dict"``/``"model"`` (DeepSpeed/accelerate
    saves), and keys prefixed with ``"module."`` or ``"unet."``.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("module", "state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    for prefix in ("module.", "unet."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def empty_prompt_embedding(base: str) -> PromptEmbedding:
    """Run the base model's CLIP text encoder once on the empty prompt (as the official code does)."""
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(base, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(base, subfolder="text_encoder", use_safetensors=None).eval()
    tokens = tokenizer("", max_length=tokenizer.model_max_length, padding="max_length", truncation=True,
                       return_tensors="pt")
    with torch.no_grad():
        hidden = text_encoder(tokens.input_ids)[0]
    embedding = PromptEmbedding(sequence_length=hidden.shape[1], hidden_size=hidden.shape[2])
    embedding.embedding.data.copy_(hidden)
    return embedding


def convert(
    unet_checkpoint: str | os.PathLike,
    base: str,
    label_set: str = "celebamask-hq",
    resolution: int = 512,
) -> SemFlowPipeline:
    """Build the pipeline: official UNet weights, UNet/VAE configs and empty-prompt embedding from the SD1.5 base,
    official anchors (k=6, s=50) and perturbation, Euler-25 defaults."""
    base = resolve_model(base)
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(base, subfolder="unet"))
    missing, unexpected = unet.load_state_dict(load_official_state_dict(unet_checkpoint), strict=False)
    if missing or unexpected:
        raise ValueError(f"{unet_checkpoint} does not match the base UNet config: {len(missing)} missing keys "
                         f"(e.g. {missing[:3]}), {len(unexpected)} unexpected keys (e.g. {unexpected[:3]})")
    vae = AutoencoderKL.from_pretrained(base, subfolder="vae")
    spec = AnchorSpec.official()
    return SemFlowPipeline(
        unet=unet.eval(),
        vae=vae.eval(),
        prompt_embedding=empty_prompt_embedding(base).eval(),
        label_set=get_label_set(label_set).to_dict(),
        anchor_k=spec.k,
        anchor_s=spec.s,
        perturbation=OFFICIAL_PERTURBATION,
        resolution=(resolution, resolution),
        synthesis_steps=OFFICIAL_STEPS,
        segmentation_steps=OFFICIAL_STEPS,
        solver="euler",
    )


MODEL_CARD = """---
library_name: diffusers
tags: [semflow, semantic-segmentation, image-synthesis, rectified-flow]
---
# SemFlow (official weights, converted)

Converted with `python -m semflow.convert_official` from the official SemFlow UNet checkpoint
`{checkpoint}` on the Stable Diffusion 1.5 base `{base}`. Label set: `{labels}`; anchors k=6, s=50;
perturbation ±{beta:g} (0..255 units); Euler {steps} steps; resolution {res}x{res}.

```python
from semflow import SemFlowPipeline
pipe = SemFlowPipeline.from_pretrained("{out}")
ids = pipe.segment(image).ids[0]
images = pipe.synthesize(ids, seed=0).images
```
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m semflow.convert_official", description=__doc__)
    parser.add_argument("--unet", required=True, help="official UNet checkpoint (.pt state dict, e.g. face.pt)")
    parser.add_argument("--base", required=True, help="Stable Diffusion 1.5 folder or Hub id (unet, vae, "
                                                      "text_encoder, tokenizer subfolders)")
    parser.add_argument("--labels", default="celebamask-hq", help=f"label set ({', '.join(BUILTIN_LABEL_SETS)} "
                                                                  "or an id2label.json)")
    parser.add_argument("--resolution", type=int, default=512, help="square model resolution (default 512)")
    parser.add_argument("--out", required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        pipe = convert(args.unet, args.base, args.labels, args.resolution)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pipe.save_pretrained(args.out)
    with open(os.path.join(args.out, "README.md"), "w", encoding="utf-8") as f:
        f.write(MODEL_CARD.format(checkpoint=os.path.basename(args.unet), base=args.base, labels=pipe.labels.name,
                                  beta=OFFICIAL_PERTURBATION, steps=OFFICIAL_STEPS, res=args.resolution,
                                  out=args.out))
    print(f"saved {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
