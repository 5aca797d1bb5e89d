"""E-mail links start with SITE_URL; a deployment that forgets it hears so at start-up."""

from __future__ import annotations

import logging

import pytest

from alerts import checks
from alerts.transports import DEMO_SITE_URL, absolute_url


def ids(settings_debug: bool, url: str, settings) -> list[str]:
    settings.DEBUG, settings.SITE_URL = settings_debug, url
    return [problem.id for problem in checks.check_site_url(None)]


def test_an_unset_site_url_is_a_warning_outside_debug_only(settings):
    assert ids(False, "", settings) == ["alerts.W001"]
    assert ids(True, "", settings) == []


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost", "http://[::1]/"])
def test_a_loopback_site_url_is_a_warning_outside_debug(settings, url):
    assert ids(False, url, settings) == ["alerts.W002"]
    assert ids(True, url, settings) == []


@pytest.mark.parametrize("url", ["early-warning.example.org", "ftp://x.org", "https://x.org/?a=1"])
def test_a_site_url_that_is_not_an_http_address_is_an_error(settings, url):
    assert ids(True, url, settings) == ["alerts.E001"]


@pytest.mark.parametrize("url", ["https://early-warning.example.org", "https://x.org/ew/"])
def test_a_public_site_url_passes(settings, url):
    assert ids(False, url, settings) == []


def test_processes_without_system_checks_log_the_warning(settings, caplog):
    settings.DEBUG, settings.SITE_URL = False, ""
    with caplog.at_level(logging.WARNING, logger="alerts.checks"):
        checks.warn_at_start_up()
    assert "SITE_URL is not set" in caplog.text


def test_links_start_with_site_url_or_the_demo_address(settings):
    settings.SITE_URL = "https://ew.example.org/"
    assert absolute_url("/alerts/") == "https://ew.example.org/alerts/"
    settings.SITE_URL = ""
    assert absolute_url("/alerts/") == DEMO_SITE_URL + "/alerts/"
