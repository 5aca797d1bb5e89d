"""The analysts' upload pages: a CSV or XLSX of assessments, imported by a worker.

The upload page stores the file and answers at once, then shows the upload's own page,
which follows the import (it reloads itself until the import and the recompute it asked
for are done); the analyst can leave it and find it again in the list of their uploads.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic import FormView, TemplateView

from indicators import selectors, uploads
from indicators.roles import Role, RoleRequiredMixin, has_role
from indicators.spreadsheets import human_size

# The form's other fields and the multipart framing, besides the file itself.
FORM_OVERHEAD_BYTES = 64 * 1024
# Seconds between reloads of an upload's page while its import or recompute runs.
REFRESH_SECONDS = 2


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
        limit = uploads.upload_limits().max_bytes
        if upload.size > limit:
            raise forms.ValidationError(
                f"The file is larger than {human_size(limit)}; split it into smaller files."
            )
        return upload


# Not exempt from CSRF: ``post`` checks the token itself, once it knows the body is small
# enough to read (the middleware would read all of it first, to find the token).
@method_decorator(csrf_exempt, name="dispatch")
class ObservationUploadView(RoleRequiredMixin, FormView):
    """An analyst uploads a file of assessments and sees their latest uploads."""

    required_roles = (Role.ANALYST,)
    template_name = "indicators/upload.html"
    form_class = UploadForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        limits = uploads.upload_limits()
        context.update(
            required_columns=uploads.REQUIRED_COLUMNS,
            optional_columns=uploads.OPTIONAL_COLUMNS,
            max_size=human_size(limits.max_bytes),
            max_bytes=limits.max_bytes,
            max_rows=f"{limits.max_rows:,}",
            max_columns=limits.max_columns,
            observations_from=settings.OBSERVATIONS_FROM,
            uploads=selectors.uploads_of(user=self.request.user),
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limit = uploads.upload_limits().max_bytes
        if _declared_length(request) > limit + FORM_OVERHEAD_BYTES:
            # Refused before a byte of the body is read (nor the CSRF token in it: nothing
            # is changed). Browsers with the page's script never send such a file.
            form = UploadForm()
            context = self.get_context_data(
                form=form,
                refused=(
                    f"The file is larger than {human_size(limit)}; split it into smaller files. "
                    "Nothing was uploaded."
                ),
            )
            return self.render_to_response(context, status=413)
        return self._post_with_csrf_check(request, *args, **kwargs)

    @method_decorator(csrf_protect)
    def _post_with_csrf_check(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: UploadForm) -> HttpResponse:  # type: ignore[override]
        upload = form.cleaned_data["file"]
        try:
            stored = uploads.submit_upload(
                name=upload.name,
                content=upload.read(),
                uploaded_by=self.request.user,
                dry_run=form.cleaned_data["dry_run"],
            )
        except uploads.UploadFormatError as error:
            form.add_error("file", uploads.printable(str(error)))
            return self.form_invalid(form)
        return HttpResponseRedirect(reverse("observation-upload-detail", args=[stored.pk]))


class ObservationUploadDetailView(RoleRequiredMixin, TemplateView):
    """One upload: waiting, importing, or its outcome (counts, or every problem)."""

    required_roles = (Role.ANALYST, Role.ADMINISTRATOR)
    template_name = "indicators/upload_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        upload = selectors.observation_upload(pk=self.kwargs["pk"])
        user = self.request.user
        if upload is None or (
            upload.uploaded_by_id != user.pk and not has_role(user, Role.ADMINISTRATOR)
        ):
            raise Http404("No such upload.")
        recompute_pending = (
            upload.status == upload.Status.SUCCEEDED
            and not upload.dry_run
            and bool(upload.result.get("countries"))
            and selectors.upload_recompute_pending(upload=upload)
        )
        problem_count = upload.result.get("problem_count", len(upload.problems))
        context.update(
            upload=upload,
            recompute_pending=recompute_pending,
            refresh_seconds=(
                REFRESH_SECONDS if not upload.is_finished or recompute_pending else None
            ),
            problem_count=problem_count,
            problems_left_out=problem_count - len(upload.problems),
        )
        return context


def _declared_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0
