"""Command line: `python -m semflow segment IMAGE... --out DIR`, `... synthesize MASK... --out DIR` and
`... edit PHOTO EDITED_MASK --out DIR`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import PIL.Image

from . import limits
from .filenames import safe_stem
from .images import check_image_file, read_image, read_mask
from .limits import SOLVERS

PROGRESS_DELAY_S = 1.0  # a progress bar appears on stderr once an integration has run this long


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
        p.add_argument("--steps", default=None,
                       help=f"integration steps, 1..{limits.MAX_STEPS} (default: the model's)")
        p.add_argument("--solver", choices=SOLVERS, default=None, help="ODE solver (default: the model's)")
        p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")

    seg = sub.add_parser("segment", help="image(s) → class-id PNGs ('L') and colour previews at each image's size",
                         description=f"Images over {limits.WORKING_SIDE} pixels on the longer side are segmented at "
                                     f"that working size; the masks are written at the image's size.")
    seg.add_argument("images", nargs="+", type=Path, help="input image files")
    common(seg)

    syn = sub.add_parser("synthesize", help="class-id mask(s) → images, one per seed",
                         description=f"Masks over {limits.WORKING_SIDE} pixels on the longer side are synthesized "
                                     f"at that working size.")
    syn.add_argument("masks", nargs="+", type=Path,
                     help="class-id PNGs ('L'), or colour previews in the model's display colours (RGB, or a "
                          "palette image such as a GIF)")
    syn.add_argument("--seeds", nargs="+", default=["0"],
                     help=f"one image per seed, each 0..{limits.MAX_SEED}, at most {limits.MAX_IMAGES_PER_MASK} "
                          f"seeds (default: 0)")
    syn.add_argument("--perturbation", type=float, default=None, help="β in 0..255 units (default: the model's)")
    common(syn)

    edit = sub.add_parser("edit", help="a photo + its edited mask → the photo with only the edit re-synthesized",
                          description="Re-synthesizes the pixels whose class the edited mask changes against the "
                                      "photo's own segmentation (or those --changed gives), grown by --margin into "
                                      "the region; outside the region the output is the photo's own pixels. Writes "
                                      "one image per seed and the region.")
    edit.add_argument("photo", type=Path, help="the photo")
    edit.add_argument("mask", type=Path, help="its edited mask: class ids ('L') or a colour preview, at its size")
    edit.add_argument("--changed", "--region", dest="changed", type=Path, default=None,
                      help="re-synthesize the white pixels of this image instead of those whose class the mask "
                           "changes (--region: its former name, deprecated)")
    edit.add_argument("--margin", default="16", help=f"pixels the region grows by, 0..{limits.MAX_EDIT_MARGIN}")
    edit.add_argument("--strength", type=float, default=0.0,
                      help="0 keeps the rest of the photo exactly; up to 1 also restyles it")
    edit.add_argument("--seeds", nargs="+", default=["0"], help="one edit per seed (default: 0)")
    edit.add_argument("--perturbation", type=float, default=None, help="β in 0..255 units (default: the model's)")
    common(edit)

    info = sub.add_parser("info", help="print what the model is: its label set, resolution, defaults and figures")
    info.add_argument("--model", default=None, help="model folder or Hub id (default as above)")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if any(arg == "--region" or arg.startswith("--region=") for arg in argv):
        print("note: --region is deprecated and will be removed in the next release: use --changed", file=sys.stderr)
    try:
        return _run(args)
    except (ValueError, TypeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from .loading import load_model

    if args.command != "info":  # refuse bad settings before loading the model
        args.steps = None if args.steps is None else limits.check_steps(args.steps, "--steps")
    if args.command in ("synthesize", "edit"):
        args.seeds = limits.check_seeds(args.seeds, "--seeds")
    if args.command == "edit":
        args.margin = limits.check_margin(args.margin, "--margin")
        args.strength = limits.check_strength(args.strength, "--strength")
    files = [args.photo, args.mask, *([args.changed] if args.changed else [])] if args.command == "edit" else None
    for path in files or getattr(args, "images", None) or getattr(args, "masks", None) or []:
        check_image_file(path, str(path))  # a missing file or a decompression bomb is refused from its header
    loaded = load_model(args.model, device=getattr(args, "device", None))
    pipe = loaded.pipe
    if args.command == "info":
        _info(loaded)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    if args.command == "edit":
        pipe.set_progress_bar_config(disable=False, delay=PROGRESS_DELAY_S, leave=False, desc=args.photo.name)
        _edit(pipe, args)
        return 0
    paths = args.images if args.command == "segment" else args.masks
    for index, (path, stem) in enumerate(zip(paths, _unique_stems(paths)), start=1):
        pipe.set_progress_bar_config(disable=False, delay=PROGRESS_DELAY_S, mininterval=PROGRESS_DELAY_S / 10,
                                     leave=False, desc=f"[{index}/{len(paths)}] {path.name}")
        if args.command == "segment":
            _segment(pipe, args, path, stem)
        else:
            _synthesize(pipe, args, path, stem)
    return 0


def _info(loaded) -> None:
    """What the model is (`LoadedModel.describe`, as the app's model panel says it), where it was read from, and its
    classes with their display colours."""
    from .description import describe_markdown, plain

    description = loaded.describe()
    print(f"Model: {description['model']} @ {description['revision']}\nFolder: {loaded.folder}\n")
    print(plain(describe_markdown(description)))
    labels = loaded.pipe.labels
    print("\nClasses (id, name, display colour):")
    for i, (name, color) in enumerate(zip(labels.class_names, labels.colors)):
        print(f"  {i:3d} {name} {color}")
    if labels.ignore_id is not None:
        print(f"  {labels.ignore_id:3d} {labels.ignore_name} {labels.ignore_color} (ignored)")


def _segment(pipe, args: argparse.Namespace, path: Path, stem: str) -> None:
    """One image → its class-id PNG and colour preview, at the image's size."""
    read = read_image(path, str(path))
    _note(read.notices)
    ids = pipe.segment(read.image, num_inference_steps=args.steps, solver=args.solver).ids[0]
    mask = PIL.Image.fromarray(ids)
    if mask.size != read.original_size:  # segmented at the working size: nearest back to the image's size
        mask = mask.resize(read.original_size, PIL.Image.Resampling.NEAREST)
    mask.save(args.out / f"{stem}.png")
    PIL.Image.fromarray(pipe.labels.colorize(np.asarray(mask))).save(args.out / f"{stem}_color.png")
    print(args.out / f"{stem}.png")


def _synthesize(pipe, args: argparse.Namespace, path: Path, stem: str) -> None:
    """One mask → one image per seed, at the mask's working size."""
    import torch

    read = read_mask(path, pipe.labels, str(path))
    _note(read.notices)
    images = pipe.synthesize(read.ids, num_inference_steps=args.steps, solver=args.solver,
                             perturbation=args.perturbation,
                             generator=[torch.Generator().manual_seed(seed) for seed in args.seeds],
                             num_images_per_mask=len(args.seeds)).images
    for seed, image in zip(args.seeds, images):
        image.save(args.out / f"{stem}_seed{seed}.png")
        print(args.out / f"{stem}_seed{seed}.png")


def _edit(pipe, args: argparse.Namespace) -> None:
    """A photo and its edited mask → one edited photo per seed and the region, at the photo's working size."""
    import torch

    photo = read_image(args.photo, str(args.photo))
    size = photo.image.size
    mask = read_mask(args.mask, pipe.labels, str(args.mask), size=size)
    changed = None
    if args.changed is not None:
        changed_file = read_image(args.changed, str(args.changed))
        if changed_file.image.size != size:
            raise limits.InvalidInput(f"{args.changed} is {changed_file.original_size[0]}x"
                                      f"{changed_file.original_size[1]} but the photo is {photo.original_size[0]}x"
                                      f"{photo.original_size[1]}")
        changed = np.asarray(changed_file.image.convert("L")) >= 128
    _note(photo.notices + mask.notices)
    out = pipe.edit(photo.image, mask.ids, changed=changed, margin=args.margin, strength=args.strength,
                    num_inference_steps=args.steps, solver=args.solver, perturbation=args.perturbation,
                    generator=[torch.Generator().manual_seed(seed) for seed in args.seeds], num_images=len(args.seeds))
    stem = safe_stem(os.fspath(args.photo))
    for seed, image in zip(args.seeds, out.images):
        image.save(args.out / f"{stem}_edit_seed{seed}.png")
        print(args.out / f"{stem}_edit_seed{seed}.png")
    PIL.Image.fromarray(out.region.astype(np.uint8) * 255).save(args.out / f"{stem}_region.png")
    print(args.out / f"{stem}_region.png")


def _note(notices: tuple[str, ...]) -> None:
    for notice in notices:
        print(f"note: {notice}", file=sys.stderr)


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
