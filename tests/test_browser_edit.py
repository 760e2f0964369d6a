"""Editing a photo through its mask in a real browser (Debian's Chromium, headless), on the shared server: segment an
example photo, paint a stroke of another class, and "Edit this photo" (offered only then) gives that photo with the
stroke's area re-synthesized and, away from it, the photo's own pixels."""

import shutil
import urllib.request

import browser_helpers as helpers
import numpy as np
import PIL.Image
import pytest
import torch

from app.editor import layer_to_ids
from app.service import EDIT_MARGIN
from app.shortcuts import CLASS_KEYS
from app.ui import EDIT_ID, EDIT_REGION_ID
from semflow.labels import CAMVID
from semflow.regions import feather

pytestmark = pytest.mark.slow

STROKE_CLASS = CAMVID.class_names.index("Bicyclist")


def test_edit_this_photo_changes_the_stroke_and_keeps_the_rest_of_the_photo(browser_server, tmp_path):
    server = browser_server
    from playwright.sync_api import sync_playwright

    from app.examples import PHOTOS

    photo_path = tmp_path / "camvid_0016E5_08079.png"
    shutil.copyfile(PHOTOS / photo_path.name, photo_path)
    photo = np.asarray(PIL.Image.open(photo_path).convert("RGB"))
    with sync_playwright() as playwright:
        browser, page = helpers.open_app(playwright, server.url)
        helpers.segment_photo(page, photo_path, (480, 360))
        box = helpers.canvas_box(page)
        predicted = layer_to_ids(helpers.editor_layer(page), CAMVID)
        assert not page.locator(f"#{EDIT_ID}").is_visible(), "nothing changed yet: no edit offered"
        assert page.get_by_role("button", name="Synthesize", exact=True).is_visible()

        helpers.pick_class(page, CLASS_KEYS[STROKE_CLASS], CAMVID.colors[STROKE_CLASS])
        helpers.paint_stroke(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        edit = page.locator(f"#{EDIT_ID}")
        edit.wait_for(state="visible", timeout=60_000)
        assert page.get_by_role("button", name="Synthesize", exact=True).is_visible(), "Synthesize stays"
        page.locator(f"#{EDIT_REGION_ID} img").wait_for(timeout=30_000)
        painted = layer_to_ids(helpers.editor_layer(page), CAMVID)
        changed = painted != predicted
        assert 100 < changed.sum() < 0.2 * changed.size, changed.sum()

        edit.click()
        page.get_by_text("Round trip on the", exact=False).wait_for(timeout=180_000)
        source = page.locator("#synthesized img").first.get_attribute("src")
        page.screenshot(path=str(tmp_path / "edit.png"), full_page=True)
        browser.close()
    with urllib.request.urlopen(source if source.startswith("http") else server.url + source.lstrip("/")) as reply:
        (tmp_path / "edited.png").write_bytes(reply.read())
    edited = np.asarray(PIL.Image.open(tmp_path / "edited.png").convert("RGB"))
    assert edited.shape == photo.shape
    region = feather(torch.from_numpy(changed), EDIT_MARGIN).numpy() > 0
    assert np.array_equal(edited[~region], photo[~region]), "away from the stroke: the photo's own pixels"
    assert np.abs(edited[changed].astype(int) - photo[changed]).mean() > 8, "the stroke's area re-synthesized"
