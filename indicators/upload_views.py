"""The analysts' file upload page: a CSV or XLSX of assessments, all or nothing."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import FormView

from indicators import uploads
from indicators.roles import Role, RoleRequiredMixin
from indicators.services import ObservationBatchError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024


class UploadForm(forms.Form):
    file = forms.FileField(
        label="File",
        help_text="A .csv (UTF-8) or .xlsx file with the columns described below.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.xlsx"}),
    )
    dry_run = forms.BooleanField(
        label="Dry run: check the file and count, but record nothing",
        required=False,
        initial=True,
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB; split it."
            )
        return upload


class ObservationUploadView(RoleRequiredMixin, FormView):
    """An analyst uploads a file of assessments; nothing is recorded unless every row is good."""

    required_roles = (Role.ANALYST,)
    template_name = "indicators/upload.html"
    form_class = UploadForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            required_columns=uploads.REQUIRED_COLUMNS,
            optional_columns=uploads.OPTIONAL_COLUMNS,
        )
        return context

    def form_valid(self, form: UploadForm) -> HttpResponse:  # type: ignore[override]
        upload = form.cleaned_data["file"]
        dry_run = form.cleaned_data["dry_run"]
        try:
            result = uploads.import_observation_file(
                name=upload.name,
                content=upload.read(),
                recorded_by=self.request.user,
                dry_run=dry_run,
            )
        except uploads.UploadFormatError as error:
            form.add_error("file", str(error))
            return self.form_invalid(form)
        except ObservationBatchError as error:
            return self.render_to_response(
                self.get_context_data(form=form, problems=error.errors, file_name=upload.name)
            )
        if dry_run:
            return self.render_to_response(
                self.get_context_data(form=form, dry_run_result=result, file_name=upload.name)
            )
        messages.success(
            self.request,
            f"{upload.name}: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged."
            + (
                f" Scores are recomputed for {', '.join(sorted(result.countries))}."
                if result.countries
                else ""
            ),
        )
        return HttpResponseRedirect(reverse("observation-upload"))
