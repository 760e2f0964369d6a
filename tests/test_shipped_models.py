"""The models shipped in the package on real CamVid validation frames: one-step segmentation scores above a floor,
and segmenting its own syntheses agrees with the mask they came from (swapping the ends of the flow, or breaking the
codec or the anchors, fails here)."""

from pathlib import Path

import numpy as np
import pytest

from semflow.loading import DEFAULT_MODEL, EMBEDDED_MODELS, load_pipeline
from semflow.metrics import confusion_matrix, mean_iou, pixel_accuracy

CAMVID = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "camvid"
FRAMES = (0, 50, 100)  # spread over the validation drive, not consecutive video frames
# Floors well under what each shipped model measures on these frames (1-step mIoU; cycle pixel agreement, in %).
FLOORS = {"semflow": (40.0, 30.0), "symmetric": (40.0, 50.0)}


@pytest.fixture(scope="module")
def frames():
    if not CAMVID.is_dir():
        pytest.skip(f"the CamVid dataset is not at {CAMVID}")
    import datasets

    split = datasets.load_dataset(str(CAMVID), split="validation")
    return [(split[i]["image"], np.asarray(split[i]["mask"])) for i in FRAMES]


SHIPPED = [name for name, folder in EMBEDDED_MODELS.items() if (folder / "model_index.json").is_file()]


@pytest.mark.slow  # real models on real frames: half a minute each on 2 CPU threads
@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_model_segments_and_synthesizes_real_street_scenes(name, frames):
    pipe = load_pipeline(name, device="cpu")
    labels = pipe.labels
    real, cycle = (np.zeros((labels.num_classes, labels.num_classes + 1), np.int64) for _ in range(2))
    for image, ids in frames:
        real += confusion_matrix(pipe.segment(image).ids[0], ids, labels.num_classes, labels.ignore_id)
    for _, ids in frames[:2]:
        synthesized = pipe.synthesize(ids, seed=0).images[0]
        cycle += confusion_matrix(pipe.segment(synthesized).ids[0], ids, labels.num_classes, labels.ignore_id)
    miou_floor, cycle_floor = FLOORS[name]
    assert 100 * mean_iou(real) > miou_floor
    assert 100 * pixel_accuracy(cycle) > cycle_floor


def test_the_default_model_is_shipped():
    assert (EMBEDDED_MODELS[DEFAULT_MODEL] / "model_index.json").is_file()
