"""The work queue in a real browser (Debian's Chromium, headless), several items in one tab: a smaller item after a
larger one saves its mask in place; worst first opens the least confident unfinished item and Next reaches every
unfinished one, with each item's confidence shown; the split field only for what takes a split, the CVAT box only with
an export, named after its queue; the Image box shows the queue item; a reload, another tab of the
same browser and a restart of the app keep one's claims, which another browser still respects (own servers)."""

import io
import re

import numpy as np
import PIL.Image
import pytest
from app_server import AppServer
from browser_helpers import (
    canvas_box,
    editor_layer,
    launch,
    open_app,
    paint_stroke,
    pick_class,
    require_chromium,
    wait_until_canvas_settles,
)

from app.editor import layer_to_labels, mark_agreement
from app.queue_words import SORT_NAMES
from app.shortcuts import CLASS_KEYS
from app.work_queue import WORST_FIRST
from semflow.labels import CAMVID

pytestmark = pytest.mark.slow


@pytest.fixture
def frames(tmp_path):
    """Six frames: a 512x512 one first, then five 480x360 ones (the CamVid validation frames shipped as the app's
    examples, see their NOTICE, and one of them mirrored)."""
    from app.examples import PHOTOS

    require_chromium()

    folder = tmp_path / "frames"
    folder.mkdir()
    photos = sorted(PHOTOS.glob("*.png"))
    PIL.Image.open(photos[0]).convert("RGB").resize((512, 512)).save(folder / "a_big.png")
    for k, photo in enumerate(photos):
        PIL.Image.open(photo).convert("RGB").save(folder / f"b{k}.png")
    PIL.Image.open(photos[1]).convert("RGB").transpose(PIL.Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "c.png")
    return folder


def _env(tmp_path, example_cache) -> dict[str, str]:
    return {"SEMFLOW_CACHE": str(example_cache), "SEMFLOW_ANNOTATIONS_DIR": str(tmp_path / "annotations"),
            "SEMFLOW_QUEUE_ROOT": str(tmp_path)}


def _open_queue(page, folder, sort: str | None = None) -> None:
    if not page.get_by_label("Folder of images, imagefolder, or Hub dataset id").is_visible():
        page.get_by_text("Work queue: annotate a whole folder or dataset").click()
    page.get_by_label("Folder of images, imagefolder, or Hub dataset id").fill(str(folder))
    page.get_by_role("button", name="Open queue").click()
    page.get_by_text("Opened the queue").wait_for(timeout=60_000)


def _item(page) -> str:
    """The name of the item the queue status says is open."""
    text = page.locator("#queue-status").inner_text()
    found = re.search(r"Item \d+ of \d+: (\S+) \(", text)
    assert found, text
    return found[1]


def _confidences(tmp_path, frames) -> dict[str, float]:
    """Each item's mean confidence, by name, as the app stored it."""
    from app.work_queue import open_queue

    queue = open_queue(frames, root=tmp_path / "annotations")
    return {item.name: queue.confidence(item.id) for item in queue.items}


def _move(page, button: str) -> str:
    before = page.locator("#queue-status").inner_text()
    page.get_by_role("button", name=button).click()
    page.wait_for_function("""(before) => {
        const text = document.querySelector('#queue-status').innerText;
        const busy = /processing|queue:|\\d\\.\\ds/.test(text);  // Gradio's progress over the status line
        return text !== before && /Item \\d+ of \\d+: /.test(text) && !busy;
    }""", arg=before, timeout=60_000)
    return _item(page)


def _shown_photo(page) -> np.ndarray:
    """The picture in the Image box."""
    src = page.locator("#image-input img").first.get_attribute("src")
    return np.asarray(PIL.Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB")).astype(int)


def test_a_queue_walked_worst_first_saves_in_place_and_reaches_every_unfinished_item(tmp_path, frames,
                                                                                       example_cache):
    from playwright.sync_api import sync_playwright

    server = AppServer(_env(tmp_path, example_cache), log=tmp_path / "app.log")
    try:
        with sync_playwright() as playwright:
            browser, page = open_app(playwright, server.url)
            page.get_by_text("Work queue: annotate a whole folder or dataset").click()
            location = page.get_by_label("Folder of images, imagefolder, or Hub dataset id")
            split = page.get_by_label("Split (datasets)")
            for typed, shown in (("org/street-frames", True), (str(frames), False)):
                location.fill(typed)
                location.blur()
                page.wait_for_timeout(1500)
                assert split.is_visible() == shown, f"the split field for {typed}"
            assert not page.locator(".block", has_text="CVAT export").first.is_visible(), "an empty export box shows"
            _open_queue(page, frames)
            assert _item(page) == "a_big"
            page.get_by_role("button", name="Pre-annotate all").click()
            page.get_by_text("Pre-annotated 6 item(s)").wait_for(timeout=300_000)
            assert _move(page, "Next ▶ (n)") == "b0"  # the 512x512 item, then a 480x360 one, in one tab
            wait_until_canvas_settles(page, canvas_box(page))
            photo = PIL.Image.open(frames / "b0.png")
            before = editor_layer(page)
            assert before.shape[:2] == (360, 480) and mark_agreement(before, photo)[0] == 1.0
            box = canvas_box(page)
            car = CAMVID.class_names.index("Car")
            pick_class(page, CLASS_KEYS[car], CAMVID.colors[car])
            paint_stroke(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(500)
            after = editor_layer(page)
            page.get_by_role("heading", name="Correct the mask").click()
            page.keyboard.press("s")
            page.get_by_text("Saved the mask of b0").wait_for(timeout=60_000)
            from app.work_queue import open_queue

            saved = open_queue(frames, root=tmp_path / "annotations").open("b0.png").corrected
            assert np.array_equal(saved, layer_to_labels(after, CAMVID)), "the saved mask is not the editor's"
            touched = (after != before).any(-1)
            assert touched.any() and np.array_equal(saved[~touched], layer_to_labels(before, CAMVID)[~touched])
            page.get_by_text("Export, push, annotators").click()
            page.get_by_label("accepted items only").uncheck()  # nothing is accepted yet: every corrected item
            page.get_by_role("button", name="Export the queue").click()
            page.locator('td.filename[aria-label="frames_cvat.zip"]').wait_for(timeout=60_000)

            confidence = _confidences(tmp_path, frames)
            unfinished = sorted((c, name) for name, c in confidence.items() if name != "b0")
            page.get_by_role("combobox", name="Order").click()
            page.get_by_role("option", name=SORT_NAMES[WORST_FIRST], exact=True).click()
            page.get_by_text(f"Order: {SORT_NAMES[WORST_FIRST]}").wait_for(timeout=60_000)
            assert _item(page) == unfinished[0][1], "worst first must open the least confident unfinished item"
            assert f"mean confidence {unfinished[0][0]:.2f}" in page.locator("#queue-status").inner_text()
            seen = [_item(page)]
            for _ in range(len(unfinished) - 1):
                seen.append(_move(page, "Next unfinished"))
            assert seen == [name for _, name in unfinished], "Next unfinished must go through them, least sure first"
            nexts = [_move(page, "Next ▶ (n)") for _ in range(len(confidence))]
            assert set(nexts) == set(confidence), "Next must reach every item, going round"
            browser.close()
    finally:
        server.stop()


def test_a_reload_or_restart_keeps_ones_claims_and_the_image_box_shows_the_queue_item(tmp_path, frames,
                                                                                       example_cache):
    from playwright.sync_api import sync_playwright

    from app.examples import PHOTOS

    with sync_playwright() as playwright:
        browser = launch(playwright)
        mine = browser.new_context(viewport={"width": 1400, "height": 2400})  # one person's browser: its storage
        server = AppServer(_env(tmp_path, example_cache), log=tmp_path / "app1.log")
        try:
            _, page = open_app(playwright, server.url, context=mine)
            page.set_input_files("input[type=file] >> nth=0", str(sorted(PHOTOS.glob("*.png"))[3]))
            page.get_by_text("Loaded a 480x360 image").wait_for(timeout=60_000)
            _open_queue(page, frames)
            assert _item(page) == "a_big"
            page.wait_for_timeout(1000)
            shown = _shown_photo(page)
            assert shown.shape == (512, 512, 3), "the Image box still shows the earlier upload"
            assert np.abs(shown - np.asarray(PIL.Image.open(frames / "a_big.png")).astype(int)).mean() < 2
            page.reload()
            page.wait_for_function("() => window.semflowEditorReady === true", timeout=60_000)
            _open_queue(page, frames)
            assert _item(page) == "a_big", "after a reload one's own item must not be held by another annotator"
            _, second_tab = open_app(playwright, server.url, context=mine)
            _open_queue(second_tab, frames)
            assert _item(second_tab) == "a_big", "another tab of the same browser is the same annotator"
            second_tab.close()
            _, stranger = open_app(playwright, server.url, context=browser.new_context())
            _open_queue(stranger, frames)
            assert _item(stranger) == "b0", "another browser must skip the item this one holds"
        finally:
            server.stop()

        server = AppServer(_env(tmp_path, example_cache), log=tmp_path / "app2.log", port=server.port)
        try:  # a restart on the same address: the browser keeps its storage, the queue its claims
            page.reload()
            page.wait_for_function("() => window.semflowEditorReady === true", timeout=60_000)
            _open_queue(page, frames)
            assert _item(page) == "a_big", "after a restart one's own item must not be held by another annotator"
        finally:
            server.stop()
        browser.close()
