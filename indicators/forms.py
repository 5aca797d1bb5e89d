"""Forms of the dashboard. Validation of the values themselves stays in ``services``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from indicators import login_throttle, services
from indicators.models import Observation

SEVERITY_CHOICES = [
    (0, "0: absent"),
    (1, "1: low"),
    (2, "2: moderate"),
    (3, "3: high"),
]

Choices = Sequence[tuple[Any, Any]]


class ObservationDateField(forms.DateField):
    """A date observed, read by the rule of every entry path (``services``): YYYY-MM-DD,
    from ``OBSERVATIONS_FROM`` to today."""

    def to_python(self, value: Any) -> date | None:
        if value in self.empty_values:
            return None
        parsed = services.parse_observation_date(value, today=timezone.localdate())
        if isinstance(parsed, str):
            raise ValidationError(parsed, code="invalid")
        return parsed

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        attrs = super().widget_attrs(widget)
        # The browser's date picker then offers nothing outside the range.
        attrs.update(min=settings.OBSERVATIONS_FROM.isoformat())
        return attrs


class AssessmentForm(forms.Form):
    """An analyst's assessment of one indicator for one country on the 0-3 scale."""

    country = forms.ChoiceField(label="Country")
    indicator = forms.ChoiceField(label="Indicator")
    value = forms.TypedChoiceField(
        label="Severity",
        choices=SEVERITY_CHOICES,
        coerce=int,
        widget=forms.RadioSelect,
        help_text="How strongly the indicator is present: 0 absent, 1 low, 2 moderate, 3 high.",
    )
    observed_on = ObservationDateField(
        label="Date observed",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="The date the situation was observed (not today's date unless it is).",
    )
    confidence = forms.ChoiceField(
        label="Confidence", choices=Observation.Confidence.choices, initial="medium"
    )
    source = forms.CharField(
        label="Source",
        max_length=200,
        help_text="Who or what the assessment rests on, e.g. a report's publisher and title.",
    )
    source_url = forms.URLField(
        label="Source link", required=False, max_length=500, assume_scheme="https"
    )
    note = forms.CharField(label="Note", required=False, widget=forms.Textarea(attrs={"rows": 4}))
    overrides_data = forms.BooleanField(
        label="Use this instead of the public data for this date",
        required=False,
        help_text=(
            "Leave unticked to add your assessment beside the data-derived values (they are "
            "averaged). Tick to have the scores use yours instead of the public data sets' "
            "values of this indicator, country and date (annual data is dated 31 December)."
        ),
    )

    def __init__(
        self,
        *args: Any,
        countries: Choices,
        indicators: Choices,
        today: date | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if today is not None:  # the browser's date picker then offers no future date
            self.fields["observed_on"].widget.attrs["max"] = today.isoformat()
        self.fields["country"].choices = [("", "Choose a country"), *countries]
        self.fields["indicator"].choices = [("", "Choose an indicator"), *indicators]

    def as_row(self) -> dict[str, Any]:
        """The cleaned data as a row for ``services.record_observations``."""
        data = self.cleaned_data
        return {
            "country": data["country"],
            "indicator": data["indicator"],
            "observed_on": data["observed_on"],
            "value": data["value"],
            "confidence": data["confidence"],
            "source": data["source"],
            "source_url": data["source_url"],
            "note": data["note"],
            "overrides_data": data["overrides_data"],
        }


class _LoginLockout:
    """The lockout check shared by the dashboard's and the admin's sign-in forms."""

    data: Any
    is_bound: bool
    request: Any

    def identity(self) -> dict[str, str]:
        """The user name and client address the failures are counted for."""
        username = self.data.get("username", "") if self.is_bound else ""
        address = self.request.META.get("REMOTE_ADDR", "") if self.request else ""
        return {"username": str(username), "address": address}

    def refuse_if_locked_out(self) -> None:
        if login_throttle.is_locked_out(**self.identity()):
            minutes = login_throttle.WINDOW_SECONDS // 60
            raise ValidationError(
                "Too many failed sign-in attempts for this user name. For the account's "
                f"safety, sign-in is paused for up to {minutes} minutes: try again later, "
                "or ask an administrator to reset the password.",
                code="throttled",
            )


class ThrottledAuthenticationForm(_LoginLockout, AuthenticationForm):
    """Sign-in that refuses, before checking the password, after too many failures.

    ``ThrottledLoginView`` counts the failures and clears them after a success.
    """

    def clean(self) -> dict[str, Any]:
        self.refuse_if_locked_out()
        return super().clean()


class ThrottledAdminAuthenticationForm(_LoginLockout, AdminAuthenticationForm):
    """The admin's sign-in, under the same lockout as the dashboard's (the same counts).

    The admin's own login view has no hook for it, so this form counts a wrong password
    itself, and clears the count after a success.
    """

    def clean(self) -> dict[str, Any]:
        self.refuse_if_locked_out()
        try:
            cleaned = super().clean()
        except ValidationError:
            # A wrong user name or password; not a right one on a non-staff account.
            if self.get_user() is None:
                login_throttle.record_failure(**self.identity())
            raise
        if self.get_user() is not None:
            login_throttle.clear_failures(**self.identity())
        return cleaned
