from __future__ import annotations

from typing import Any

from django import forms

from alerts.models import Alert, SeverityChoice, Subscription
from countries.models import Country


def region_choices() -> list[tuple[str, str]]:
    regions = Country.objects.order_by("region").values_list("region", flat=True).distinct()
    subs = Country.objects.order_by("sub_region").values_list("sub_region", flat=True).distinct()
    return [(r, r) for r in regions] + [(s, f"{s} (sub-region)") for s in subs]


class SubscriptionForm(forms.ModelForm):
    regions = forms.MultipleChoiceField(
        required=False,
        widget=forms.SelectMultiple(
            attrs={"size": 8, "data-picker": "", "data-placeholder": "Type a region's name"}
        ),
        help_text="UN M49 regions or sub-regions: type to search, pick as many as you cover.",
    )
    countries = forms.ModelMultipleChoiceField(
        queryset=Country.objects.order_by("name"),
        required=False,
        widget=forms.SelectMultiple(
            attrs={
                "size": 10,
                "data-picker": "",
                "data-placeholder": "Type a country's name or ISO code",
            }
        ),
        help_text="Type a few letters of a name or an ISO code and pick from the list.",
    )

    class Meta:
        model = Subscription
        fields = [
            "all_countries",
            "countries",
            "regions",
            "min_severity",
            "delivery",
            "webhook_url",
            "weekly_summary",
            "active",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["regions"].choices = region_choices()
        # The picker searches by name and code: "Kenya (KEN)".
        self.fields["countries"].label_from_instance = lambda c: f"{c.name} ({c.iso3})"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not (cleaned.get("all_countries") or cleaned.get("regions") or cleaned.get("countries")):
            raise forms.ValidationError("Choose countries, regions or all countries.")
        return cleaned


class InboxFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[("active", "Open or acknowledged"), ("", "Any status"), *Alert.Status.choices],
    )
    severity = forms.ChoiceField(
        required=False, choices=[("", "Any severity"), *SeverityChoice.choices]
    )
    region = forms.ChoiceField(required=False)
    mine = forms.BooleanField(required=False, label="Only alerts sent to me")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["region"].choices = [("", "Any region"), *region_choices()]


class ResolveForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, label="What was done"
    )


class DismissForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label="Why dismiss it (kept on record)"
    )


class NoteForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Note")
