from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from indicators.models import Indicator, ScoringRun
from indicators.roles import Role, user_roles

pytestmark = pytest.mark.django_db


def test_setup_demo_loads_data_scores_and_prints_one_account_per_role(settings, tmp_path):
    settings.PUBLIC_DATA_DIR = tmp_path / "no-data-here"  # the import is tested on its own
    out = StringIO()
    call_command("setup_demo", stdout=out)
    text = out.getvalue()
    assert f"No public data folder at {tmp_path / 'no-data-here'}" in text
    assert Indicator.objects.count() == 113
    assert ScoringRun.objects.filter(status="succeeded").exists()  # an empty run, nothing to score
    accounts = dict(re.findall(r"username: (\w+)\s+password: (\S+)", text))
    assert set(accounts) == {"admin", "analyst", "focal"}
    roles = {
        name: user_roles(authenticate(username=name, password=pw)) for name, pw in accounts.items()
    }
    assert roles["analyst"] == {Role.ANALYST}
    assert roles["focal"] == {Role.FOCAL_POINT}
    assert roles["admin"] == set(Role)
    # Running it again resets the passwords rather than failing.
    call_command("setup_demo", stdout=StringIO())
    assert authenticate(username="analyst", password=accounts["analyst"]) is None
