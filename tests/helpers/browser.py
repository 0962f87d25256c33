"""Headless Chromium for the browser tests: one way to start it, skipped where it is missing."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.helpers import web


def chromium(tmp_path_factory, *extra_args: str) -> Iterator:
    """For a fixture: a driver (quit afterwards); skipped without Debian's chromium and
    chromium-driver, failed under CI, whose .ci/run installs them."""
    if not web.chromium_available():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and chromium-driver (see .ci/run)")
        pytest.skip("needs Debian's chromium and chromium-driver")
    drv = web.start_chromium(tmp_path_factory.mktemp("chromium"), extra_args=extra_args)
    try:
        yield drv
    finally:
        drv.quit()
