"""The contact sheet of photo edits: the four example photos, each edited twice through its mask the way the app's
"Edit this photo" does (`app.service.Studio.edit`: the model's own segmentation, one class region replaced by another
or a car pasted from another example's mask), as rows of photo, edited mask, the region the edit may change, and the
edited photo, in one PNG.

    python -m benchmarks.edit_sheet [--model symmetric] [--out docs/edits.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import PIL.Image
import torch

from app.overlays import edit_region_view, overlay
from app.service import EDIT_MARGIN, Studio
from app.settings import Settings
from semflow.loading import DEFAULT_MODEL, load_model

from .contact_sheet import DATASET, frames, tile
from .edit import edits

EDITS_PER_PHOTO = 2
SEED = 0


def edit_rows(studio: Studio, drive: str | None = None,
              dataset: str = DATASET) -> list[tuple[list[PIL.Image.Image], float]]:
    """Per edit, the row's four tiles and the round trip's pixel agreement on the changed pixels."""
    examples = frames(drive, dataset)
    rows = []
    segmented = [studio.segment(photo)[0] for _, photo, _ in examples]  # at the page's default steps
    for index, ((name, photo, _), ids) in enumerate(zip(examples, segmented)):
        donor = segmented[(index + len(examples) // 2) % len(examples)]
        for title, edited in list(edits(ids, donor).items())[:EDITS_PER_PHOTO]:
            result = studio.edit(photo, edited, edited != ids, seed=SEED)
            agreement = result.round_trip[0]["pixel_agreement"]
            caption = f"mask: {title.replace('→', 'to')}"  # the captions' bitmap font has no arrow
            rows.append(([tile(photo, name), tile(overlay(photo, edited, studio.labels, 0.6), caption),
                          tile(edit_region_view(photo, result.region), f"may change ({EDIT_MARGIN} px margin)"),
                          tile(result.images[0], f"edited, seed {SEED}; round trip {agreement:.0f}%")], agreement))
    return rows


def main(argv: list[str] | None = None) -> list[float]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.edit_sheet", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="embedded name or folder")
    parser.add_argument("--drive", default=None, help="frames of this drive instead of the example photos")
    parser.add_argument("--dataset", default=DATASET, help="where --drive's frames come from")
    parser.add_argument("--out", type=Path, default=Path("docs/edits.png"))
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as scratch:  # the studio's annotation folder, never written
        studio = Studio(load_model(args.model, device="cpu"), Settings(annotations_dir=Path(scratch)))
        rows = edit_rows(studio, args.drive, args.dataset)
    width, height = rows[0][0][0].size
    sheet = PIL.Image.new("RGB", (4 * width, len(rows) * height), (255, 255, 255))
    for r, (tiles, _) in enumerate(rows):
        for c, picture in enumerate(tiles):
            sheet.paste(picture, (c * width, r * height))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    agreements = [agreement for _, agreement in rows]
    print(f"{args.out}: {len(rows)} edits with {args.model}; round trip on the changed pixels "
          f"{np.mean(agreements):.0f}% on average ({min(agreements):.0f}-{max(agreements):.0f}%)")
    return agreements


if __name__ == "__main__":
    main()
