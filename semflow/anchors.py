"""Anchor encoding (Eq. 7): class ids ↔ anchor-colour images in model units, decoded by nearest anchor."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .deprecation import renamed_keywords

# Model units: 0..255 pixel values map linearly onto [-1, 1].
WHITE = 255.0


def to_model_units(x_255: torch.Tensor) -> torch.Tensor:
    """0..255 → [-1, 1]."""
    return x_255 / 127.5 - 1.0


def to_pixel_units(x_model: torch.Tensor) -> torch.Tensor:
    """[-1, 1] → 0..255."""
    return (x_model + 1.0) * 127.5


@dataclass(frozen=True)
class AnchorSpec:
    """Anchor grid of Eq. 7: class ``c = m0·k² + m1·k + m2`` is drawn as RGB ``s·(m0, m1, m2)`` (0..255 units).

    Args:
        k: Levels per channel (``k³`` anchor slots).
        s: Spacing between levels in 0..255 units; ``s·(k-1) <= 255``.
    """

    k: int
    s: float

    def __post_init__(self) -> None:
        if not isinstance(self.k, int) or self.k < 2:
            raise ValueError(f"anchor k must be an integer >= 2, got {self.k!r}")
        if not self.s > 0 or self.s * (self.k - 1) > WHITE + 1e-9:
            raise ValueError(f"anchor s must satisfy 0 < s·(k-1) <= 255, got k={self.k}, s={self.s}")

    @classmethod
    def official(cls) -> AnchorSpec:
        """The official SemFlow grid, k=6, s=50."""
        return cls(k=6, s=50.0)

    @classmethod
    def spread(cls, num_classes: int) -> AnchorSpec:
        """The smallest grid that holds `num_classes` anchors plus white, spaced as far apart as 0..255 allows.

        The minimum distance between two anchors is `s`, so the smallest `k` gives the largest `s = 255/(k-1)`.
        """
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        k = 2
        while k**3 - 1 < num_classes:  # the corner (k-1, k-1, k-1) is white, reserved for ignored pixels
            k += 1
        return cls(k=k, s=WHITE / (k - 1))

    def check(self, num_classes: int) -> None:
        """Raise `ValueError` if `num_classes` anchors do not fit on this grid without touching white."""
        slots = self.k**3 - (1 if self.s * (self.k - 1) >= WHITE else 0)
        if num_classes > slots:
            raise ValueError(f"{num_classes} classes do not fit on the anchor grid k={self.k}, s={self.s} "
                             f"({slots} slots that differ from white)")


def anchor_colors(num_classes: int, spec: AnchorSpec) -> torch.Tensor:
    """Anchor colours of classes ``0..num_classes-1`` (Eq. 7).

    Returns:
        (num_classes, 3) float64 tensor in 0..255 units.
    """
    spec.check(num_classes)
    c = torch.arange(num_classes, dtype=torch.int64)
    digits = torch.stack([c // spec.k**2, (c // spec.k) % spec.k, c % spec.k], dim=1)  # c = m0·k² + m1·k + m2
    return digits.to(torch.float64) * spec.s


@renamed_keywords(labels="ids")
def encode_anchors(
    ids: torch.Tensor, num_classes: int, spec: AnchorSpec, ignore_id: int | None = None
) -> torch.Tensor:
    """Class ids → anchor image; ignored pixels are white.

    Args:
        ids: (B, H, W) integer tensor of class ids in ``0..num_classes-1`` or `ignore_id`.
    Returns:
        (B, 3, H, W) float32 tensor in model units [-1, 1].
    Raises:
        ValueError: an id is neither a class nor `ignore_id`.
    """
    if ids.dim() != 3 or ids.dtype.is_floating_point:
        raise ValueError(f"ids must be a (B, H, W) integer tensor, got {tuple(ids.shape)} {ids.dtype}")
    ids = ids.long()
    is_ignore = ids == ignore_id if ignore_id is not None else torch.zeros_like(ids, dtype=torch.bool)
    bad = ~is_ignore & ((ids < 0) | (ids >= num_classes))
    if bad.any():
        raise ValueError(f"ids {torch.unique(ids[bad])[:10].tolist()} are outside 0..{num_classes - 1}"
                         + (f" and ignore id {ignore_id}" if ignore_id is not None else ""))
    table = torch.cat([anchor_colors(num_classes, spec), torch.full((1, 3), WHITE, dtype=torch.float64)])
    index = torch.where(is_ignore, num_classes, ids)
    x_255 = table.to(device=ids.device, dtype=torch.float32)[index].permute(0, 3, 1, 2)
    return to_model_units(x_255).contiguous()


def decode_anchors(
    x_mask: torch.Tensor, num_classes: int, spec: AnchorSpec, ignore_id: int | None = None, chunk: int = 1 << 18
) -> torch.Tensor:
    """Nearest anchor per pixel → class ids.

    Args:
        x_mask: (B, 3, H, W) float tensor in model units.
        ignore_id: When given, white is a candidate too and decodes to `ignore_id`; otherwise every pixel gets
            its nearest class (the paper's decoding).
    Returns:
        (B, H, W) int64 tensor of ids.
    """
    return nearest_anchors(x_mask, num_classes, spec, ignore_id, chunk)[0]


def nearest_anchors(
    x_mask: torch.Tensor, num_classes: int, spec: AnchorSpec, ignore_id: int | None = None, chunk: int = 1 << 18
) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest anchor per pixel and how clearly it is the nearest.

    Returns:
        ids: (B, H, W) int64 class ids, as `decode_anchors`.
        margin: (B, H, W) float32 in [0, 1]: (d₂ − d₁) / spacing, the distance to the second-nearest anchor minus
            the distance to the nearest, over the distance between neighbouring anchors. 0 means halfway between two
            anchors (a coin toss), 1 means on an anchor or beyond; a per-pixel confidence of the decoding.
    """
    if x_mask.dim() != 4 or x_mask.shape[1] != 3:
        raise ValueError(f"x_mask must be (B, 3, H, W), got {tuple(x_mask.shape)}")
    table = anchor_colors(num_classes, spec)
    ids = torch.arange(num_classes)
    if ignore_id is not None:
        table = torch.cat([table, torch.full((1, 3), WHITE, dtype=torch.float64)])
        ids = torch.cat([ids, torch.tensor([ignore_id])])
    anchors = to_model_units(table).to(device=x_mask.device, dtype=torch.float32)
    spacing = spec.s / 127.5  # neighbouring anchors are s apart in 0..255 units
    pixels = x_mask.float().permute(0, 2, 3, 1).reshape(-1, 3)
    nearest = torch.empty(pixels.shape[0], dtype=torch.int64, device=x_mask.device)
    margin = torch.ones(pixels.shape[0], dtype=torch.float32, device=x_mask.device)
    for start in range(0, pixels.shape[0], chunk):
        distances = torch.cdist(pixels[start : start + chunk], anchors)
        if len(anchors) > 1:
            two, index = distances.topk(2, dim=1, largest=False)
            nearest[start : start + chunk] = index[:, 0]
            margin[start : start + chunk] = ((two[:, 1] - two[:, 0]) / spacing).clamp(0, 1)
        else:
            nearest[start : start + chunk] = 0
    b, _, h, w = x_mask.shape
    return ids.to(x_mask.device)[nearest].view(b, h, w), margin.view(b, h, w)
