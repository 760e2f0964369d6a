"""Building the model a run trains: a fresh preset net in either formulation, an SD1.5 base, an existing SemFlow model
to fine-tune, or a study baseline."""

from __future__ import annotations

from typing import Any

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel, UNet2DModel

from semflow import SemFlowPipeline
from semflow.anchors import AnchorSpec
from semflow.codec import PixelCodec
from semflow.encoder_unet import OUTPUT_STRIDE, RGB, EncoderUNet
from semflow.formulation import Formulation, get_formulation
from semflow.labels import LabelSet
from semflow.pipeline import mask_head_channels
from semflow.velocity import TIMESTEP_SCALE

from .baselines import BASELINES, SEGMENTER_TIME, Baseline
from .config import TrainConfig
from .nets import fresh_net
from .trainable import Trainable

GROWN_SETTING = "extra_decoder_blocks"  # the one `unet` setting a run that starts from a trained model applies to it


def build_pipeline(config: TrainConfig, labels: LabelSet,
                   init: SemFlowPipeline | None = None) -> Trainable:
    """The pipeline whose velocity net a run trains.

    - `init` (loaded from ``init_from``): an existing SemFlow model, re-labelled with `labels` when they differ;
      its anchors, β, resolution and codec are kept because its net learned them; a model asked for another
      ``formulation`` is carried into it (`reformulate`), and its net grows when ``unet`` asks for more decoder
      blocks (`grow`).
    - ``base_model`` (SD1.5 preset): UNet2DConditionModel and VAE from the base, the empty-prompt embedding.
    - a study baseline (``formulation`` "cross-entropy" or "conditional-flow"): `training.baselines.Baseline`.
    - otherwise: a fresh net (``net``: a UNet2DModel from scratch, or an EncoderUNet with its trunk from ImageNet) on
      the exact pixel codec, with the state channels of ``formulation``.
    """
    formulation = config.formulation or (init.config.formulation if init is not None else "semflow")
    prediction = config.prediction or (init.config.prediction if init is not None else "velocity")
    if init is not None:
        return grow(reformulate(relabel(init, labels), formulation, prediction, config.perturbation), config.unet)
    if formulation in BASELINES:
        return Baseline.build(formulation, labels, config.pixel_factor, tuple(config.resolution), config.net,
                              config.unet, config.synthesis_steps)
    common: dict[str, Any] = dict(
        label_set=labels.to_dict(),
        anchor_k=config.anchor_k,
        anchor_s=config.anchor_s,
        perturbation=config.perturbation,
        resolution=tuple(config.resolution),
        synthesis_steps=config.synthesis_steps,
        segmentation_steps=config.segmentation_steps,
        formulation=formulation,
        prediction=prediction,
        mask_head=config.mask_head,
    )
    if config.anchor_k is None:
        spread = AnchorSpec.spread(labels.num_classes)
        common.update(anchor_k=spread.k, anchor_s=spread.s)
    if config.base_model:
        from semflow.convert_official import empty_prompt_embedding
        from semflow.hub import resolve_model

        base = resolve_model(config.base_model)
        unet = UNet2DConditionModel.from_pretrained(base, subfolder="unet")
        vae = AutoencoderKL.from_pretrained(base, subfolder="vae")
        return SemFlowPipeline(unet=unet, vae=vae, prompt_embedding=empty_prompt_embedding(base), **common)
    factor = config.pixel_factor
    height, width = config.resolution
    flow = get_formulation(formulation, prediction)
    channels = flow.state_channels(3 * factor**2)
    outputs = mask_head_channels(config.mask_head, flow, PixelCodec(factor), labels.num_classes)
    unet = fresh_net(config.net, channels, outputs, (height // factor, width // factor), config.unet)
    if config.init_net_from:
        unet = start_from_segmenter(unet, config.init_net_from, flow)
    return SemFlowPipeline(unet=unet, pixel_factor=factor, **common)


def start_from_segmenter(unet: EncoderUNet, folder: str, formulation: Formulation) -> EncoderUNet:
    """A fresh flow net that starts from a trained cross-entropy segmenter's net (a study baseline's folder, same
    trunk and decoder): every weight the two share (time embedding, trunk, decoder) is the segmenter's; the weights
    that read the state keep the segmenter's for the image channels and start at zero for the others; the output
    convolution starts at zero (its targets are new), but for a net with the classes mask head, whose class logits
    are the segmenter's own (the output's last channels, in the same pixel-shuffle layout). The time embedding is
    shifted so that the flow's image end sees what the segmenter saw at its time: with the classes head the new net
    segments, at the image end, exactly as the segmenter does. A net with more decoder blocks than the segmenter
    starts from it at the segmenter's blocks, then grows (`EncoderUNet.grow`: still exactly as it segments).

    Raises:
        ValueError: the folder holds no cross-entropy segmenter, or its net differs beyond its channels and its
            decoder blocks (no fewer than the segmenter's).
    """
    segmenter = Baseline.from_pretrained(folder)
    source = segmenter.unet
    if segmenter.kind != "cross-entropy" or not isinstance(unet, EncoderUNet) or not isinstance(source, EncoderUNet):
        raise ValueError(f"{folder} holds no cross-entropy segmenter on an EncoderUNet to start a fresh EncoderUNet "
                         f"from")
    differing = sorted(key for key in ("encoder", "decoder_channels", "time_embedding_dim")
                       if list(_listed(source.config[key])) != list(_listed(unet.config[key])))
    if not differing and list(unet.config[GROWN_SETTING]) != list(source.config[GROWN_SETTING]):
        wanted = list(unet.config[GROWN_SETTING])
        unet = EncoderUNet.from_config(unet.config, **{GROWN_SETTING: list(source.config[GROWN_SETTING])})
        return start_from_segmenter(unet, folder, formulation).grow(wanted)
    if differing:
        raise ValueError(f"the segmenter in {folder} differs from the net to train in {differing}")
    state, inputs = unet.state_dict(), state_inputs(unet)
    classes = unet.config.out_channels == RGB + source.config.out_channels  # the classes mask head's layout
    for key, value in source.state_dict().items():
        if key in inputs:  # the image channels carry over, the rest start at zero
            start, per_channel = inputs[key]
            new = state_view(state[key].zero_(), start, unet.config.in_channels, per_channel)
            formulation.image_part(new)[:] = state_view(value, start, source.config.in_channels, per_channel)
            state[key][:, :start] = value[:, :start]
        elif key.startswith("conv_out."):
            state[key].zero_()
            if classes:  # the segmenter's logits, after the image's channels
                state[key][RGB * OUTPUT_STRIDE**2 :] = value
        else:
            state[key] = value
    # the segmenter's time, moved to the flow's image end: linear_1 sees proj(image end) where the segmenter saw
    # proj(its time), so at the image end the time embedding, and all it conditions, is the segmenter's exactly
    timesteps = torch.tensor([SEGMENTER_TIME, formulation.image_time]) * TIMESTEP_SCALE
    seen, image_end = unet.time_proj(timesteps).float()
    state["time_embedding.linear_1.bias"] += state["time_embedding.linear_1.weight"] @ (seen - image_end)
    unet.load_state_dict(state)
    return unet


def _listed(value: Any) -> Any:
    return value if isinstance(value, (list, tuple)) else [value]


def relabel(pipe: SemFlowPipeline, labels: LabelSet) -> SemFlowPipeline:
    """The same nets and anchors with another label set.

    Raises:
        ValueError: the new classes do not fit the model's anchor grid.
    """
    if labels == pipe.labels:
        return pipe
    try:
        pipe.anchor_spec.check(labels.num_classes)
    except ValueError as error:
        raise ValueError(f"the label set '{labels.name}' ({labels.num_classes} classes) does not fit the model's "
                         f"anchor grid: {error}. Fine-tune with fewer classes, or train a new model.") from None
    return pipe.with_changes(label_set=labels.to_dict())


def reformulate(pipe: SemFlowPipeline, formulation: str, prediction: str, perturbation: float) -> SemFlowPipeline:
    """The same net in another formulation, to fine-tune a model into it (a paper-formulation model into the
    symmetric one, or an `EncoderUNet` either way).

    The states differ in channels (the paper's: the picture; the symmetric: image, mask): every weight that reads the
    state keeps its weights for the image channels, and starts at zero for the symmetric's mask channels; the output
    convolution starts at zero (its targets are new). Everything between (time embedding, trunk, decoder) is kept.

    Raises:
        ValueError: any other change of formulation or net.
    """
    if (formulation, prediction) == (pipe.config.formulation, pipe.config.prediction):
        return pipe
    if pipe.config.mask_head != "anchors":
        raise ValueError(f"a model with the {pipe.config.mask_head} mask head is fine-tuned in its own formulation "
                         f"({pipe.config.formulation}, predicting {pipe.config.prediction})")
    source, target = pipe.formulation, get_formulation(formulation, prediction)
    widening = (pipe.config.formulation, formulation) == ("semflow", "symmetric")
    if not (isinstance(pipe.unet, EncoderUNet) or widening and isinstance(pipe.unet, UNet2DModel)):
        raise ValueError(f"a {pipe.config.formulation} model predicting {pipe.config.prediction} can only be "
                         f"fine-tuned as it is (or a 'semflow' UNet2DModel into 'symmetric', or an EncoderUNet "
                         f"into either), not into {formulation} predicting {prediction}")
    channels = target.state_channels(pipe.codec.latent_channels)
    # keyword overrides: a config's `_use_default_values` would put a merged-in key back to its default
    unet = type(pipe.unet).from_config(pipe.unet.config, in_channels=channels, out_channels=channels)
    state = unet.state_dict()
    inputs = state_inputs(pipe.unet)
    for key, value in pipe.unet.state_dict().items():
        if key in inputs:  # the image channels carry over, the rest start at zero
            start, per_channel = inputs[key]
            old = state_view(value, start, pipe.unet.config.in_channels, per_channel)
            new = state_view(state[key].zero_(), start, channels, per_channel)
            target.image_part(new)[:] = source.image_part(old)
            state[key][:, :start] = value[:, :start]
        elif key.startswith("conv_out."):
            state[key].zero_()
        else:
            state[key] = value
    unet.load_state_dict(state)
    return pipe.with_changes(unet=unet, formulation=formulation, prediction=prediction, perturbation=perturbation)


def grow(pipe: SemFlowPipeline, settings: dict[str, Any]) -> SemFlowPipeline:
    """The model with its net grown when a run that starts from it asks, in its ``unet`` settings, for more decoder
    blocks than the net has (`EncoderUNet.grow`: the grown net computes what the net did until trained). The trained
    net's other settings are its own, as before.

    Raises:
        ValueError: decoder blocks asked of a net that is not an `EncoderUNet`, or fewer than it has.
    """
    wanted = settings.get(GROWN_SETTING)
    if wanted is None or list(wanted) == list(getattr(pipe.unet.config, GROWN_SETTING, [])):
        return pipe
    if not isinstance(pipe.unet, EncoderUNet):
        raise ValueError(f"only an EncoderUNet's decoder grows; the model to start from has a "
                         f"{type(pipe.unet).__name__} (drop {GROWN_SETTING!r} from the run's unet settings)")
    return pipe.with_changes(unet=pipe.unet.grow(wanted))


def state_inputs(net: UNet2DModel | EncoderUNet) -> dict[str, tuple[int, int]]:
    """The weights that read the state: key → (first input channel of the state, entries per state channel)."""
    if isinstance(net, UNet2DModel):
        return {"conv_in.weight": (0, 1)}
    last = len(net.merge) - 1  # the decoder's last merge reads the state space-to-depth, after the path and the skip
    merge = net.merge[last].weight
    return {"trunk.stem.0.weight": (0, 1),
            f"merge.{last}.weight": (merge.shape[1] - net.config.in_channels * OUTPUT_STRIDE**2, OUTPUT_STRIDE**2)}


def state_view(weight: torch.Tensor, start: int, channels: int, per_channel: int) -> torch.Tensor:
    """A view of a weight's input channels from `start` with the state's channels on dim 1, as a state is laid out."""
    return weight.narrow(1, start, channels * per_channel).unflatten(1, (channels, per_channel))
