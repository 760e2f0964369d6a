"""The models shipped in the package on real CamVid validation frames (the four example photos committed with their
true masks, so this never skips): one-step segmentation scores above a floor, and segmenting its own syntheses agrees
with the mask they came from (swapping the ends of the flow, or breaking the codec or the anchors, fails here)."""

import numpy as np
import PIL.Image
import pytest

from app.examples import PHOTO_MASKS, PHOTOS
from semflow.loading import DEFAULT_MODEL, EMBEDDED_MODELS, load_pipeline
from semflow.metrics import confusion_matrix, mean_iou

# Floors under what each shipped model measures on the four frames (1-step mIoU; cycle mIoU of its own syntheses,
# seed 0, segmented by itself), in %; the shipped EncoderUNets measure: symmetric (`deeper4`) 67.2 / 50.6, semflow
# (`semflow-deeper4`) 63.9 / 71.6.
FLOORS = {"semflow": (58.0, 65.0), "symmetric": (61.0, 44.0)}


@pytest.fixture(scope="module")
def frames():
    photos = sorted(PHOTOS.glob("*.png"))
    assert len(photos) == 4, f"the four example photos are missing from {PHOTOS}"
    return [(PIL.Image.open(path).convert("RGB"), np.asarray(PIL.Image.open(PHOTO_MASKS / path.name)))
            for path in photos]


SHIPPED = [name for name, folder in EMBEDDED_MODELS.items() if (folder / "model_index.json").is_file()]


@pytest.mark.slow  # real models on real frames: about ten seconds each on 2 CPU threads
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_segments_and_synthesizes_real_street_scenes(name, frames):
    pipe = load_pipeline(name, device="cpu")
    labels = pipe.labels
    real, cycle = (np.zeros((labels.num_classes, labels.num_classes + 1), np.int64) for _ in range(2))
    for image, ids in frames:
        real += confusion_matrix(pipe.segment(image).ids[0], ids, labels.num_classes, labels.ignore_id)
    for _, ids in frames:
        synthesized = pipe.synthesize(ids, seed=0).images[0]
        cycle += confusion_matrix(pipe.segment(synthesized).ids[0], ids, labels.num_classes, labels.ignore_id)
    miou_floor, cycle_floor = FLOORS[name]
    assert 100 * mean_iou(real) > miou_floor
    assert 100 * mean_iou(cycle) > cycle_floor


def test_the_default_model_is_shipped():
    assert (EMBEDDED_MODELS[DEFAULT_MODEL] / "model_index.json").is_file()
