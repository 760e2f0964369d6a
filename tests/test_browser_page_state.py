"""What the page keeps and shows between actions, in a real browser (Debian's Chromium, headless), on the shared
server: class keys still pick brushes after a checkbox is ticked; segmenting again takes the previous edit's images and
round trip off the page; a result switched away from mid-synthesis still names the model that made it; typed steps and
seeds out of range get the pipeline's sentence; an upload that cannot be opened leaves no broken image behind."""

import shutil

import browser_helpers as helpers
import numpy as np
import pytest

from app.editor import layer_to_ids
from app.shortcuts import CLASS_KEYS
from semflow.labels import CAMVID
from semflow.limits import MAX_STEPS

pytestmark = pytest.mark.slow

SYMMETRIC, PAPER = "symmetric-camvid (embedded)", "semflow-camvid (embedded)"
NO_BROKEN_IMAGE = ("() => [...document.querySelectorAll('#image-input img')]"
                   ".every(image => image.complete && image.naturalWidth > 0)")


@pytest.fixture
def photo(tmp_path):
    from app.examples import PHOTOS

    path = tmp_path / "camvid_0016E5_08079.png"
    shutil.copyfile(PHOTOS / path.name, path)
    return path


def _error(page, text: str) -> None:
    """Wait for an error (Gradio's toast) that says `text`, then close it."""
    toast = page.locator(".toast-body", has_text=text).first
    toast.wait_for(timeout=60_000)
    toast.locator("button").first.click()
    toast.wait_for(state="detached", timeout=10_000)


def _brush_colour(page) -> str:
    return page.evaluate("() => window.editor.tools.get('brush').state.color")


def _hex(colour) -> str:
    return "#" + "".join(f"{channel:02x}" for channel in colour)


def test_class_keys_work_after_a_checkbox_is_ticked(browser_server, photo):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = helpers.open_app(playwright, browser_server.url)
        helpers.segment_photo(page, photo, (480, 360))
        for label, key in (("Show the trajectory as an animation", CLASS_KEYS[8]),
                           ("Show where the model is unsure (red: low confidence)", CLASS_KEYS[10])):
            checkbox = page.get_by_label(label)
            for _ in range(2):  # ticked, then unticked: each time the focus stays on the checkbox
                checkbox.click()
                assert page.evaluate("() => document.activeElement.type") == "checkbox"
                page.keyboard.press(key)
                colour = CAMVID.colors[CLASS_KEYS.index(key)]
                page.wait_for_function("(hex) => window.editor.tools.get('brush').state.color === hex",
                                       arg=_hex(colour), timeout=10_000)
                helpers.pick_class(page, CLASS_KEYS[0], CAMVID.colors[0])  # back to the first class for the next try
        box = helpers.canvas_box(page)
        page.get_by_label("Show the trajectory as an animation").click()
        page.keyboard.press(CLASS_KEYS[8])
        page.wait_for_function("(hex) => window.editor.tools.get('brush').state.color === hex",
                               arg=_hex(CAMVID.colors[8]), timeout=10_000)
        helpers.paint_stroke(page, box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2)
        assert helpers.stroke_share(page, box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.2,
                                    CAMVID.colors[8]) > 0.5, "the stroke is not in the class of the key pressed"
        name_field = page.locator("#annotator textarea, #annotator input").first
        name_field.fill("")  # in a text field a class key is typed, not picked
        name_field.type(CLASS_KEYS[3])
        assert _brush_colour(page) == _hex(CAMVID.colors[8]), "a key typed into a text field picked a brush"
        browser.close()


def test_segmenting_again_takes_the_previous_edit_off_the_page(browser_server, photo):
    from playwright.sync_api import sync_playwright

    bicyclist = CAMVID.class_names.index("Bicyclist")
    with sync_playwright() as playwright:
        browser, page = helpers.open_app(playwright, browser_server.url)
        helpers.segment_photo(page, photo, (480, 360))
        box = helpers.canvas_box(page)
        helpers.pick_class(page, CLASS_KEYS[bicyclist], CAMVID.colors[bicyclist])
        helpers.paint_stroke(page, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.locator("#edit-photo").wait_for(state="visible", timeout=60_000)
        page.locator("#edit-photo").click()
        page.get_by_text("Round trip on the", exact=False).wait_for(timeout=180_000)
        assert page.locator("#synthesized img").count() >= 1
        page.get_by_role("button", name="Segment", exact=True).click()
        page.wait_for_function("() => document.querySelectorAll('#synthesized img').length === 0", timeout=60_000)
        page.get_by_text("Round trip on the", exact=False).wait_for(state="detached", timeout=30_000)
        assert not page.locator("#edit-photo").is_visible(), "the new mask is the model's: nothing to edit yet"
        predicted = layer_to_ids(helpers.editor_layer(page), CAMVID)
        assert (predicted == bicyclist).mean() < 0.05, "the editor holds the new segmentation, not the stroke"
        browser.close()


def test_a_result_names_the_model_that_made_it(browser_server, photo):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = helpers.open_app(playwright, browser_server.url)
        helpers.segment_photo(page, photo, (480, 360))
        page.get_by_label("Show the trajectory as an animation").check()
        page.get_by_role("button", name="Synthesize", exact=True).click()
        page.get_by_role("combobox", name="Model").click()  # switched while the synthesis runs
        page.get_by_role("option", name="semflow", exact=True).click()
        page.wait_for_function("() => document.querySelector('#beta input[type=number]')?.checkVisibility()",
                               timeout=120_000)  # the paper's model is the tab's now
        page.get_by_text("Round trip (segment each synthesized image", exact=False).wait_for(timeout=300_000)
        page.locator("#trajectory-caption", has_text=f"made by {SYMMETRIC}").wait_for(timeout=60_000)
        caption = page.locator("#trajectory-caption").inner_text()
        assert "from Gaussian noise to the image" in caption, "the symmetric model's trajectory, said to be so"
        assert f"images made by {SYMMETRIC}" in page.locator("body").inner_text()
        assert SYMMETRIC in page.locator("#synthesized").inner_text() and PAPER not in page.locator(
            "#synthesized").inner_text()
        assert page.get_by_role("combobox", name="Model").input_value() == "semflow"

        page.get_by_label("Show the trajectory as an animation").uncheck()
        page.get_by_role("button", name="Synthesize", exact=True).click()
        page.get_by_text(f"images made by {PAPER}", exact=False).wait_for(timeout=300_000)
        page.locator("#synthesized", has_text=PAPER).wait_for(timeout=60_000)
        caption = page.locator("#trajectory-caption").inner_text()
        assert "made by" not in caption and "anchor colours" in caption, \
            "without a trajectory, the caption says what the tab's model would show"
        browser.close()


def test_typed_settings_out_of_range_get_the_pipelines_sentence(browser_server, photo):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = helpers.open_app(playwright, browser_server.url)
        helpers.segment_photo(page, photo, (480, 360))
        steps = page.locator("#segmentation-steps input")
        for typed in ("0", str(MAX_STEPS + 1)):
            steps.fill(typed)
            page.get_by_role("button", name="Segment", exact=True).click()
            _error(page, f"Steps must be between 1 and {MAX_STEPS}, got {typed}.")
            assert steps.input_value() == typed, "the field keeps what was typed"
        steps.fill("1")
        seed = page.locator("#seed input")
        seed.click()
        seed.fill("")
        page.keyboard.type("abc")  # a number field takes no letters: it is left empty
        page.get_by_role("button", name="Synthesize", exact=True).click()
        _error(page, "Seed is empty or not a number: type a whole number.")
        seed.fill("-1")
        page.get_by_role("button", name="Synthesize", exact=True).click()
        _error(page, "Seed must be between 0 and")
        assert page.locator("#synthesized img").count() == 0, "nothing ran on a bad setting"
        browser.close()


def test_an_upload_that_cannot_be_opened_leaves_no_broken_image(browser_server, photo, tmp_path):
    from playwright.sync_api import sync_playwright

    (tmp_path / "notes.png").write_text("this is not an image")
    with sync_playwright() as playwright:
        browser, page = helpers.open_app(playwright, browser_server.url)
        page.set_input_files("input[type=file] >> nth=0", str(tmp_path / "notes.png"))
        _error(page, "not a readable image")
        page.wait_for_function(NO_BROKEN_IMAGE, timeout=30_000)
        assert page.locator("#image-input img").count() == 0, "no photo was open: the Image box is empty again"

        helpers.segment_photo(page, photo, (480, 360))
        page.set_input_files("input[type=file] >> nth=0", str(tmp_path / "notes.png"))
        _error(page, "not a readable image")
        page.wait_for_function("() => document.querySelectorAll('#image-input img').length === 1", timeout=30_000)
        page.wait_for_function(NO_BROKEN_IMAGE, timeout=30_000)
        shown = np.asarray(helpers.editor_layer(page))
        assert shown.shape[:2] == (360, 480), "the photo being worked on stays, in the editor and the Image box"
        browser.close()
