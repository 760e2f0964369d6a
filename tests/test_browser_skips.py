"""Without Chromium the browser tests skip with a sentence saying how to install it, except under `CI=true` (as
`.ci/run` runs them), where a missing Chromium fails them."""

import browser_helpers
import pytest


def test_a_missing_chromium_skips_with_the_install_command_and_fails_under_ci(monkeypatch, tmp_path):
    monkeypatch.setattr(browser_helpers, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"install it with `apt-get install chromium`"):
        browser_helpers.require_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"install it with `apt-get install chromium`"):
        browser_helpers.require_chromium()
    (tmp_path / "no-chromium").touch()
    browser_helpers.require_chromium()  # there: nothing to say
