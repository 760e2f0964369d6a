"""The mask editor in a real browser (Debian's Chromium, headless), several images in one tab: after a larger image a
smaller one's mask stays on its photo, and the saved mask is, pixel for pixel, what was segmented plus the stroke."""

import io
import json
import re

import numpy as np
import PIL.Image
import pytest
import scipy.ndimage
from browser_helpers import (
    canvas_box,
    editor_layer,
    editor_size,
    open_app,
    paint_stroke,
    pick_class,
    require_chromium,
    segment_photo,
)

from app.editor import PAINTED_ALPHA, layer_to_ids, mark_agreement
from app.shortcuts import CLASS_KEYS
from semflow.labels import CAMVID

pytestmark = pytest.mark.slow

STROKE_CLASS = CAMVID.class_names.index("Bicyclist")


@pytest.fixture(scope="module")
def server(request):
    require_chromium()  # before the shared server starts: without Chromium there is nothing to drive it
    return request.getfixturevalue("app_server")


def _rows(server) -> list[dict]:
    path = server.root / "annotations" / "metadata.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _photos(folder):
    """Real street photos at three sizes: a 512x512 and a 320x240 from CamVid validation frames shipped as the app's
    examples (see their NOTICE), and one of them at its own 480x360."""
    from app.examples import PHOTOS

    big, street, small = folder / "big.png", folder / "street.png", folder / "small.png"
    PIL.Image.open(PHOTOS / "camvid_0016E5_07959.png").convert("RGB").resize((512, 512)).save(big)
    PIL.Image.open(PHOTOS / "camvid_0016E5_08079.png").convert("RGB").save(street)
    PIL.Image.open(PHOTOS / "camvid_0016E5_08159.png").convert("RGB").resize((320, 240)).save(small)
    return big, street, small


def _stroke_and_save(page, server, path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Paint a Bicyclist stroke across the middle of the photo and save; (layer before, layer after, saved mask)."""
    photo = PIL.Image.open(path)
    before = editor_layer(page)
    assert editor_size(page) == photo.size and before.shape[:2] == (photo.height, photo.width)
    agreement, marked = mark_agreement(before, photo)
    assert marked > 0.9 * photo.width * photo.height and agreement == 1.0, "the layer is not where the server put it"
    box = canvas_box(page)
    pick_class(page, CLASS_KEYS[STROKE_CLASS], CAMVID.colors[STROKE_CLASS])
    paint_stroke(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(500)
    after = editor_layer(page)
    count = len(_rows(server))
    page.get_by_role("button", name="Save image + corrected mask").click()
    page.wait_for_function(f"() => document.body.innerText.includes('Saved') && "
                           f"document.body.innerText.includes('{count + 1} annotations in the folder')",
                           timeout=60_000)
    row = _rows(server)[-1]
    assert row["source_file"] == path.name
    return before, after, np.asarray(PIL.Image.open(server.root / "annotations" / row["mask_file_name"]))


def test_after_a_larger_image_a_smaller_ones_mask_is_saved_in_place(server, tmp_path):
    from playwright.sync_api import sync_playwright

    big, street, small = _photos(tmp_path)
    with sync_playwright() as playwright:
        browser, page = open_app(playwright, server.url)
        segment_photo(page, big, (512, 512))
        results = []
        for path, size in ((street, (480, 360)), (small, (320, 240))):  # large, then smaller ones, in one tab
            segment_photo(page, path, size)
            results.append(_stroke_and_save(page, server, path))
        browser.close()

    for before, after, saved in results:
        expected = layer_to_ids(after, CAMVID)  # what the editor showed the annotator, read as the server reads it
        assert saved.shape == expected.shape and np.array_equal(saved, expected), "saved ≠ the editor's own mask"
        touched = (after != before).any(-1)
        segmented = layer_to_ids(before, CAMVID)
        assert np.array_equal(saved[~touched], segmented[~touched]), "an unpainted pixel changed: the mask moved"
        core = scipy.ndimage.binary_erosion(touched, iterations=2) & (after[..., 3] >= PAINTED_ALPHA)
        assert core.sum() > 500 and (saved[core] == STROKE_CLASS).all(), "the stroke is not in the saved mask"
        rows = np.flatnonzero(touched.any(1))
        middle = saved.shape[0] / 2
        assert abs(rows.mean() - middle) < 3 and rows.max() - rows.min() < 30, "the stroke is not where it was painted"


def _pick_model(page, name: str) -> None:
    page.get_by_role("combobox", name="Model").click()
    page.get_by_role("option", name=name, exact=True).click()


def _beta(page) -> float | None:
    """The β slider's value, or None while it is hidden."""
    field = page.locator("#beta input[type=number]")
    return float(field.input_value()) if field.count() and field.is_visible() else None


def _synthesized(page) -> list[np.ndarray]:
    sources = page.evaluate("() => [...document.querySelectorAll('#synthesized img')].map(img => img.src)")
    images = [np.asarray(PIL.Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB")) for src in sources]
    return [image.astype(int) for image in images]


def test_beta_follows_the_model_and_the_papers_variants_differ(server, tmp_path):
    from playwright.sync_api import sync_playwright

    _, street, _ = _photos(tmp_path)
    with sync_playwright() as playwright:
        browser, page = open_app(playwright, server.url)
        assert _beta(page) is None, "the default (symmetric) model has no β to offer"
        segment_photo(page, street, (480, 360))
        _pick_model(page, "semflow")
        page.wait_for_function("() => document.querySelector('#beta input[type=number]')?.value === '40'",
                               timeout=60_000)
        assert _beta(page) == 40.0, "the paper's model synthesizes with its own β"
        page.get_by_role("button", name="Synthesize", exact=True).click()
        page.get_by_text("Round trip").wait_for(timeout=180_000)
        page.wait_for_function("() => document.querySelectorAll('#synthesized img').length === 2", timeout=60_000)
        first, second = _synthesized(page)
        assert np.abs(first - second).mean() > 1.0, "seeds 0 and 1 gave the same image"

        page.locator("#beta input[type=number]").fill("10")
        page.locator("#beta input[type=number]").press("Enter")
        _pick_model(page, "symmetric")
        page.wait_for_function("() => !document.querySelector('#beta input[type=number]')?.checkVisibility()",
                               timeout=60_000)
        assert _beta(page) is None
        _pick_model(page, "semflow")
        page.wait_for_function("() => document.querySelector('#beta input[type=number]')?.value === '40'",
                               timeout=60_000)
        browser.close()


def _click_on_view(page, point: tuple[int, int], size: tuple[int, int], expect: str) -> tuple[int, int]:
    """Click the segmentation view near the photo's pixel `point` (it shows the photo scaled to fit its box, and the
    mouse moves by whole CSS pixels) and wait for the fill status to start with `expect`; returns the pixel the server
    got, from the status ("... at (x, y) ...")."""
    box = page.locator("#segmentation-view img").bounding_box()
    scale = min(box["width"] / size[0], box["height"] / size[1])
    left = box["x"] + (box["width"] - scale * size[0]) / 2
    top = box["y"] + (box["height"] - scale * size[1]) / 2
    page.mouse.click(left + point[0] * scale, top + point[1] * scale)
    page.wait_for_function("(expect) => document.querySelector('#fill-status')?.innerText.startsWith(expect)",
                           arg=expect, timeout=60_000)
    got = re.search(r"at \((\d+), (\d+)\)", page.locator("#fill-status").inner_text())
    assert got and abs(int(got[1]) - point[0]) <= 2 and abs(int(got[2]) - point[1]) <= 2, got
    return int(got[1]), int(got[2])


def _fill_point(photo: np.ndarray, ids: np.ndarray, class_id: int, low: float, high: float,
                tolerance: int) -> tuple[int, int]:
    """A pixel whose flood region would change between `low` and `high` of the image."""
    from app.fill_tools import flood_fill

    rng = np.random.default_rng(0)
    for _ in range(400):
        point = (int(rng.integers(10, photo.shape[1] - 10)), int(rng.integers(10, photo.shape[0] - 10)))
        if low < (flood_fill(ids, photo, point, class_id, tolerance) != ids).mean() < high:
            return point
    raise AssertionError(f"no fill changing {low:.0%}-{high:.0%} of the photo")


def _press(page, key: str) -> None:
    page.get_by_role("heading", name="Correct the mask").click()  # focus on the page, not a text field
    page.keyboard.press(key)
    page.wait_for_timeout(800)


def test_fills_are_steps_of_the_editors_undo_history_and_large_ones_ask_first(server, tmp_path):
    from playwright.sync_api import sync_playwright

    from app.fill_tools import DEFAULT_TOLERANCE, MAX_FILL_SHARE, flood_fill

    _, street, _ = _photos(tmp_path)
    photo = np.asarray(PIL.Image.open(street).convert("RGB"))
    pavement, car = CAMVID.class_names.index("Pavement"), CAMVID.class_names.index("Car")
    with sync_playwright() as playwright:
        browser, page = open_app(playwright, server.url)
        segment_photo(page, street, (480, 360))
        segmented = editor_layer(page)
        box = canvas_box(page)
        pick_class(page, CLASS_KEYS[car], CAMVID.colors[car])
        paint_stroke(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(500)
        stroked = editor_layer(page)
        assert not np.array_equal(stroked, segmented)

        page.get_by_label("flood fill (similar colour)").check()
        page.get_by_label("Fill with class").first.click()
        page.get_by_role("option", name="Pavement", exact=True).click()
        before = layer_to_ids(stroked, CAMVID)
        small = _fill_point(photo, before, pavement, 0.003, MAX_FILL_SHARE / 2, DEFAULT_TOLERANCE)
        small = _click_on_view(page, small, (480, 360), "Flood-filled the region at")
        page.wait_for_timeout(1000)
        filled = editor_layer(page)
        expected = flood_fill(before, photo, small, pavement)
        assert np.array_equal(layer_to_ids(filled, CAMVID), expected), "the fill in the editor is not the fill"
        page.locator(".semflow-legend-note", has_text="Corrected by hand").wait_for(timeout=30_000)

        _press(page, "z")  # undo the fill, then the stroke; redo both
        assert np.array_equal(editor_layer(page), stroked), "undo did not restore the mask before the fill"
        _press(page, "z")
        assert np.array_equal(editor_layer(page), segmented), "the stroke is not a step of the same history"
        _press(page, "y")
        _press(page, "y")
        assert np.array_equal(editor_layer(page), filled), "redo did not bring the stroke and the fill back"

        page.locator("#tolerance input[type=number]").fill("24")  # the old default: one click took half the frame
        page.locator("#tolerance input[type=number]").press("Enter")
        large = _fill_point(photo, expected, pavement, 2 * MAX_FILL_SHARE, 0.9, 24)
        large = _click_on_view(page, large, (480, 360), "This fill at")
        page.wait_for_timeout(800)
        assert np.array_equal(editor_layer(page), filled), "a large fill was made without asking"
        pick_class(page, CLASS_KEYS[car], CAMVID.colors[car])  # a stroke while the preview waits: the fill goes on it
        paint_stroke(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 3)
        page.wait_for_timeout(500)
        restroked = editor_layer(page)
        page.get_by_role("button", name="Apply the fill").click()
        page.get_by_text("Flood-filled the region at").wait_for(timeout=60_000)
        page.wait_for_timeout(1000)
        assert f"at ({large[0]}, {large[1]}) with Pavement" in page.locator("#fill-status").inner_text()
        before_large = layer_to_ids(restroked, CAMVID)
        assert np.array_equal(layer_to_ids(editor_layer(page), CAMVID),
                              flood_fill(before_large, photo, large, pavement, 24)), "the large fill is not the fill"
        _press(page, "z")
        assert np.array_equal(editor_layer(page), restroked), "undo did not take back the large fill"

        count = len(_rows(server))
        page.get_by_role("button", name="Save image + corrected mask").click()
        page.wait_for_function(f"() => document.body.innerText.includes('{count + 1} annotations in the folder')",
                               timeout=60_000)
        browser.close()
    saved = np.asarray(PIL.Image.open(server.root / "annotations" / _rows(server)[-1]["mask_file_name"]))
    assert np.array_equal(saved, before_large), "the saved mask is not the mask after the undone large fill"
