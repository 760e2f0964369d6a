"""CPU speed of the model: segment a 480x360 image, synthesize one variant at the default steps, and the ratio of
segment time to one bare forward pass of the velocity net. Prints numbers; asserts nothing.

    python -m benchmarks.speed [--model M] [--threads 2] [--repeats 10] [--update-card]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np
import PIL.Image
import torch

from semflow import load_pipeline
from semflow.loading import model_folder
from semflow.velocity import net_output


def timed(fn, repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded default)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (this machine has 2 cores)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--update-card", action="store_true",
                        help="write speed.json into the (local) model folder and re-render its model card")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model, device="cpu")
    rng = np.random.default_rng(0)
    image = PIL.Image.fromarray(rng.integers(0, 256, (args.height, args.width, 3), dtype=np.uint8))
    labels = rng.integers(0, pipe.labels.num_classes, (args.height, args.width))

    segment = timed(lambda: pipe.segment(image), args.repeats)
    synthesize = timed(lambda: pipe.synthesize(labels, seed=0), max(3, args.repeats // 3))
    latent = pipe.codec.encode(torch.zeros(1, 3, *pipe.resolution))
    z = torch.zeros(1, pipe.unet.config.in_channels, *latent.shape[-2:])  # the state: image (and mask) channels
    with torch.inference_mode():
        forward = timed(lambda: net_output(pipe.unet, z, 0.0, pipe.prompt_embedding), args.repeats)
    result = {
        "model": args.model or os.environ.get("SEMFLOW_MODEL") or "embedded default",
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "image": f"{args.width}x{args.height}",
        "model_resolution": f"{pipe.resolution[1]}x{pipe.resolution[0]}",
        "segment_s": statistics.median(segment),
        "segment_steps": pipe.config.segmentation_steps,
        "synthesize_s": statistics.median(synthesize),
        "synthesis_steps": pipe.config.synthesis_steps,
        "bare_forward_s": statistics.median(forward),
    }
    result["segment_over_forward"] = result["segment_s"] / result["bare_forward_s"]
    result["command"] = "python -m benchmarks.speed " + " ".join(argv if argv is not None else sys.argv[1:])
    for key, value in result.items():
        print(f"{key:>22}: {value:.4f}" if isinstance(value, float) else f"{key:>22}: {value}")
    if args.update_card:
        from training.card import rerender_model_card
        from training.run_folder import SPEED_FILE, RunFolder

        folder = model_folder(args.model)
        RunFolder(folder).write(SPEED_FILE, result)
        rerender_model_card(folder)
    return result


if __name__ == "__main__":
    main()
