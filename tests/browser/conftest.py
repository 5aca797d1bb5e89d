"""The browser, its signed-in users and screenshots, for every browser test module."""

from tests.browser.test_dashboard import browser, users  # noqa: F401  (fixtures)
