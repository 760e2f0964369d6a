"""Simulated annotator: clicks and seconds to bring the model's masks to 95% pixel agreement with the true masks,
with the brush only and with the fill tools beside it, on CamVid validation frames. Prints Markdown; asserts nothing.

    python -m benchmarks.annotator [--frames 10] [--target 0.95] [--dataset DIR] [--out runs/annotator.json]

The annotator starts from the embedded model's predicted mask and sees the true mask (the oracle). It repeatedly
picks the largest wrong region (a connected region of pixels whose true class is the same and whose predicted class
is wrong) and fixes it with the action that fixes the most pixels per simulated second:
- brush: horizontal strokes one brush-diameter apart, a disc of radius 24/12/6/3/1/0 px painted along each, never
  over a pixel of another true class (a careful annotator); the radius with the best rate is used;
- flood fill: a click inside the region (its deepest pixel or one of two random ones) at tolerance 8..40;
- superpixel fill: one click per SLIC superpixel that does more good than harm in the region;
- replace class A with B inside a lasso drawn around the region (its convex hull, 2 px wider), A being one of the
  two classes most predicted there.
Policy "brush only" may use the brush alone; "with fill tools" any of them. Fill results are net: pixels a fill
makes wrong count against it. Time model (`TIME_MODEL`): a click 1.0 s; a keyboard shortcut (class, brush size)
0.5 s; a stroke or lasso 1.0 s to start plus its length at 300 px/s; a flood fill at a tolerance other than the
preset 24 and picking the source class of a replace cost a click more. The oracle makes the annotator optimistic in
both policies alike: it never tries an action in vain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.ndimage
import torch

from app.fill_tools import DEFAULT_TOLERANCE, flood_fill, replace_in_region, superpixel_fill, superpixels

TIME_MODEL = {
    "click_s": 1.0,  # aim at the image and click (a fill click, a tolerance or source-class change)
    "key_s": 0.5,  # a keyboard shortcut: choose a class or a brush size
    "stroke_start_s": 1.0,  # aim and press to start a brush stroke or a lasso
    "drag_px_per_s": 300.0,  # speed along a stroke or a lasso
}
BRUSH_RADII = (24, 12, 6, 3, 1, 0)  # the brush sizes the annotator switches between (0: a single pixel)
TOLERANCES = (8, 16, 24, 40)  # flood-fill tolerances tried (DEFAULT_TOLERANCE is preset; others cost a click)
FLOOD_POINTS = 3  # candidate clicks per region: its deepest pixel and two random ones
REPLACE_SOURCES = 2  # classes A tried for "replace A with B": the most predicted in the region
LASSO_MARGIN = 2  # pixels the drawn lasso leaves around the region's convex hull
MAX_ACTIONS = 2000  # per frame and policy, a safety cap (the simulated-time cap normally ends a hopeless frame)
POLICIES = ("brush only", "with fill tools")


@dataclass
class Cost:
    """What one or more actions cost the annotator."""

    clicks: int = 0  # clicks and keyboard shortcuts
    strokes: int = 0  # brush strokes and lassos
    seconds: float = 0.0

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.clicks + other.clicks, self.strokes + other.strokes, self.seconds + other.seconds)


@dataclass
class Option:
    """A candidate action: the mask after it, its net gain in correct pixels, its cost and the tool's CPU seconds."""

    tool: str
    result: np.ndarray
    gain: int
    cost: Cost
    compute_s: float = 0.0
    radius: int | None = None
    tolerance: int | None = None


@dataclass
class FrameResult:
    index: int
    policy: str
    start_agreement: float
    agreement: float
    reached: bool
    actions: dict[str, int] = field(default_factory=dict)
    clicks: int = 0
    strokes: int = 0
    seconds: float = 0.0
    tool_cpu_s: float = 0.0


class Timer:
    """Seconds each fill-tool call took, by tool: wall clock, and CPU time of this process (what the call costs on
    a core of its own; the wall clock also counts waiting for a shared CPU)."""

    def __init__(self) -> None:
        self.wall: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def __call__(self, tool: str, fn, *args, **kwargs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn(*args, **kwargs)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        self.wall.setdefault(tool, []).append(wall)
        self.cpu.setdefault(tool, []).append(cpu)
        return result, cpu


class Annotator:
    """One simulated annotator on one frame: the photo, the true ids (oracle) and what is selected in the editor."""

    def __init__(self, photo: np.ndarray, truth: np.ndarray, ignore_id: int | None, fill_tools: bool,
                 timer: Timer, max_seconds: float) -> None:
        self.photo, self.truth, self.fill_tools, self.timer = photo, truth, fill_tools, timer
        self.valid = truth != ignore_id if ignore_id is not None else np.ones(truth.shape, bool)
        self.ignore_id = ignore_id
        self.max_seconds = max_seconds
        self.current_class: int | None = None
        self.radius: int | None = None
        self.rng = np.random.default_rng(0)
        self.setup_cpu_s = 0.0  # the superpixels, computed when the image is opened
        if fill_tools:
            self.segments, self.setup_cpu_s = timer("superpixels (SLIC, once per image)", superpixels, photo)

    def agreement(self, ids: np.ndarray) -> float:
        return float((ids == self.truth)[self.valid].mean())

    def gain(self, before: np.ndarray, after: np.ndarray) -> int:
        changed = (before != after) & self.valid
        return int((after[changed] == self.truth[changed]).sum() - (before[changed] == self.truth[changed]).sum())

    def largest_wrong_region(self, ids: np.ndarray) -> tuple[np.ndarray, int] | None:
        """The largest 8-connected region of wrong pixels sharing one true class, and that class."""
        wrong = (ids != self.truth) & self.valid
        best, best_size, best_class = None, 0, -1
        for cls in np.unique(self.truth[wrong]):
            components, count = scipy.ndimage.label(wrong & (self.truth == cls), structure=np.ones((3, 3)))
            if count == 0:
                continue
            sizes = np.bincount(components.ravel())[1:]
            largest = int(sizes.argmax())
            if sizes[largest] > best_size:
                best, best_size, best_class = components == largest + 1, int(sizes[largest]), int(cls)
        return (best, best_class) if best is not None else None

    def run(self, ids: np.ndarray, target: float, index: int) -> FrameResult:
        policy = POLICIES[1] if self.fill_tools else POLICIES[0]
        result = FrameResult(index, policy, self.agreement(ids), self.agreement(ids), False,
                             tool_cpu_s=self.setup_cpu_s)
        total = Cost()
        for _ in range(MAX_ACTIONS):
            if result.agreement >= target or total.seconds >= self.max_seconds:
                break
            found = self.largest_wrong_region(ids)
            if found is None:
                break
            region, cls = found
            options = [self.brush(ids, region, cls)]
            if self.fill_tools:
                options += [*self.floods(ids, region, cls), self.superpixel_clicks(ids, region, cls),
                            *self.replaces(ids, region, cls)]
            options = [option for option in options if option is not None and option.gain > 0]
            if not options:
                break
            best = max(options, key=lambda option: option.gain / option.cost.seconds)
            ids = best.result
            total = total + best.cost
            result.actions[best.tool] = result.actions.get(best.tool, 0) + 1
            result.tool_cpu_s += best.compute_s
            self.current_class = cls
            if best.radius is not None:
                self.radius = best.radius
            result.agreement = self.agreement(ids)
        result.reached = result.agreement >= target
        result.clicks, result.strokes, result.seconds = total.clicks, total.strokes, total.seconds
        return result

    def choose(self, cls: int) -> Cost:
        """Selecting the class when it is not the current one (a shortcut)."""
        return Cost(1, 0, TIME_MODEL["key_s"]) if cls != self.current_class else Cost()

    def brush(self, ids: np.ndarray, region: np.ndarray, cls: int) -> Option | None:
        """The best-rate brush radius for the region: strokes along rows one diameter apart, each a run of disc
        centres whose disc stays on pixels of the true class (or unlabelled) and touches the region."""
        allowed = (self.truth == cls) | ~self.valid
        ys, xs = np.nonzero(region)
        pad = 2 * max(BRUSH_RADII) + 2  # exact within the crop: a blocking pixel is at most 2r+1 from a centre
        y0, x0 = max(ys.min() - pad, 0), max(xs.min() - pad, 0)
        y1, x1 = min(ys.max() + pad + 1, ids.shape[0]), min(xs.max() + pad + 1, ids.shape[1])
        crop = (slice(y0, y1), slice(x0, x1))
        room = scipy.ndimage.distance_transform_edt(allowed[crop])
        to_region = scipy.ndimage.distance_transform_edt(~region[crop])
        top, bottom = ys.min() - y0, ys.max() - y0
        best = None
        for radius in BRUSH_RADII:
            fits = (room > radius) & (to_region <= radius)
            centres = np.zeros_like(fits)
            rows = np.arange(top + radius, bottom + radius + 1, 2 * radius + 1)
            rows = rows[rows < fits.shape[0]]
            centres[rows] = fits[rows]
            if not centres.any():
                continue
            painted = scipy.ndimage.distance_transform_edt(~centres) <= radius
            after = ids.copy()
            after[crop][painted] = cls
            gain = self.gain(ids, after)
            if gain <= 0:
                continue
            padded = np.pad(centres[rows], ((0, 0), (1, 1)))
            steps = np.diff(padded.astype(np.int8), axis=1)
            strokes = int((steps == 1).sum())
            length = int(centres[rows].sum())
            cost = self.choose(cls) + Cost(
                int(radius != self.radius), strokes,
                TIME_MODEL["key_s"] * (radius != self.radius) + strokes * TIME_MODEL["stroke_start_s"]
                + length / TIME_MODEL["drag_px_per_s"])
            option = Option("brush", after, gain, cost, radius=radius)
            if best is None or option.gain / option.cost.seconds > best.gain / best.cost.seconds:
                best = option
        return best

    def floods(self, ids: np.ndarray, region: np.ndarray, cls: int) -> list[Option]:
        depth = scipy.ndimage.distance_transform_edt(region)
        deepest = np.unravel_index(int(depth.argmax()), depth.shape)
        ys, xs = np.nonzero(region)
        picks = self.rng.choice(len(ys), size=min(FLOOD_POINTS - 1, len(ys)), replace=False)
        points = [(int(deepest[1]), int(deepest[0]))] + [(int(xs[i]), int(ys[i])) for i in picks]
        options = []
        for point in points:
            for tolerance in TOLERANCES:
                after, elapsed = self.timer("flood fill", flood_fill, ids, self.photo, point, cls, tolerance)
                extra = Cost(1, 0, TIME_MODEL["click_s"]) if tolerance != DEFAULT_TOLERANCE else Cost()
                cost = self.choose(cls) + extra + Cost(1, 0, TIME_MODEL["click_s"])
                options.append(Option("flood fill", after, self.gain(ids, after), cost, elapsed,
                                      tolerance=tolerance))
        return options

    def superpixel_clicks(self, ids: np.ndarray, region: np.ndarray, cls: int) -> Option | None:
        segments = self.segments
        count = int(segments.max()) + 1
        fixes = np.bincount(segments[(self.truth == cls) & (ids != cls) & self.valid], minlength=count)
        harms = np.bincount(segments[(ids == self.truth) & (self.truth != cls) & self.valid], minlength=count)
        useful = [s for s in np.unique(segments[region]) if fixes[s] > harms[s]]
        if not useful:
            return None
        after, compute = ids, 0.0
        for segment in useful:
            y, x = np.argwhere(segments == segment)[0]
            after, elapsed = self.timer("superpixel fill", superpixel_fill, after, self.photo, (int(x), int(y)), cls)
            compute += elapsed
        cost = self.choose(cls) + Cost(len(useful), 0, len(useful) * TIME_MODEL["click_s"])
        return Option("superpixel fill", after, self.gain(ids, after), cost, compute)

    def replaces(self, ids: np.ndarray, region: np.ndarray, cls: int) -> list[Option]:
        from skimage.measure import perimeter
        from skimage.morphology import convex_hull_image

        ys, xs = np.nonzero(region)
        y0, x0 = max(ys.min() - LASSO_MARGIN - 1, 0), max(xs.min() - LASSO_MARGIN - 1, 0)
        y1, x1 = min(ys.max() + LASSO_MARGIN + 2, ids.shape[0]), min(xs.max() + LASSO_MARGIN + 2, ids.shape[1])
        hull = scipy.ndimage.binary_dilation(convex_hull_image(region[y0:y1, x0:x1]), iterations=LASSO_MARGIN)
        lasso = np.zeros(ids.shape, bool)
        lasso[y0:y1, x0:x1] = hull
        drawing = Cost(1, 1, TIME_MODEL["click_s"] + TIME_MODEL["stroke_start_s"]
                       + perimeter(hull) / TIME_MODEL["drag_px_per_s"])  # pick class A, draw the lasso
        predicted = np.bincount(ids[region], minlength=256)
        options = []
        for source in np.argsort(predicted)[::-1][:REPLACE_SOURCES]:
            if predicted[source] == 0:
                break
            after, elapsed = self.timer("replace in region", replace_in_region, ids, lasso, int(source), cls)
            options.append(Option("replace in region", after, self.gain(ids, after), self.choose(cls) + drawing,
                                  elapsed))
        return options


def frame_indices(count: int, total: int) -> list[int]:
    """`count` frames spread evenly over the split."""
    return sorted({int(i) for i in np.linspace(0, total - 1, min(count, total)).round()})


def summarize(results: list[FrameResult], timer: Timer, target: float) -> str:
    lines = [f"| policy | frames | reached {target:.0%} | agreement before → after | mean clicks | mean strokes "
             f"| mean simulated s | mean tool CPU s |", "|---|---|---|---|---|---|---|---|"]
    for policy in POLICIES:
        rows = [r for r in results if r.policy == policy]

        def mean(key: str, rows: list[FrameResult] = rows) -> float:
            return statistics.mean(getattr(r, key) for r in rows)

        lines.append(f"| {policy} | {len(rows)} | {sum(r.reached for r in rows)} | {mean('start_agreement'):.1%} → "
                     f"{mean('agreement'):.1%} | {mean('clicks'):.1f} | {mean('strokes'):.1f} | {mean('seconds'):.1f} "
                     f"| {mean('tool_cpu_s'):.3f} |")
    actions: dict[str, int] = {}
    for r in results:
        if r.policy == POLICIES[1]:
            for tool, n in r.actions.items():
                actions[tool] = actions.get(tool, 0) + n
    lines += ["", "| tool (server compute per call) | calls | mean CPU ms | mean wall ms | max wall ms "
                  "| actions chosen with fill tools |", "|---|---|---|---|---|---|"]
    for tool, cpu in sorted(timer.cpu.items()):
        wall = timer.wall[tool]
        lines.append(f"| {tool} | {len(cpu)} | {statistics.mean(cpu) * 1000:.1f} | {statistics.mean(wall) * 1000:.1f} "
                     f"| {max(wall) * 1000:.1f} | {actions.get(tool, '—')} |")
    lines.append(f"| brush (in the browser) | — | — | — | — | {actions.get('brush', 0)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.annotator", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10, help="validation frames, spread evenly over the split")
    parser.add_argument("--target", type=float, default=0.95, help="pixel agreement to reach")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="simulated seconds per frame at most")
    parser.add_argument("--dataset", default="/work/shared/datasets/camvid", help="folder or Hub id")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--model", default=None, help="embedded name, folder or Hub id (default: the default)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=Path("runs/annotator.json"), help="where to write the JSON")
    args = parser.parse_args(argv)

    import datasets

    from semflow import load_pipeline

    torch.set_num_threads(args.threads)
    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    split = datasets.load_dataset(args.dataset, split=args.split)
    timer, results = Timer(), []
    started = time.perf_counter()
    for index in frame_indices(args.frames, len(split)):
        row = split[index]
        photo = np.asarray(row["image"].convert("RGB"))
        truth = np.asarray(row["mask"])
        predicted = pipe.segment(row["image"]).ids[0]
        for fill_tools in (False, True):
            annotator = Annotator(photo, truth, pipe.labels.ignore_id, fill_tools, timer, args.max_seconds)
            result = annotator.run(predicted.copy(), args.target, index)
            results.append(result)
            print(f"frame {index:3d} {result.policy:>15}: {result.start_agreement:.1%} → {result.agreement:.1%} in "
                  f"{result.clicks} clicks, {result.strokes} strokes, {result.seconds:.0f} s simulated",
                  file=sys.stderr, flush=True)
    table = summarize(results, timer, args.target)
    print(table)
    report = {
        "command": "python -m benchmarks.annotator " + " ".join(argv if argv is not None else sys.argv[1:]),
        "dataset": args.dataset, "split": args.split, "model": args.model or "embedded default",
        "target": args.target, "max_seconds": args.max_seconds, "time_model": TIME_MODEL,
        "brush_radii": BRUSH_RADII, "tolerances": TOLERANCES, "wall_s": time.perf_counter() - started,
        "frames": [asdict(r) for r in results],
        "tool_calls": {tool: {"calls": len(cpu), "mean_cpu_s": statistics.mean(cpu),
                              "mean_wall_s": statistics.mean(timer.wall[tool]), "max_wall_s": max(timer.wall[tool])}
                       for tool, cpu in timer.cpu.items()},
        "markdown": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
