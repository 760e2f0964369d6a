"""`SemFlowPipeline`: one flow ODE between images and masks, integrated image → mask to segment and mask → image to
synthesize, in the paper's formulation or the symmetric one."""

from __future__ import annotations

import inspect
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import PIL.Image
import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from diffusers.utils import CONFIG_NAME
from tqdm.auto import tqdm

from .anchors import AnchorSpec, anchor_colors, encode_anchors, nearest_anchors, to_model_units
from .codec import Codec, PixelCodec, VAECodec
from .deprecation import renamed_keywords
from .description import describe_lines, model_records  # noqa: F401 (describe_lines: importable from here too)
from .formulation import Formulation, get_formulation
from .hub import push_folder, resolve_model
from .images import (
    as_list,
    ids_at_working_size,
    input_size,
    resize_ids,
    resize_images,
    to_ids,
    to_image_tensor,
    to_pil,
)
from .labels import LabelSet, get_label_set
from .limits import (
    InvalidInput,
    check_images_per_mask,
    check_margin,
    check_seed,
    check_solver,
    check_steps,
    check_strength,
)
from .noise import Generators
from .outputs import EditOutput, SegmentationOutput, SynthesisOutput
from .perturbation import check_beta, perturb
from .regions import blend_weights, feather, known_positions
from .solvers import Integration, integrate
from .velocity import PromptEmbedding, VelocityNet, net_output, size_multiple


class SemFlowPipeline(DiffusionPipeline):
    r"""Semantic segmentation and semantic image synthesis with one flow (SemFlow, Wang et al. 2024; SymmFlow,
    Caetano et al. 2026).

    `formulation="semflow"` (the paper): the velocity net transports images (t=0) to anchor-colour masks (t=1);
    `segment` integrates forward, `synthesize` integrates the same field backward from a perturbed mask.
    `formulation="symmetric"`: the state holds image and mask channels with Gaussian noise at the other end of
    each; `synthesize` integrates (noise, mask) at t=0 to t=1, `segment` (image, noise) at t=1 back to t=0.

    Args:
        unet: The velocity net: `UNet2DModel` (pixel or latent), `EncoderUNet` (a pretrained encoder, on pixels) or
            `UNet2DConditionModel` (SD1.5 layout).
        vae: When given, the net works on SD VAE latents (`VAECodec`); otherwise on pixels (`PixelCodec`).
        prompt_embedding: The stored empty-prompt embedding a `UNet2DConditionModel` is conditioned on.
        label_set: Built-in name (``"camvid"``, ``"cityscapes"``, ``"celebamask-hq"``, ``"coco-stuff"``,
            ``"ade20k"``) or the dict form of a `LabelSet`.
        anchor_k, anchor_s: Anchor grid (Eq. 7); ``None`` spreads the anchors as far apart as the classes allow.
        perturbation: Default β of Eq. 14 in 0..255 units, ``0 <= β < s/2``.
        resolution: Model (height, width); inputs are resized to it and outputs back to the input size.
        pixel_factor: Space-to-depth factor of the pixel codec (ignored with a VAE).
        synthesis_steps, segmentation_steps, solver: Defaults of `synthesize` and `segment`.
        formulation: ``"semflow"`` (the paper; models saved before this option load as it) or ``"symmetric"``.
        prediction: What the net outputs: ``"velocity"`` (both papers), or ``"data"`` (the clean ends, symmetric
            formulation only; see `semflow.formulation.SymmetricFormulation`).
        mask_head: How the net gives the mask end: ``"anchors"`` (its anchor colours, as the papers) or
            ``"classes"`` (symmetric formulation with data prediction on pixels: one logit per class, the mask end
            being the mean anchor of their softmax; see `read_output`).
    """

    model_cpu_offload_seq = "prompt_embedding->unet->vae"
    _optional_components = ["vae", "prompt_embedding"]
    tasks = ("segment", "synthesize")  # both directions of the one flow (a study baseline does one of them)

    def __init__(
        self,
        unet: VelocityNet,
        vae: Optional[AutoencoderKL] = None,
        prompt_embedding: Optional[PromptEmbedding] = None,
        label_set: Union[str, dict] = "camvid",
        anchor_k: Optional[int] = None,
        anchor_s: Optional[float] = None,
        perturbation: float = 0.0,
        resolution: Optional[Sequence[int]] = None,
        pixel_factor: int = 1,
        synthesis_steps: int = 25,
        segmentation_steps: int = 1,
        solver: str = "euler",
        formulation: str = "semflow",
        prediction: str = "velocity",
        mask_head: str = "anchors",
    ) -> None:
        super().__init__()
        self.register_modules(unet=unet, vae=vae, prompt_embedding=prompt_embedding)
        labels = get_label_set(label_set)
        spec = AnchorSpec(int(anchor_k), float(anchor_s)) if anchor_k is not None else AnchorSpec.spread(
            labels.num_classes)
        spec.check(labels.num_classes)
        check_beta(perturbation, spec)
        check_solver(solver)
        check_steps(synthesis_steps, "synthesis_steps")
        check_steps(segmentation_steps, "segmentation_steps")
        flow = get_formulation(formulation, prediction)
        codec: Codec = VAECodec(vae) if vae is not None else PixelCodec(int(pixel_factor))
        if isinstance(unet, UNet2DConditionModel) and prompt_embedding is None:
            raise ValueError("a UNet2DConditionModel velocity net needs prompt_embedding (the empty-prompt embedding)")
        channels = flow.state_channels(codec.latent_channels)
        outputs = mask_head_channels(mask_head, flow, codec, labels.num_classes)
        if unet.config.in_channels != channels or unet.config.out_channels != outputs:
            raise ValueError(f"unet has {unet.config.in_channels} in / {unet.config.out_channels} out channels but "
                             f"the codec {codec!r} in the {formulation} formulation with the {mask_head} mask head "
                             f"works with {channels} in / {outputs} out")
        resolution = tuple(int(r) for r in (resolution or _default_resolution(unet, codec)))
        multiple = codec.downsample * size_multiple(unet)
        if len(resolution) != 2 or any(r < 1 or r % multiple for r in resolution):
            raise ValueError(f"resolution {resolution} must be (height, width), each a multiple of {multiple}")
        self.register_to_config(
            label_set=labels.to_dict(),
            anchor_k=spec.k,
            anchor_s=spec.s,
            perturbation=float(perturbation),
            resolution=list(resolution),
            pixel_factor=int(pixel_factor),
            synthesis_steps=synthesis_steps,
            segmentation_steps=segmentation_steps,
            solver=solver,
            formulation=formulation,
            prediction=prediction,
            mask_head=mask_head,
        )
        self._labels, self._anchor_spec, self._codec, self._formulation = labels, spec, codec, flow
        self._records: dict[str, Any] = {}  # what the folder it is loaded from records (`from_pretrained`)

    @property
    def labels(self) -> LabelSet:
        """The label set: class names, display colours, ignore id."""
        return self._labels

    @property
    def anchor_spec(self) -> AnchorSpec:
        return self._anchor_spec

    @property
    def codec(self) -> Codec:
        return self._codec

    @property
    def formulation(self) -> Formulation:
        """Where images and masks sit in time and what state the net sees (`semflow.formulation`)."""
        return self._formulation

    @property
    def resolution(self) -> tuple[int, int]:
        """Model (height, width)."""
        return tuple(self.config.resolution)

    def describe(self) -> dict[str, Any]:
        """What this model is, for people: formulation, label set, resolution, anchors, codec, net size and defaults,
        and from the records beside its weights (when it was loaded from a folder that has them) its training data
        and evaluated figures (`semflow.description.model_records`).

        One description for the command line (`python -m semflow info`), the app's model panel and /model_info, and
        the model card; `semflow.description` renders it.
        """
        config = self.config
        return {
            "formulation": config.formulation,
            "formulation_summary": self.formulation.summary,
            "prediction": config.prediction,
            "mask_head": config.mask_head,
            "label_set": self.labels.to_dict(),
            "resolution": {"height": self.resolution[0], "width": self.resolution[1]},
            "anchors": {"k": self.anchor_spec.k, "s": self.anchor_spec.s},
            "perturbation": config.perturbation,
            "codec": repr(self.codec),
            "net": type(self.unet).__name__,
            "net_summary": getattr(self.unet, "summary", None),  # an architecture in a phrase, where it has one
            "parameters_millions": round(sum(p.numel() for p in self.unet.parameters()) / 1e6, 2),
            "defaults": {"segmentation_steps": config.segmentation_steps, "synthesis_steps": config.synthesis_steps,
                         "solver": config.solver},
            "training_data": self._records.get("training_data"),
            "evaluation": self._records.get("evaluation"),
        }

    def with_changes(self, unet: VelocityNet | None = None,
                     **config: Any) -> SemFlowPipeline:
        """A new pipeline sharing this one's components (or the given `unet`), with `config` over this one's settings
        (e.g. ``label_set=...``, ``formulation=...``); the settings are checked again as at construction."""
        settings = [name for name in inspect.signature(SemFlowPipeline.__init__).parameters
                    if name not in ("self", "unet", "vae", "prompt_embedding")]
        unknown = sorted(set(config) - set(settings))
        if unknown:
            raise ValueError(f"unknown pipeline settings {unknown}")
        values = {name: self.config[name] for name in settings if name in self.config}
        return SemFlowPipeline(unet=unet if unet is not None else self.unet, vae=self.vae,
                               prompt_embedding=self.prompt_embedding, **{**values, **config})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> SemFlowPipeline:
        """Load from a local folder or a Hub repo id (``org/name`` or ``org/name@revision``, via the HF cache).

        Keyword arguments go to `DiffusionPipeline.from_pretrained` (e.g. ``dtype``); only safetensors
        weights are read.
        """
        folder = resolve_model(pretrained_model_name_or_path, revision=kwargs.pop("revision", None))
        kwargs.setdefault("use_safetensors", True)
        pipe = super().from_pretrained(folder, **kwargs)
        pipe.register_to_config(_name_or_path=os.fspath(pretrained_model_name_or_path))
        pipe._records = model_records(folder)
        return pipe

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """`DiffusionPipeline.save_pretrained`, without the `_name_or_path` that loading records in each config (a
        local path, which a saved folder would otherwise carry to the Hub)."""
        super().save_pretrained(save_directory, **kwargs)
        folder = Path(save_directory)
        for config_file in [folder / self.config_name, *folder.glob(f"*/{CONFIG_NAME}")]:
            config = json.loads(config_file.read_text())
            if config.pop("_name_or_path", None) is not None:
                config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")

    def push_to_hub(
        self,
        repo_id: str,
        commit_message: str = "Upload SemFlow pipeline",
        private: bool | None = None,
        token: str | None = None,
        model_card: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Save to a temporary folder (with `model_card` as README.md when given) and upload it to `repo_id`."""
        with tempfile.TemporaryDirectory() as folder:
            self.save_pretrained(folder)
            if model_card is not None:
                with open(os.path.join(folder, "README.md"), "w", encoding="utf-8") as f:
                    f.write(model_card)
            return push_folder(folder, repo_id, token=token, private=private, commit_message=commit_message)

    @torch.inference_mode()
    def segment(
        self,
        images: Any,
        num_inference_steps: int | None = None,
        solver: str | None = None,
        return_trajectory: bool = False,
        batch_size: int = 4,
        include_ignore: bool = False,
        seed: int = 0,
        return_confidence: bool = False,
        flip: bool = False,
    ) -> SegmentationOutput:
        r"""Image → mask: integrate from the image end to the mask end and decode the nearest anchor per pixel (with
        the classes mask head, the class its last logits choose: `decode_classes`).

        Args:
            images: PIL image(s), numpy array(s) (H, W[, C]) or torch tensor(s) (C, H, W) / (B, C, H, W) in [0, 1];
                any mode (RGBA, grayscale, palette, 16-bit, CMYK; EXIF orientation applied) and any size.
            num_inference_steps: Steps (default: the config's `segmentation_steps`, 1 for the default model).
            solver: ``"euler"``, ``"heun"`` or ``"rk45"`` (default: the config's `solver`).
            return_trajectory: Also return the decoded states as frames.
            batch_size: Images per forward pass.
            include_ignore: Let white decode to the ignore id instead of the nearest class.
            seed: Seed of the mask-end noise of the symmetric formulation (each image draws its own from it, so a
                result does not depend on batching); unused by the paper's formulation.
            return_confidence: Also return each pixel's decoding margin (`SegmentationOutput.confidence`).
            flip: Test-time augmentation: also integrate each image mirrored left-right and decode the mean of the two
                mask ends (the mirror's mirrored back); twice the compute, for batch pre-annotation.
        Returns:
            `SegmentationOutput` with one (H, W) uint8 id map per image at that image's size.
        """
        steps, solver = self._steps_and_solver(num_inference_steps, solver, self.config.segmentation_steps)
        inputs = as_list(images, "images")
        pixels = [to_image_tensor(image, "images") for image in inputs]  # big images at the working size
        sizes = [input_size(image) for image in inputs]
        batch_size = _check_batch_size(batch_size)
        seed = check_seed(seed)
        ignore_id = self.labels.ignore_id if include_ignore else None
        ids_out, trajectory, nfe = [], [] if return_trajectory else None, 0
        confidence = [] if return_confidence else None
        for start in range(0, len(pixels), batch_size):
            batch = pixels[start : start + batch_size]
            x_image = torch.cat([resize_images(p[None], self.resolution) for p in batch]) * 2.0 - 1.0
            if flip:  # mirrored in pixels: a codec's channels need not mirror with them
                x_image = torch.cat([x_image, x_image.flip(-1)])
            z_image = self.codec.encode(x_image.to(self.device, self.dtype))
            state = self.formulation.segmentation_start(
                z_image, [torch.Generator().manual_seed(seed) for _ in range(len(z_image))])
            readings = [] if self.config.mask_head == "classes" else None
            result = self._integrate(state, self.formulation.image_time, self.formulation.mask_time, steps, solver,
                                     return_trajectory, readings=readings)
            x_mask = self.codec.decode(self.formulation.mask_part(result.x)).float()
            probabilities = readings[-1].softmax(dim=1) if readings else None  # the last reading's p_c
            if flip:  # M̂ = (M̂(x) + mirror(M̂(mirror(x)))) / 2, and the same of p
                x_mask = (x_mask[: len(batch)] + x_mask[len(batch) :].flip(-1)) / 2
                if probabilities is not None:
                    probabilities = (probabilities[: len(batch)] + probabilities[len(batch) :].flip(-1)) / 2
            nfe = result.nfe
            for i, p in enumerate(batch):
                size = tuple(p.shape[-2:])  # decoded here; ids and confidence then go to the input's own size
                if probabilities is None:
                    ids, margin = nearest_anchors(resize_images(x_mask[i : i + 1], size), self.labels.num_classes,
                                                  self.anchor_spec, ignore_id)
                else:
                    ids, margin = decode_classes(resize_images(probabilities[i : i + 1], size))
                full_size = sizes[start + i]
                ids_out.append(resize_ids(ids.to(torch.uint8), full_size)[0].cpu().numpy())
                if confidence is not None:
                    confidence.append(resize_ids(margin, full_size)[0].cpu().numpy())
                if trajectory is not None:
                    trajectory.append(self._frames(result, i, size, self.formulation.mask_part))
        return SegmentationOutput(ids=ids_out, trajectory=trajectory, nfe=nfe, confidence=confidence)

    @renamed_keywords(labels="masks")
    @torch.inference_mode()
    def synthesize(
        self,
        masks: Any,
        num_inference_steps: int | None = None,
        solver: str | None = None,
        perturbation: float | None = None,
        seed: int | None = None,
        generator: Generators = None,
        num_images_per_mask: int = 1,
        return_trajectory: bool = False,
        batch_size: int = 4,
    ) -> SynthesisOutput:
        r"""Mask → image: perturb the anchor image (Eq. 14) and integrate from the mask end to the image end (from
        Gaussian noise in the image channels in the symmetric formulation).

        Args:
            masks: Class-id map(s): PIL "L"/"P"/"I;16" images, 2-D integer numpy arrays or torch tensors, any size.
                Ids must be classes of the label set or its ignore id. (Formerly `labels`, which still works for
                one release, with a `DeprecationWarning`.)
            num_inference_steps: Steps (default: the config's `synthesis_steps`).
            solver: ``"euler"``, ``"heun"`` or ``"rk45"`` (default: the config's `solver`).
            perturbation: β in 0..255 units, ``0 <= β < s/2`` (default: the config's `perturbation`).
            seed: Variant `v` of every mask uses seed ``seed + v`` (0..2³²−1); ``None`` draws a fresh seed
                (reported in the output). Mutually exclusive with `generator`.
            generator: One generator for all images, or one per output image.
            num_images_per_mask: Variants per mask, 1..16.
            return_trajectory: Also return the decoded states as frames.
            batch_size: Images per forward pass.
        Returns:
            `SynthesisOutput` with RGB images at each mask's size.
        """
        steps, solver = self._steps_and_solver(num_inference_steps, solver, self.config.synthesis_steps)
        beta = check_beta(self.config.perturbation if perturbation is None else perturbation, self.anchor_spec)
        masks = [to_ids(m, "masks") for m in as_list(masks, "masks")]
        for m in masks:
            self.labels.check_ids(m, "masks")
        num_images_per_mask = check_images_per_mask(num_images_per_mask)
        batch_size = _check_batch_size(batch_size)
        jobs = [(m, v) for m in range(len(masks)) for v in range(num_images_per_mask)]
        generators, seeds = _generators(seed, generator, jobs)

        images, trajectory, nfe = [], [] if return_trajectory else None, 0
        for start in range(0, len(jobs), batch_size):
            batch = jobs[start : start + batch_size]
            ids = torch.cat([resize_ids(torch.from_numpy(masks[m])[None], self.resolution) for m, _ in batch])
            batch_generators = generators[start : start + batch_size] if isinstance(generators, list) else generators
            x_mask = self.anchor_mask(ids, beta, batch_generators)
            z_mask = self.codec.encode(x_mask.to(self.device, self.dtype))
            state = self.formulation.synthesis_start(z_mask, batch_generators)
            result = self._integrate(state, self.formulation.mask_time, self.formulation.image_time, steps, solver,
                                     return_trajectory)
            x_image = self.codec.decode(self.formulation.image_part(result.x)).float()
            nfe = result.nfe
            for i, (m, _) in enumerate(batch):
                size = masks[m].shape
                images.append(to_pil(resize_images(x_image[i : i + 1].clamp(-1, 1), size)[0]))
                if trajectory is not None:
                    trajectory.append(self._frames(result, i, size, self.formulation.image_part))
        return SynthesisOutput(images=images, seeds=seeds, trajectory=trajectory, nfe=nfe)

    @renamed_keywords(mask="ids", region="changed")
    @torch.inference_mode()
    def edit(
        self,
        image: Any,
        ids: Any,
        changed: Any = None,
        margin: int = 16,
        strength: float = 0.0,
        seed: int | None = None,
        generator: Generators = None,
        num_images: int = 1,
        num_inference_steps: int | None = None,
        solver: str | None = None,
        perturbation: float | None = None,
    ) -> EditOutput:
        r"""A photo and its edited mask → the photo with only what the mask changed re-synthesized.

        The changed pixels are where `ids` differs from the photo's own segmentation (or `changed`); the region is
        those pixels grown by `margin`. Synthesis integrates from the edited mask's end to the image end as
        `synthesize` does, but outside the region the image is held to the photo along the whole path (its velocity
        there is the straight path's to the photo), so the net synthesizes the region in the photo's context; the
        result is blended into the photo over the margin, and outside the region it is the photo's own pixels. A
        `strength` above 0 releases the rest of the photo for the last `strength` of the path (SDEdit-like), which
        restyles it too.

        Args:
            image: The photo (any input `segment` takes); edited at the working size when it is larger.
            ids: Its edited class-id map, at the photo's size (formerly `mask`).
            changed: (H, W) bool: re-synthesize exactly these pixels (before the margin) instead of those whose class
                `ids` changes (formerly `region`, the name the output's grown region has).
            margin: Pixels the region is grown by, 0..`limits.MAX_EDIT_MARGIN`, with a feathered edge.
            strength: 0 keeps the rest of the photo exactly; up to 1, how much of the path the rest is free for.
            seed, generator, num_images: As `synthesize`'s `seed`, `generator` and `num_images_per_mask`.
            num_inference_steps, solver, perturbation: As `synthesize`'s.
        Returns:
            `EditOutput` with the edited photos, the changed pixels and the region.
        Raises:
            InvalidInput: mask and photo differ in size, the region is empty, or an argument is out of range.
        """
        steps, solver = self._steps_and_solver(num_inference_steps, solver, self.config.synthesis_steps)
        beta = check_beta(self.config.perturbation if perturbation is None else perturbation, self.anchor_spec)
        margin, strength = check_margin(margin), check_strength(strength)
        num_images = check_images_per_mask(num_images, "num_images")
        ids = to_ids(ids, "the mask")
        self.labels.check_ids(ids, "the mask")
        if ids.shape != tuple(input_size(image)):
            raise InvalidInput(f"the mask is {ids.shape[1]}x{ids.shape[0]} but the photo is {input_size(image)[1]}x"
                               f"{input_size(image)[0]}: an edit needs the mask of this photo, at its size")
        pixels = to_image_tensor(image, "image")  # (3, H, W) in [0, 1], at the working size
        size = tuple(pixels.shape[-2:])
        ids = ids_at_working_size(ids) if ids.shape != size else ids
        if changed is None:
            changed = ids != self.segment(pixels).ids[0]
        else:
            changed = np.asarray(changed, dtype=bool)
            if changed.shape != tuple(input_size(image)):
                raise InvalidInput(f"the changed pixels are given as {changed.shape[1]}x{changed.shape[0]} but the "
                                   f"photo is {input_size(image)[1]}x{input_size(image)[0]}")
            changed = ids_at_working_size(changed) if changed.shape != size else changed
        if not changed.any():
            raise InvalidInput("nothing to edit: the mask equals the photo's own segmentation; change a class in the "
                               "mask first (or give the pixels to re-synthesize)")
        blend = blend_weights(changed, margin, strength)  # 1 on the changed pixels, 0 where the photo is kept
        weight = blend if strength == 0 else feather(torch.from_numpy(changed), margin)
        known = known_positions(weight > 0, self.resolution, self.codec.downsample).to(self.device)
        z_photo = self.codec.encode((resize_images(pixels[None], self.resolution) * 2.0 - 1.0).to(self.device,
                                                                                                  self.dtype))
        jobs = [(0, v) for v in range(num_images)]
        generators, seeds = _generators(seed, generator, jobs)
        model_ids = resize_ids(torch.from_numpy(ids)[None], self.resolution).expand(num_images, -1, -1)
        x_mask = self.anchor_mask(model_ids, beta, generators)
        start = self.formulation.synthesis_start(self.codec.encode(x_mask.to(self.device, self.dtype)), generators)

        def hold(velocity: torch.Tensor, t: float) -> torch.Tensor:  # the photo outside the region, until released
            released = strength > 0 and abs(t - self.formulation.image_time) <= strength
            return velocity if released else self.formulation.hold_image(velocity, start, z_photo, known)

        result = self._integrate(start, self.formulation.mask_time, self.formulation.image_time, steps, solver,
                                 False, hold)
        x_image = self.codec.decode(self.formulation.image_part(result.x)).float()
        photo = (pixels * 255.0).round()
        images = []
        for i in range(num_images):
            synthesized = (resize_images(x_image[i : i + 1].clamp(-1, 1), size)[0].cpu() + 1.0) * 127.5
            edited = photo + blend * (synthesized - photo)  # exactly the photo where blend is 0
            images.append(PIL.Image.fromarray(edited.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()))
        return EditOutput(images=images, changed=changed, region=np.asarray(blend > 0), seeds=seeds, nfe=result.nfe)

    def read_output(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The net's output as the formulation reads it, and the mask end's class logits when the net gives them.

        With the ``"classes"`` mask head the net outputs the image's channels and one logit per class for each mask
        pixel; the mask end is the mean anchor of their softmax, ŷ = Σ_c softmax(l)_c · a_c, so the state, the
        paths and the decoding stay the anchors' while the net classifies as a segmenter does.
        """
        if self.config.mask_head == "anchors":
            return output, None
        image_channels = self.codec.latent_channels
        logits = output[:, image_channels:].float()
        anchors = to_model_units(anchor_colors(self.labels.num_classes, self.anchor_spec)).to(logits)
        mask_end = torch.einsum("bkhw,kc->bchw", logits.softmax(dim=1), anchors)  # ŷ = Σ_c p_c · a_c
        return torch.cat([output[:, :image_channels], mask_end.to(output.dtype)], dim=1), logits

    def anchor_mask(self, ids: torch.Tensor, perturbation: float | None = None,
                    generator: Generators = None) -> torch.Tensor:
        """The mask end as the flow sees it, in training and at synthesis: (B, H, W) class ids drawn as anchor colours
        (Eq. 7, ignored pixels white) and perturbed by β (Eq. 14; the config's β unless `perturbation` is given), as
        (B, 3, H, W) pixels in model units on the ids' device."""
        beta = self.config.perturbation if perturbation is None else perturbation
        x_mask = encode_anchors(ids, self.labels.num_classes, self.anchor_spec, self.labels.ignore_id)
        return perturb(x_mask.to(ids.device), beta, self.anchor_spec, generator)  # M' = M + ε

    def _integrate(
        self, z: torch.Tensor, t_start: float, t_end: float, steps: int, solver: str, return_trajectory: bool,
        hold: Callable[[torch.Tensor, float], torch.Tensor] | None = None, readings: list | None = None,
    ) -> Integration:
        """The one integration code path of both directions (and of edits, whose `hold` changes the velocity where
        the photo is known); `readings`, when given, holds the class logits of the last net evaluation."""

        def velocity(x_t: torch.Tensor, t: float) -> torch.Tensor:
            output, logits = self.read_output(net_output(self.unet, x_t, t, self.prompt_embedding))
            if readings is not None:
                readings[:] = [logits.float()]
            v = self.formulation.velocity(output, x_t, t)
            return v if hold is None else hold(v, t)

        total = None if solver == "rk45" else steps
        with tqdm(total=total, **{"disable": False, **getattr(self, "_progress_bar_config", {})}) as bar:
            return integrate(velocity, z, t_start, t_end, steps, solver, return_trajectory=return_trajectory,
                             on_step=bar.update)

    def _frames(self, result: Integration, index: int, size: tuple[int, int], part) -> list:
        """Decode `part` (the image or the mask half of the state) of the `index`-th element of every trajectory
        state to an RGB frame at `size`."""
        return [to_pil(resize_images(self.codec.decode(part(z[index : index + 1])).float().clamp(-1, 1), size)[0])
                for z in result.trajectory]

    def _steps_and_solver(self, steps: Any, solver: Any, default_steps: int) -> tuple[int, str]:
        """(steps, solver) of a call: the config's defaults for None, else checked (`semflow.limits`)."""
        return check_steps(default_steps if steps is None else steps), check_solver(self.config.solver
                                                                                    if solver is None else solver)


MASK_HEADS = ("anchors", "classes")


def decode_classes(probabilities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The classes mask head's decoding: the most probable class per pixel, and how clearly (p₁ − p₂, 0 a coin toss,
    1 certain), from (B, K, H, W) class probabilities (the softmax of the net's last class logits).

    The mask end is their mean anchor, ŷ = Σ_c p_c · a_c; its nearest anchor is not always the most probable class
    (a mix of two anchors can land nearest a third), so the head decodes the probabilities themselves.
    """
    two, index = probabilities.float().topk(2, dim=1)
    return index[:, 0], (two[:, 0] - two[:, 1]).clamp(0, 1)


def mask_head_channels(mask_head: str, formulation: Formulation, codec: Codec, num_classes: int) -> int:
    """The net's output channels for `mask_head` in `formulation` on `codec`.

    Raises:
        ValueError: an unknown head, or class logits where the mask end is not predicted per pixel (the symmetric
            formulation with data prediction on pixels).
    """
    if mask_head not in MASK_HEADS:
        raise ValueError(f"mask_head must be one of {MASK_HEADS}, got {mask_head!r}")
    channels = formulation.state_channels(codec.latent_channels)
    if mask_head == "anchors":
        return channels
    if formulation.name != "symmetric" or formulation.prediction != "data" or not isinstance(codec, PixelCodec) \
            or codec.factor != 1:
        raise ValueError("the classes mask head needs the symmetric formulation with data prediction on pixels "
                         "(pixel_factor 1): there the net predicts the mask end itself, pixel by pixel")
    return codec.latent_channels + num_classes


def _default_resolution(unet: VelocityNet, codec: Codec) -> tuple[int, int]:
    size = unet.config.sample_size
    height, width = (size, size) if isinstance(size, int) else size
    return height * codec.downsample, width * codec.downsample


def _check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def _generators(
    seed: int | None, generator: Generators, jobs: list[tuple[int, int]]
) -> tuple[torch.Generator | list[torch.Generator], list[int] | None]:
    """Per-image generators: from `seed` (variant v → seed + v), from the caller, or from a fresh seed."""
    if seed is not None and generator is not None:
        raise ValueError("pass either seed or generator, not both")
    if generator is not None:
        if isinstance(generator, list):
            if len(generator) != len(jobs) or not all(isinstance(g, torch.Generator) for g in generator):
                raise ValueError(f"generator list must hold {len(jobs)} torch.Generator (one per output image)")
            return generator, None
        if not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator or a list of them, got {type(generator).__name__}")
        return generator, None
    if seed is None:
        seed = secrets.randbelow(2**31)
    seed = check_seed(seed, count=1 + max(v for _, v in jobs))
    seeds = [seed + v for _, v in jobs]
    return [torch.Generator().manual_seed(s) for s in seeds], seeds
