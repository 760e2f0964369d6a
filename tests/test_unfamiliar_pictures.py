"""On the shipped default model: a picture far from the street scenes it knows (an astronaut) is said to be so; the
CamVid validation frames it is compared with, and other street frames, are not."""

import numpy as np
import PIL.Image
import pytest

pytestmark = pytest.mark.slow


def test_an_astronaut_is_unfamiliar_and_street_frames_are_not(tmp_path, monkeypatch):
    import skimage.data

    from app.examples import PHOTOS
    from app.model import Models
    from app.service import Studio
    from app.settings import Settings

    monkeypatch.delenv("SEMFLOW_MODEL", raising=False)
    settings = Settings(annotations_dir=tmp_path / "ann", cache_dir=tmp_path / "cache")
    studio = Studio(Models().get("symmetric"), settings)
    typical = studio.typical_confidence()
    assert 0.55 < typical < 0.8, typical
    astronaut = PIL.Image.fromarray(skimage.data.astronaut())
    _, _, confidence = studio.segment(astronaut)
    assert "does not look like the street scenes the model knows" in studio.unfamiliar(float(confidence.mean()))
    for photo in sorted(PHOTOS.glob("*.png")):
        frame = PIL.Image.open(photo).convert("RGB")
        mirrored = frame.transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT)  # a street frame the reference did not see
        for picture in (frame, mirrored):
            _, _, confidence = studio.segment(picture)
            assert studio.unfamiliar(float(np.mean(confidence))) is None, photo.name
