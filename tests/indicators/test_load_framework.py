from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import CommandError, call_command

from indicators import methodology
from indicators.models import CrimeGroup, Indicator, MethodologyVersion, RiskFactor
from indicators.services import FrameworkError, load_framework

pytestmark = pytest.mark.django_db


def test_it_loads_the_14_factors_and_every_listed_indicator():
    result = load_framework()
    document = yaml.safe_load(Path(settings.FRAMEWORK_FILE).read_text())
    listed = sum(len(f["indicators"] or []) for f in document["risk_factors"])
    assert result.factors_created == RiskFactor.objects.count() == 14
    assert result.indicators_created == Indicator.objects.count() == listed == 113
    assert RiskFactor.objects.get(code="RF10").group == CrimeGroup.GENOCIDE
    assert RiskFactor.objects.get(code="RF13").group == CrimeGroup.WAR_CRIMES
    assert Indicator.objects.get(code="8.7").factor.code == "RF8"


def test_verification_status_follows_the_files_code_ranges():
    load_framework()
    status = dict(Indicator.objects.values_list("code", "verification"))
    assert status["7.10"] == Indicator.Verification.VERIFIED
    assert status["7.11"] == Indicator.Verification.PARTLY_VERIFIED
    assert status["7.12"] == Indicator.Verification.RECALLED
    assert status["13.10"] == Indicator.Verification.PARTLY_VERIFIED
    assert sum(1 for s in status.values() if s == Indicator.Verification.VERIFIED) == 37
    assert "incomplete" in RiskFactor.objects.get(code="RF11").note


def test_reloading_duplicates_nothing_and_never_touches_the_methodology():
    load_framework()
    version = methodology.initial_methodology()
    before = (version.factor_weights, version.indicator_weights, version.staleness_days)
    result = load_framework()
    assert (result.factors_created, result.factors_updated) == (0, 0)
    assert (result.indicators_created, result.indicators_updated) == (0, 0)
    assert Indicator.objects.count() == 113
    version.refresh_from_db()
    assert (version.factor_weights, version.indicator_weights, version.staleness_days) == before
    assert MethodologyVersion.objects.count() == 1


def test_reloading_updates_changed_texts(tmp_path: Path):
    load_framework()
    document = yaml.safe_load(Path(settings.FRAMEWORK_FILE).read_text())
    document["risk_factors"][0]["indicators"][0]["label"] = "Armed conflict (reworded)."
    changed = tmp_path / "framework.yaml"
    changed.write_text(yaml.safe_dump(document))
    result = load_framework(path=changed)
    assert result.indicators_updated == 1
    assert Indicator.objects.get(code="1.1").label == "Armed conflict (reworded)."


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["risk_factors"][0].update(group="famine"), "unknown group"),
        (lambda d: d["risk_factors"][0]["indicators"][0].update(code="2.99"), "needs a code"),
        (
            lambda d: d["risk_factors"][1]["indicators"].append({"code": "2.1", "label": "again"}),
            "duplicate",
        ),
        (lambda d: d.pop("risk_factors"), "risk_factors"),
    ],
)
def test_a_malformed_file_is_refused_and_writes_nothing(tmp_path: Path, mutate, message: str):
    document = yaml.safe_load(Path(settings.FRAMEWORK_FILE).read_text())
    mutate(document)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    with pytest.raises(FrameworkError, match=message):
        load_framework(path=bad)
    assert not RiskFactor.objects.exists()
    assert not Indicator.objects.exists()


def test_the_command_reports_counts_and_turns_errors_into_command_errors(tmp_path: Path):
    out = StringIO()
    call_command("load_framework", stdout=out)
    assert "Risk factors: 14 created" in out.getvalue()
    assert "Indicators: 113 created" in out.getvalue()
    bad = tmp_path / "bad.yaml"
    bad.write_text("risk_factors: 3\n")
    with pytest.raises(CommandError, match="risk_factors"):
        call_command("load_framework", "--file", str(bad))


def test_a_revised_file_updates_texts_and_notes_of_an_installation_and_says_what_changed(
    tmp_path: Path,
):
    document = yaml.safe_load(Path(settings.FRAMEWORK_FILE).read_text())
    rf7 = next(f for f in document["risk_factors"] if f["code"] == "RF7")
    revised_label = next(i["label"] for i in rf7["indicators"] if i["code"] == "7.4")
    older = yaml.safe_load(yaml.safe_dump(document))
    old_rf7 = next(f for f in older["risk_factors"] if f["code"] == "RF7")
    next(i for i in old_rf7["indicators"] if i["code"] == "7.4")["label"] = (
        "Stockpiling large quantities of weapons, ammunition or other tools for harm."
    )
    older["verification"]["by_factor"]["RF7"]["note"] = "An older note."
    old_file = tmp_path / "old.yaml"
    old_file.write_text(yaml.safe_dump(older))
    load_framework(path=old_file)
    published = methodology.initial_methodology()

    out = StringIO()
    call_command("load_framework", stdout=out)

    indicator = Indicator.objects.get(code="7.4")
    assert indicator.label == revised_label
    assert "acquiring" in RiskFactor.objects.get(code="RF7").note
    assert MethodologyVersion.objects.get() == published  # weights are versions' business
    printed = out.getvalue()
    assert "Indicators: 0 created, 1 updated" in printed
    assert "7.4 label: 'Stockpiling large quantities" in printed
    assert "RF7 note: 'Indicators: 7.1-7.10 verified; 7.11 partly verified; 7.12-7.14" in printed
    assert "Weights and staleness limits were left as they were." in printed
