"""Command line: `python -m semflow segment IMAGE... --out DIR` and `... synthesize MASK... --out DIR`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import PIL.Image

from .filenames import safe_stem
from .images import to_label_array
from .samplers import SOLVERS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m semflow",
        description="Segment images into class-id masks, or synthesize images from masks, with a SemFlow model.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", required=True, type=Path, help="output folder (created if missing)")
        p.add_argument("--model", default=None,
                       help="model folder or Hub id org/name[@revision] (default: $SEMFLOW_MODEL, else the "
                            "embedded default)")
        p.add_argument("--steps", type=int, default=None, help="integration steps (default: the model's)")
        p.add_argument("--solver", choices=SOLVERS, default=None, help="ODE solver (default: the model's)")
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")

    seg = sub.add_parser("segment", help="image(s) → class-id PNGs ('L') and colour previews")
    seg.add_argument("images", nargs="+", type=Path, help="input image files")
    common(seg)

    syn = sub.add_parser("synthesize", help="class-id mask(s) → images, one per seed")
    syn.add_argument("masks", nargs="+", type=Path,
                     help="class-id PNGs ('L'), or colour previews in the model's display colours")
    syn.add_argument("--seeds", type=int, nargs="+", default=[0], help="one image per seed (default: 0)")
    syn.add_argument("--perturbation", type=float, default=None, help="β in 0..255 units (default: the model's)")
    common(syn)

    info = sub.add_parser("info", help="print the model's label set, resolution and defaults")
    info.add_argument("--model", default=None, help="model folder or Hub id (default as above)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from .loading import load_pipeline

    pipe = load_pipeline(args.model, device=getattr(args, "device", None))
    if args.command == "info":
        from .loading import model_folder

        labels = pipe.labels
        print(f"model: {pipe.config._name_or_path}\nfolder: {model_folder(args.model)}")
        print(f"label set: {labels.name} ({labels.num_classes} classes, "
              f"ignore id {labels.ignore_id})\nresolution: {pipe.resolution[1]}x{pipe.resolution[0]}\n"
              f"anchors: k={pipe.anchor_spec.k}, s={pipe.anchor_spec.s:g}; perturbation β={pipe.config.perturbation:g}"
              f"\ndefaults: segment {pipe.config.segmentation_steps} / synthesize {pipe.config.synthesis_steps} "
              f"{pipe.config.solver} steps")
        for i, (name, color) in enumerate(zip(labels.class_names, labels.colors)):
            print(f"  {i:3d} {name} {color}")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    names = _unique_stems(args.images if args.command == "segment" else args.masks)
    if args.command == "segment":
        for path, stem in zip(args.images, names):
            labels = pipe.segment(_open(path), num_inference_steps=args.steps, solver=args.solver).labels[0]
            PIL.Image.fromarray(labels).save(args.out / f"{stem}.png")
            PIL.Image.fromarray(pipe.labels.colorize(labels)).save(args.out / f"{stem}_color.png")
            print(args.out / f"{stem}.png")
        return 0
    import torch

    for path, stem in zip(args.masks, names):
        mask = _read_mask(path, pipe.labels)
        generators = [torch.Generator().manual_seed(seed) for seed in args.seeds]
        images = pipe.synthesize(mask, num_inference_steps=args.steps, solver=args.solver,
                                 perturbation=args.perturbation, generator=generators,
                                 num_images_per_mask=len(args.seeds)).images
        for seed, image in zip(args.seeds, images):
            image.save(args.out / f"{stem}_seed{seed}.png")
            print(args.out / f"{stem}_seed{seed}.png")
    return 0


def _open(path: Path) -> PIL.Image.Image:
    try:
        image = PIL.Image.open(path)
        image.load()
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (PIL.UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None
    return image


def _read_mask(path: Path, labels) -> np.ndarray:
    """Class ids from an 'L'/'P'/16-bit PNG, or from a colour preview in the label set's display colours."""
    image = _open(path)
    if image.mode in ("RGB", "RGBA"):
        rgb = np.asarray(image.convert("RGB"))
        return labels.colors_to_ids(rgb, name=str(path))
    return to_label_array(image, name=str(path))


def _unique_stems(paths: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        stem = safe_stem(os.fspath(path))
        count = seen.get(stem, 0)
        seen[stem] = count + 1
        stems.append(stem if count == 0 else f"{stem}-{count}")
    return stems


if __name__ == "__main__":
    sys.exit(main())
