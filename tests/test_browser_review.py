"""A team on one queue in real browsers (Debian's Chromium, headless; own server): two annotators and a reviewer, each
in a browser of their own. Open, pre-annotate, worst first, save, submit; the reviewer walks the submitted items,
rejects one with a comment and accepts the other; the annotator sees the comment, fixes and resubmits; the reviewer
reads the history, shows and restores an earlier version, accepts, exports the accepted items as a dataset and pushes
them to a local Hub, from which `datasets` loads them; the annotators' table names both annotators."""

import json

import numpy as np
import PIL.Image
import pytest
from app_server import ROOT, AppServer
from browser_helpers import canvas_box, launch, open_app, paint_stroke, pick_class, require_chromium

from app.shortcuts import CLASS_KEYS
from app.work_queue import ACCEPTED, open_queue
from semflow.labels import CAMVID

pytestmark = pytest.mark.slow

REPO = "acme/streets-accepted"


@pytest.fixture
def frames(tmp_path):
    """Four 480x360 frames: the CamVid validation frames shipped as the app's examples (see their NOTICE)."""
    from app.examples import PHOTOS

    require_chromium()
    folder = tmp_path / "frames"
    folder.mkdir()
    for k, photo in enumerate(sorted(PHOTOS.glob("*.png"))):
        PIL.Image.open(photo).convert("RGB").save(folder / f"street{k}.png")
    return folder


def status(page) -> str:
    return page.locator("#queue-status").inner_text()


def wait_status(page, text: str, timeout: float = 60_000) -> str:
    page.wait_for_function("(text) => document.querySelector('#queue-status').innerText.includes(text)", arg=text,
                           timeout=timeout)
    return status(page)


def item(page) -> str:
    import re

    found = re.search(r"Item \d+ of \d+: (\S+) \(", status(page))
    assert found, status(page)
    return found[1]


def join(playwright, browser, url: str, name: str):
    """One person's browser (its own storage, so its own annotator id) on the page, the queue panel open, named."""
    _, page = open_app(playwright, url, context=browser.new_context(viewport={"width": 1400, "height": 2600}))
    page.locator("#annotator textarea, #annotator input").first.fill(name)
    page.get_by_text("Work queue: annotate a whole folder or dataset").click()
    return page


def open_queue_as(page, folder, show: str | None = None, order: str | None = None) -> str:
    page.get_by_label("Folder of images, imagefolder, or Hub dataset id").fill(str(folder))
    for label, choice in (("Show", show), ("Order", order)):
        if choice is not None:
            page.get_by_role("combobox", name=label).click()
            page.get_by_role("option", name=choice, exact=True).click()
            page.wait_for_timeout(800)
    page.get_by_role("button", name="Open queue").click()
    return wait_status(page, "Opened the queue")


def click_and_wait(page, button: str, text: str, timeout: float = 60_000) -> str:
    page.get_by_role("button", name=button, exact=True).click()
    return wait_status(page, text, timeout)


def test_two_annotators_and_a_reviewer_walk_a_queue_to_a_pushed_dataset(tmp_path, frames, example_cache):
    from playwright.sync_api import sync_playwright

    hub = tmp_path / "hub"
    env = {"SEMFLOW_CACHE": str(example_cache), "SEMFLOW_ANNOTATIONS_DIR": str(tmp_path / "annotations"),
           "SEMFLOW_QUEUE_ROOT": str(tmp_path), "SEMFLOW_REVIEWERS": "rita", "SEMFLOW_DATASET_REPO": REPO,
           "SEMFLOW_PUSH_WITH_SERVER_TOKEN": "1", "HF_TOKEN": "hf_local_test_token",
           "SEMFLOW_TEST_LOCAL_HUB": str(hub), "PYTHONPATH": str(ROOT / "tests" / "local_hub")}
    server = AppServer(env, log=tmp_path / "app.log")
    try:
        with sync_playwright() as playwright:
            browser = launch(playwright)
            ana = join(playwright, browser, server.url, "ana")
            open_queue_as(ana, frames)
            click_and_wait(ana, "Pre-annotate all", "Pre-annotated 4 item(s)", timeout=300_000)
            ana.get_by_role("combobox", name="Order").click()
            ana.get_by_role("option", name="worst first", exact=True).click()
            wait_status(ana, "Order: worst first")
            first = item(ana)
            text = click_and_wait(ana, "Submit for review", "has no saved mask to submit")
            assert text.startswith(f"⚠️ The item {first} has no saved mask to submit: save it first.")
            ana.wait_for_timeout(1000)
            assert ana.get_by_text("Error", exact=True).count() == 0, "a refusal leaves no error badge on the page"
            ana.get_by_role("heading", name="Correct the mask").click()
            ana.keyboard.press("s")
            text = wait_status(ana, f"Saved the mask of {first} as version 1")
            assert "1 / 4 corrected" in text
            click_and_wait(ana, "Submit for review", f"Submitted {first} for review")

            ben = join(playwright, browser, server.url, "ben")
            open_queue_as(ben, frames, order="worst first")
            second = item(ben)
            assert second != first, "the two annotators never get the same item"
            click_and_wait(ben, "Save mask to queue (s)", f"Saved the mask of {second} as version 1")
            click_and_wait(ben, "Submit for review", f"Submitted {second} for review")

            rita = join(playwright, browser, server.url, "rita")
            open_queue_as(rita, frames, show="submitted")
            rejected = item(rita)
            other = second if rejected == first else first
            rita.get_by_text("Review", exact=True).click()
            rita.get_by_label("Comment for the annotator (needed to reject)").fill("The road is sidewalk here.")
            click_and_wait(rita, "Reject with comment", f"Rejected {rejected}")
            click_and_wait(rita, "Next ▶ (n)", "Item ")
            assert item(rita) == other, "Next walks the submitted items"
            click_and_wait(rita, "Accept", f"Accepted {other}")

            annotator = ana if rejected == first else ben
            open_queue_as(annotator, frames)
            text = wait_status(annotator, "Rejected: The road is sidewalk here.")
            assert item(annotator) == rejected, "the rejected item goes back to its annotator, comment shown"
            box = canvas_box(annotator)
            car = CAMVID.class_names.index("Car")
            pick_class(annotator, CLASS_KEYS[car], CAMVID.colors[car])
            paint_stroke(annotator, box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            annotator.wait_for_timeout(800)
            click_and_wait(annotator, "Save mask to queue (s)", f"Saved the mask of {rejected} as version 2")
            click_and_wait(annotator, "Submit for review", f"Submitted {rejected} for review")

            open_queue_as(rita, frames, show="submitted")
            assert item(rita) == rejected
            rita.get_by_text("History of this item").click()
            history = rita.locator("#item-history")
            history.get_by_text("The road is sidewalk here.").wait_for(timeout=30_000)
            assert "| 2 |" not in history.inner_text() and len(history.locator("tr").all()) >= 4
            rita.get_by_role("combobox", name="Version").click()
            rita.get_by_role("option", name="version 1", exact=True).click()
            rita.get_by_role("button", name="Show it in the segmentation view").click()
            rita.wait_for_timeout(1500)
            click_and_wait(rita, "Restore it (as a new version)", "Restored version 1 as version 3")
            click_and_wait(rita, "Accept", f"Accepted {rejected}")

            rita.get_by_text("Export, push, annotators").click()
            rita.get_by_label("Hugging Face dataset zip").check()
            click_and_wait(rita, "Export the queue", "Exported the accepted items")
            download = rita.locator('td.filename[aria-label="frames_dataset.zip"]')
            download.wait_for(timeout=60_000)
            click_and_wait(rita, "Push the accepted items to the Hub as a dataset",
                           f"Pushed 2 accepted item(s) of this queue to {REPO}", timeout=120_000)
            rita.get_by_role("button", name="Show the annotators' table").click()
            table = rita.locator("#annotators-table")
            table.get_by_text("ana", exact=True).wait_for(timeout=30_000)
            assert table.get_by_text("ben", exact=True).count() == 1
            browser.close()
    finally:
        server.stop()

    queue = open_queue(frames, root=tmp_path / "annotations")
    first, second, rejected = (f"{name}.png" for name in (first, second, rejected))  # items by id, not name
    assert queue.status(first) == ACCEPTED and queue.status(second) == ACCEPTED
    assert [v.number for v in queue.history(rejected)] == [1, 2, 3], "every save a version, nothing overwritten"
    assert np.array_equal(queue.version_mask(rejected, 3), queue.version_mask(rejected, 1))
    assert not np.array_equal(queue.version_mask(rejected, 2), queue.version_mask(rejected, 1)), "the fix"
    assert [r.decision for r in queue.reviews(rejected)] == ["reject", "accept"]
    pushed = hub / "datasets" / REPO
    commits = [json.loads(line) for line in (pushed / ".commits.log").read_text().splitlines()]
    assert len(commits) == 1 and "data/frames/metadata.jsonl" in commits[0]["files"]
    import datasets

    loaded = datasets.load_dataset(str(pushed), split="train", cache_dir=str(tmp_path / "hf"))
    assert sorted(loaded["item"]) == sorted([first, second]) and set(loaded.column_names) >= {"image", "mask"}
    assert np.asarray(loaded[0]["mask"]).shape == (360, 480)
    assert json.loads((pushed / "id2label.json").read_text())["id2label"]["8"] == "Car"
