"""What the pipeline, the command line and the app accept: every range and rule, one checker and one message each.

The messages are written for people (the app shows them as they are, a capital letter and a full stop added), and name
each value as the page and the documentation do ("steps", "seed", "perturbation β", ...)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


class InvalidInput(ValueError):
    """A value given by a caller is outside what is accepted; the message says which, and what is."""


SOLVERS = ("euler", "heun", "rk45")  # the ODE solvers `semflow.solvers.integrate` implements
MAX_STEPS = 100  # integration steps of Euler / Heun (RK45: trajectory intervals)
MAX_SEED = 2**32 - 1  # seeds are 0..MAX_SEED, as numpy and every UI number field take them
MAX_IMAGES_PER_MASK = 16  # synthesized variants of one mask in one call
MIN_SIDE = 8  # pixels, each side of an image or mask file, and of a canvas a layout is painted on
MAX_PIXELS = 40_000_000  # an input image or mask larger than this is refused before it is decoded
WORKING_SIDE = 1024  # larger inputs are brought to this longer side before they reach the model
MAX_EDIT_MARGIN = 128  # pixels an edited region may be grown by so that its seam blends


def whole_number(value: Any, name: str) -> int:
    """`value` as an int; refuses booleans, NaN, ±infinity, fractions and text that is not a whole number."""
    if isinstance(value, bool):
        raise InvalidInput(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise InvalidInput(f"{name} must be a whole number, got {value!r}")
        return int(value)
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        pass
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a whole number, got {value!r}") from None
    return whole_number(number, name)


def number(value: Any, name: str) -> float:
    """`value` as a finite float; refuses booleans, NaN, ±infinity and anything that is not a number (text too)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InvalidInput(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number, got {value!r}")
    return float(value)


def check_steps(steps: Any, name: str = "steps") -> int:
    """1 <= steps <= MAX_STEPS."""
    steps = whole_number(steps, name)
    if not 1 <= steps <= MAX_STEPS:
        raise InvalidInput(f"{name} must be between 1 and {MAX_STEPS}, got {steps}")
    return steps


def check_solver(solver: Any, name: str = "solver") -> str:
    """One of `SOLVERS`."""
    if solver not in SOLVERS:
        raise InvalidInput(f"{name} must be one of {', '.join(SOLVERS)}, got {solver!r}")
    return solver


def check_seed(seed: Any, name: str = "seed", count: int = 1) -> int:
    """0 <= seed and seed + count - 1 <= MAX_SEED (variant v of a call uses seed + v)."""
    seed = whole_number(seed, name)
    if not 0 <= seed <= MAX_SEED - (count - 1):
        raise InvalidInput(f"{name} must be between 0 and {MAX_SEED - (count - 1)}, got {seed}")
    return seed


def check_images_per_mask(count: Any, name: str = "num_images_per_mask", maximum: int = MAX_IMAGES_PER_MASK) -> int:
    """1 <= count <= maximum (MAX_IMAGES_PER_MASK unless a caller allows fewer)."""
    count = whole_number(count, name)
    if not 1 <= count <= maximum:
        raise InvalidInput(f"{name} must be between 1 and {maximum}, got {count}")
    return count


def check_pixels(width: int, height: int, name: str, max_pixels: int = MAX_PIXELS) -> None:
    """width·height <= max_pixels (MAX_PIXELS unless a caller allows fewer): the limit on anything the pipeline
    takes, a file or an image in memory."""
    if width * height > max_pixels:
        raise InvalidInput(f"{name} is {width}x{height} pixels; the limit is {max_pixels / 1e6:g} megapixels")


def check_size(width: int, height: int, name: str, max_pixels: int = MAX_PIXELS) -> None:
    """An image or mask file, or a canvas: `check_pixels`, and MIN_SIDE <= each side."""
    check_pixels(width, height, name, max_pixels)
    if min(width, height) < MIN_SIDE:
        raise InvalidInput(f"{name} is {width}x{height}; it must be at least {MIN_SIDE} pixels on each side")


def too_large_to_open(name: str, pixels: float, max_pixels: int = MAX_PIXELS) -> InvalidInput:
    """The refusal of a file whose header alone shows it is a decompression bomb (more than `pixels` pixels)."""
    return InvalidInput(f"{name} is more than {pixels / 1e6:g} megapixels, too large to open safely; the limit is "
                        f"{max_pixels / 1e6:g} megapixels")


def check_canvas(width: Any, height: Any, name: str, max_side: int = WORKING_SIDE) -> tuple[int, int]:
    """A canvas to paint a layout on: whole numbers, MIN_SIDE <= each side <= `max_side` (what an uploaded photo is
    brought to for editing: `WORKING_SIDE` unless a caller allows less)."""
    width, height = whole_number(width, f"the width of {name}"), whole_number(height, f"the height of {name}")
    if not (MIN_SIDE <= width <= max_side and MIN_SIDE <= height <= max_side):
        raise InvalidInput(f"{name} must be between {MIN_SIDE} and {max_side} pixels on each side (as a photo is "
                           f"for editing), got {width}x{height}")
    return width, height


def check_margin(margin: Any, name: str = "margin") -> int:
    """0 <= margin <= MAX_EDIT_MARGIN pixels."""
    margin = whole_number(margin, name)
    if not 0 <= margin <= MAX_EDIT_MARGIN:
        raise InvalidInput(f"{name} must be between 0 and {MAX_EDIT_MARGIN} pixels, got {margin}")
    return margin


def check_strength(strength: Any, name: str = "strength") -> float:
    """0 <= strength <= 1 (how much of the rest of a photo an edit restyles)."""
    if isinstance(strength, bool) or not isinstance(strength, (int, float, np.integer, np.floating)) or \
            not 0.0 <= strength <= 1.0:
        raise InvalidInput(f"{name} must be a number between 0 (keep the rest of the photo) and 1, got {strength!r}")
    return float(strength)


def perturbation_limit(anchor_s: float) -> float:
    """β must stay below half the anchor spacing s (Eq. 14), so that a perturbed mask still decodes to its classes."""
    return anchor_s / 2


def check_perturbation(beta: Any, anchor_s: float, name: str = "perturbation β") -> float:
    """0 <= β < s/2 in 0..255 units (`perturbation_limit`)."""
    beta = number(beta, name)
    if not 0.0 <= beta < perturbation_limit(anchor_s):
        raise InvalidInput(f"{name} must be at least 0 and below {perturbation_limit(anchor_s):g} (half the anchor "
                           f"spacing s = {anchor_s:g}), got {beta:g}")
    return beta


def check_seeds(seeds: Sequence[Any], name: str = "seeds") -> list[int]:
    """One image per seed: 1..MAX_IMAGES_PER_MASK seeds, each a valid seed (`check_seed`)."""
    check_images_per_mask(len(seeds), f"the number of {name}")
    return [check_seed(seed, name) for seed in seeds]


def working_size(width: int, height: int, max_side: int = WORKING_SIDE) -> tuple[int, int]:
    """(width, height) scaled so the longer side is at most `max_side`, keeping the aspect ratio."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))
