"""Label sets: class names, display colours and the ignore id of each segmentation vocabulary."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .deprecation import renamed_function, renamed_keywords
from .limits import InvalidInput

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class LabelSet:
    """A segmentation vocabulary.

    Args:
        name: Short identifier, e.g. ``"camvid"``.
        class_names: Names of the classes; class ``c`` has id ``c`` (``0 <= c < num_classes``).
        colors: One display colour (RGB, 0..255) per class. Display colours are for people (legends, overlays,
            brushes); the model sees anchor colours (see `semflow.anchors`).
        ignore_id: Id of "unlabelled" pixels, excluded from metrics; ``None`` when every pixel has a class.
            It must not collide with a class id.
        ignore_name: Display name of the ignore id.
        ignore_color: Display colour of the ignore id.
    """

    name: str
    class_names: tuple[str, ...]
    colors: tuple[RGB, ...]
    ignore_id: int | None = None
    ignore_name: str = "unlabelled"
    ignore_color: RGB = (0, 0, 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", tuple(str(n) for n in self.class_names))
        object.__setattr__(self, "colors", tuple(_as_rgb(c, "colors") for c in self.colors))
        object.__setattr__(self, "ignore_color", _as_rgb(self.ignore_color, "ignore_color"))
        if not self.class_names:
            raise ValueError("class_names must name at least one class")
        if len(self.colors) != len(self.class_names):
            raise ValueError(f"colors has {len(self.colors)} entries but class_names has {len(self.class_names)}")
        if len(self.class_names) > 255:
            raise ValueError(f"at most 255 classes fit in uint8 label maps, got {len(self.class_names)}")
        if self.ignore_id is not None:
            if not isinstance(self.ignore_id, (int, np.integer)) or not 0 <= self.ignore_id <= 255:
                raise ValueError(f"ignore_id must be an integer in 0..255 or None, got {self.ignore_id!r}")
            if self.ignore_id < len(self.class_names):
                raise ValueError(
                    f"ignore_id {self.ignore_id} collides with class '{self.class_names[self.ignore_id]}'; "
                    f"it must be >= num_classes ({len(self.class_names)})"
                )
            object.__setattr__(self, "ignore_id", int(self.ignore_id))

    @property
    def num_classes(self) -> int:
        """Number of real classes (the ignore id is not counted)."""
        return len(self.class_names)

    @renamed_keywords(labels="ids")
    def is_valid(self, ids: np.ndarray) -> np.ndarray:
        """Boolean map of pixels that hold a class id or the ignore id."""
        valid = (ids >= 0) & (ids < self.num_classes)
        if self.ignore_id is not None:
            valid |= ids == self.ignore_id
        return valid

    def check_ids(self, ids: np.ndarray, name: str = "the mask") -> None:
        """Raise `InvalidInput` naming `name` if `ids` holds an id that is neither a class nor the ignore id."""
        invalid = ~self.is_valid(ids)
        if invalid.any():
            bad = np.unique(ids[invalid])[:10].tolist()
            allowed = f"0..{self.num_classes - 1}"
            if self.ignore_id is not None:
                allowed += f" or {self.ignore_id} (ignore)"
            raise InvalidInput(f"{name} holds ids {bad} outside the label set '{self.name}' ({allowed})")

    check_labels = renamed_function("LabelSet.check_labels", check_ids)

    def palette(self) -> np.ndarray:
        """Display colours as a (256, 3) uint8 lookup table; unused ids and the ignore id get `ignore_color`."""
        table = np.tile(np.asarray(self.ignore_color, np.uint8), (256, 1))
        table[: self.num_classes] = np.asarray(self.colors, np.uint8)
        return table

    @renamed_keywords(labels="ids")
    def colorize(self, ids: np.ndarray) -> np.ndarray:
        """Class ids (H, W) → display colours (H, W, 3) uint8."""
        return self.palette()[np.asarray(ids, np.uint8)]

    def colors_to_ids(self, rgb: np.ndarray, name: str = "mask") -> np.ndarray:
        """Display colours (H, W, 3) uint8 → class ids (H, W) uint8; the ignore colour maps to the ignore id.

        Colours must match exactly (a colour preview saved by this project); use nearest-colour snapping for
        anti-aliased paintings instead.

        Raises:
            ValueError: a colour is not in the palette (the message lists some of them).
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"{name} must be an (H, W, 3) uint8 colour image, got {rgb.shape} {rgb.dtype}")
        keys = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
        lookup = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(self.colors)}
        if self.ignore_id is not None:
            r, g, b = self.ignore_color
            lookup.setdefault((r << 16) | (g << 8) | b, self.ignore_id)
        unique, inverse = np.unique(keys, return_inverse=True)
        unknown = [int(k) for k in unique if int(k) not in lookup]
        if unknown:
            shown = ", ".join(f"({k >> 16},{(k >> 8) & 255},{k & 255})" for k in unknown[:5])
            raise ValueError(f"{name} has {len(unknown)} colours outside the '{self.name}' palette, e.g. {shown}")
        return np.asarray([lookup[int(k)] for k in unique], np.uint8)[inverse].reshape(keys.shape)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, stored in a pipeline's config."""
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "colors": [list(c) for c in self.colors],
            "ignore_id": self.ignore_id,
            "ignore_name": self.ignore_name,
            "ignore_color": list(self.ignore_color),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSet:
        """Inverse of `to_dict`."""
        if not isinstance(data, Mapping):
            raise TypeError(f"label set must be a mapping, got {type(data).__name__}")
        missing = {"name", "class_names", "colors"} - set(data)
        if missing:
            raise ValueError(f"label set is missing keys {sorted(missing)}")
        return cls(
            name=data["name"],
            class_names=tuple(data["class_names"]),
            colors=tuple(tuple(c) for c in data["colors"]),
            ignore_id=data.get("ignore_id"),
            ignore_name=data.get("ignore_name", "unlabelled"),
            ignore_color=tuple(data.get("ignore_color", (0, 0, 0))),
        )

    @classmethod
    def from_id2label(cls, path: str | os.PathLike, name: str | None = None) -> LabelSet:
        """Read a dataset's ``id2label.json`` (``{"id2label": {...}, "ignore_index": N, "palette": [...]}``).

        Ids must be contiguous from 0; the ignore id, when given, is split off as the ignore entry.
        """
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        id2label = {int(k): v for k, v in data.get("id2label", data).items()}
        ignore_id = data.get("ignore_index")
        palette = data.get("palette")
        class_ids = sorted(i for i in id2label if i != ignore_id)
        if class_ids != list(range(len(class_ids))):
            raise ValueError(f"{path}: class ids must be contiguous from 0, got {class_ids}")
        colors = [tuple(palette[i]) for i in class_ids] if palette else voc_colormap(len(class_ids), offset=1)
        return cls(
            name=name or os.path.basename(os.path.dirname(os.path.abspath(path))),
            class_names=tuple(id2label[i] for i in class_ids),
            colors=tuple(colors),
            ignore_id=ignore_id,
            ignore_name=id2label.get(ignore_id, "unlabelled") if ignore_id is not None else "unlabelled",
            ignore_color=tuple(palette[ignore_id]) if palette and ignore_id is not None and ignore_id < len(palette)
            else (0, 0, 0),
        )


def _as_rgb(color: Sequence[int], name: str) -> RGB:
    if len(color) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in color):
        raise ValueError(f"{name} entries must be three integers in 0..255, got {color!r}")
    return (int(color[0]), int(color[1]), int(color[2]))


def voc_colormap(n: int, offset: int = 0) -> list[RGB]:
    """The PASCAL VOC bit-interleaved colour map: `n` distinct colours starting at index `offset`."""
    colors = []
    for i in range(offset, offset + n):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        colors.append((r, g, b))
    return colors


CAMVID = LabelSet(
    name="camvid",
    class_names=("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
                 "Bicyclist"),
    colors=((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
            (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192)),
    ignore_id=11,
    ignore_name="Unlabelled",
    ignore_color=(0, 0, 0),
)

CITYSCAPES = LabelSet(
    name="cityscapes",
    class_names=("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                 "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                 "bicycle"),
    colors=((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
            (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
            (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32)),
    ignore_id=255,
)

# Class order of the official SemFlow CelebAMask-HQ data loader (every pixel has a class; 0 is background).
CELEBAMASK_HQ = LabelSet(
    name="celebamask-hq",
    class_names=("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear",
                 "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth"),
    colors=((0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204), (0, 255, 255),
            (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0), (0, 0, 153), (0, 0, 204),
            (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51), (0, 204, 0)),
    ignore_id=None,
)

_COCO_THINGS = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)
_COCO_STUFF = (
    "banner", "blanket", "branch", "bridge", "building-other", "bush", "cabinet", "cage", "cardboard", "carpet",
    "ceiling-other", "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff",
    "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile", "floor-wood", "flower",
    "fog", "food-other", "fruit", "furniture-other", "grass", "gravel", "ground-other", "hill", "house", "leaves",
    "light", "mat", "metal", "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper", "pavement",
    "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad", "river", "road", "rock",
    "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs",
    "stone", "straw", "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable",
    "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood", "water-other",
    "waterdrops", "window-blind", "window-other", "wood",
)

# The 171 COCO-Stuff classes in the contiguous order 0..170 (80 things, then 91 stuff), 255 = unlabelled.
COCO_STUFF = LabelSet(
    name="coco-stuff",
    class_names=_COCO_THINGS + _COCO_STUFF,
    colors=tuple(voc_colormap(171, offset=1)),
    ignore_id=255,
)

# ADE20K SceneParsing 150 classes as 0..149 (the "reduce zero label" convention), 255 = other/unlabelled.
ADE20K = LabelSet(
    name="ade20k",
    class_names=(
        "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass", "cabinet",
        "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
        "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
        "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
        "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path",
        "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge", "bookcase",
        "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove", "palm",
        "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel",
        "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane",
        "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
        "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything", "swimming pool",
        "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven", "ball", "food", "step",
        "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake", "dishwasher", "screen", "blanket",
        "sculpture", "hood", "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen",
        "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
    ),
    colors=tuple(voc_colormap(150, offset=1)),
    ignore_id=255,
    ignore_name="other",
)

BUILTIN_LABEL_SETS: dict[str, LabelSet] = {
    ls.name: ls for ls in (CAMVID, CITYSCAPES, CELEBAMASK_HQ, COCO_STUFF, ADE20K)
}


def get_label_set(label_set: str | LabelSet | Mapping[str, Any]) -> LabelSet:
    """Resolve a label set from a built-in name, a `LabelSet`, its dict form, or a path to an ``id2label.json``.

    Raises:
        ValueError: unknown name. TypeError: unsupported type.
    """
    if isinstance(label_set, LabelSet):
        return label_set
    if isinstance(label_set, Mapping):
        return LabelSet.from_dict(label_set)
    if isinstance(label_set, str):
        key = label_set.lower().replace("_", "-")
        if key in BUILTIN_LABEL_SETS:
            return BUILTIN_LABEL_SETS[key]
        if label_set.endswith(".json") and os.path.isfile(label_set):
            return LabelSet.from_id2label(label_set)
        raise ValueError(f"label_set '{label_set}' is not built in ({', '.join(BUILTIN_LABEL_SETS)}) nor a json file")
    raise TypeError(f"label_set must be a name, a LabelSet or a dict, got {type(label_set).__name__}")
