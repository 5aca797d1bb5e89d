"""Past mass-killing episodes: recorded by administrators, listed on the country page."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from countries.models import Country, MassKillingEpisode

pytestmark = pytest.mark.usefixtures("countries", "framework")


def record(iso3: str, start: int, end: int | None, **fields: str) -> MassKillingEpisode:
    return MassKillingEpisode.objects.create(
        country=Country.objects.get(iso3=iso3),
        start_year=start,
        end_year=end,
        description=fields.pop("description", "Test episode description"),
        source=fields.pop("source", "Test source"),
        **fields,
    )


def test_an_episode_cannot_end_before_it_starts():
    with pytest.raises(IntegrityError), transaction.atomic():
        record("SDN", 2005, 2003)
    record("SDN", 2003, 2003)  # one calendar year is fine
    assert record("SDN", 2023, None).ongoing


def test_the_country_page_lists_episodes_newest_first_with_ongoing_marked(client, analyst):
    record("SDN", 1983, 2005, perpetrator="Test perpetrator A", source_url="https://example.org/a")
    record("SDN", 2023, None, perpetrator="Test perpetrator B", note="Test note")
    record("NOR", 1990, 1991, description="Another country's episode")
    client.force_login(analyst)
    response = client.get(reverse("country", args=["SDN"]))
    episodes = response.context["episodes"]
    assert [(e.start_year, e.end_year) for e in episodes] == [(2023, None), (1983, 2005)]
    content = response.content.decode()
    assert "ongoing" in content
    assert "Test perpetrator B" in content
    assert 'href="https://example.org/a"' in content
    assert "Another country" not in content
    assert "No episodes recorded" not in content
    # Analysts read episodes; only administrators are offered the admin form.
    assert "Record an episode" not in content


def test_without_episodes_the_page_says_none_are_recorded_not_that_none_happened(client, analyst):
    client.force_login(analyst)
    content = client.get(reverse("country", args=["SDN"])).content.decode()
    assert "No episodes recorded in this installation" in content
    assert "does not mean that none happened" in content


def test_the_episodes_csv_has_one_row_per_episode_with_its_source(client, focal_point):
    record("SDN", 2023, None, source="=HYPERLINK(1)")
    client.force_login(focal_point)
    response = client.get(reverse("country-episodes-csv", args=["SDN"]))
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:3] == ["country", "start_year", "end_year"]
    assert rows[1][:3] == ["SDN", "2023", ""]
    assert rows[1][5] == "'=HYPERLINK(1)"  # a spreadsheet must not run it


def test_an_administrator_records_an_episode_in_the_admin(client, administrator):
    client.force_login(administrator)
    sudan = Country.objects.get(iso3="SDN")
    response = client.post(
        reverse("admin:countries_masskillingepisode_add"),
        {
            "country": sudan.pk,
            "start_year": "2023",
            "end_year": "",
            "perpetrator": "",
            "description": "Test description",
            "source": "Test source",
            "source_url": "",
            "note": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    episode = MassKillingEpisode.objects.get()
    assert episode.recorded_by == administrator
    assert episode.ongoing
    page = client.get(reverse("country", args=["SDN"])).content.decode()
    assert "Record an episode" in page


def test_analysts_cannot_edit_episodes_in_the_admin(client, analyst):
    analyst.is_staff = True  # even with admin access, the role grants no episode permission
    analyst.save()
    client.force_login(analyst)
    response = client.get(reverse("admin:countries_masskillingepisode_add"))
    assert response.status_code == 403
