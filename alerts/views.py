"""Alert pages: the inbox, an alert with its history, actions, e-mail links, subscriptions."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import TemplateView

from alerts import selectors, services
from alerts.forms import DismissForm, InboxFilterForm, NoteForm, ResolveForm, SubscriptionForm
from alerts.models import Alert, AlertEvent, Subscription
from indicators.roles import Role, RoleRequiredMixin, has_role


class InboxView(RoleRequiredMixin, TemplateView):
    """Alerts grouped by country, the most urgent country first (severity, then the size
    of the rise, then the newest), with per-alert actions and bulk acknowledgement."""

    template_name = "alerts/inbox.html"
    countries_per_page = 25

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        form = InboxFilterForm(self.request.GET or {"status": "active"})
        filters = form.cleaned_data if form.is_valid() else {"status": "active"}
        alerts = selectors.inbox(
            status=filters.get("status", ""),
            severity=filters.get("severity", ""),
            region=filters.get("region", ""),
            recipient=self.request.user if filters.get("mine") else None,
        )
        groups = selectors.alerts_by_urgency(alerts)
        page = Paginator(groups, self.countries_per_page).get_page(self.request.GET.get("page"))
        countries = selectors.country_groups(list(page))
        shown = [alert for group in countries for alert in group.alerts]
        query = self.request.GET.copy()
        query.pop("page", None)
        return {
            **super().get_context_data(**kwargs),
            "form": form,
            "page": page,
            "groups": countries,
            "alert_count": sum(len(pks) for _country, pks in groups),
            "query": query.urlencode(),
            "names": selectors.framework_names(),
            # The same check as the detail page, for the whole page in a few queries.
            "actionable": services.alerts_user_can_act_on(shown, self.request.user),
            "back_to": self.request.get_full_path(),
        }


class BulkAcknowledgeView(RoleRequiredMixin, View):
    """POST-only: acknowledge the chosen alerts (checkboxes), or every open alert of one
    country the user may act on; then back to the inbox page it came from."""

    def post(self, request: HttpRequest) -> HttpResponse:
        ids = [int(pk) for pk in request.POST.getlist("alert") if pk.isdigit()]
        country = request.POST.get("country", "")
        alerts = Alert.objects.select_related("country").filter(status=Alert.Status.OPEN)
        if country:
            alerts = alerts.filter(country__iso3=country)
        elif ids:
            alerts = alerts.filter(pk__in=ids)
        else:
            messages.error(request, "Choose the alerts to acknowledge first.")
            return HttpResponseRedirect(_back_to(request) or reverse("alerts:inbox"))
        count = services.acknowledge_many(alerts=list(alerts), user=request.user)
        if count:
            messages.success(request, f"{count} alert{'' if count == 1 else 's'} acknowledged.")
        else:
            messages.error(
                request,
                "Nothing was acknowledged: the alerts are no longer open, or only their "
                "recipients and administrators can acknowledge them.",
            )
        return HttpResponseRedirect(_back_to(request) or reverse("alerts:inbox"))


class AlertDetailView(RoleRequiredMixin, TemplateView):
    template_name = "alerts/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        alert = get_object_or_404(
            Alert.objects.select_related(
                "country",
                "run",
                "observation",
                "acknowledged_by",
                "resolved_by",
                "dismissed_by",
            ).prefetch_related(
                Prefetch("events", queryset=AlertEvent.objects.select_related("actor")),
            ),
            pk=kwargs["pk"],
        )
        return {
            **super().get_context_data(**kwargs),
            "alert": alert,
            "names": selectors.framework_names(),
            "deliveries": selectors.deliveries_of(alert),
            "can_act": services.can_act_on(alert, self.request.user),
            "is_admin": has_role(self.request.user, Role.ADMINISTRATOR),
            "resolve_form": ResolveForm(),
            "dismiss_form": DismissForm(),
            "note_form": NoteForm(),
        }


class AlertActionView(RoleRequiredMixin, View):
    """POST-only: acknowledge, resolve, dismiss, note, retry failed deliveries."""

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        alert = get_object_or_404(Alert, pk=pk)
        data = request.POST
        try:
            if action == "acknowledge":
                services.acknowledge(alert=alert, user=request.user)
                messages.success(request, "Alert acknowledged.")
            elif action == "resolve":
                services.resolve(alert=alert, user=request.user, note=data.get("note", ""))
                messages.success(request, "Alert resolved.")
            elif action == "dismiss":
                services.dismiss(alert=alert, user=request.user, reason=data.get("reason", ""))
                messages.success(request, "Alert dismissed; the reason is kept.")
            elif action == "note":
                services.add_note(alert=alert, user=request.user, text=data.get("text", ""))
                messages.success(request, "Note added.")
            elif action == "retry":
                count = services.retry_failed_notifications(
                    notification_ids=selectors.deliveries_of(alert)
                    .filter(failed_at__isnull=False)
                    .values_list("pk", flat=True),
                    user=request.user,
                )
                messages.success(
                    request, f"{count} failed deliver{'y' if count == 1 else 'ies'} queued again."
                )
            else:
                return HttpResponse(status=404)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        except PermissionDenied:
            raise
        return HttpResponseRedirect(_back_to(request) or reverse("alerts:detail", args=[alert.pk]))


def _back_to(request: HttpRequest) -> str | None:
    """The inbox page (with its filters) an action was posted from; only our own inbox."""
    target = request.POST.get("next", "")
    inbox = reverse("alerts:inbox")
    safe = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return (
        target if safe and urlsplit(target).path == inbox and not urlsplit(target).netloc else None
    )


class AcknowledgeLinkView(View):
    """The signed link from an e-mail. GET shows which alerts it acknowledges and asks to
    confirm, so that mail scanners following links cannot acknowledge anything; the
    button POSTs."""

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            notification = services.notification_for_token(token)
        except ValidationError as exc:
            return render(
                request, "alerts/acknowledge.html", {"error": " ".join(exc.messages)}, status=400
            )
        message = notification.alert_message
        items = list(message.items.select_related("alert__country").order_by("position"))
        return render(
            request,
            "alerts/acknowledge.html",
            {
                "message": message,
                "country": message.country,
                "items": [
                    {
                        "alert": item.alert,
                        "escalated_since": item.alert.escalation_count != item.escalation_count,
                    }
                    for item in items
                ],
                "recipient": notification.recipient,
                "used": notification.ack_used_at is not None,
                "open_count": sum(
                    1
                    for item in items
                    if item.alert.status == Alert.Status.OPEN
                    and item.alert.escalation_count == item.escalation_count
                ),
            },
        )

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            result = services.acknowledge_with_token(token=token)
        except ValidationError as exc:
            return render(
                request, "alerts/acknowledge.html", {"error": " ".join(exc.messages)}, status=400
            )
        return render(request, "alerts/acknowledge.html", {"result": result, "done": True})


class SubscriptionListView(RoleRequiredMixin, TemplateView):
    template_name = "alerts/subscriptions.html"
    required_roles = (Role.FOCAL_POINT, Role.ADMINISTRATOR)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        subscriptions = Subscription.objects.filter(user=self.request.user).prefetch_related(
            "countries"
        )
        return {**super().get_context_data(**kwargs), "subscriptions": subscriptions}


class SubscriptionEditView(RoleRequiredMixin, View):
    required_roles = (Role.FOCAL_POINT, Role.ADMINISTRATOR)

    def _subscription(self, request: HttpRequest, pk: int | None) -> Subscription:
        if pk is None:
            return Subscription(user=request.user)
        # Focal points manage their own subscriptions only.
        return get_object_or_404(Subscription, pk=pk, user=request.user)

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        subscription = self._subscription(request, pk)
        return render(
            request,
            "alerts/subscription_form.html",
            {"form": SubscriptionForm(instance=subscription), "subscription": subscription},
        )

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        subscription = self._subscription(request, pk)
        if "delete" in request.POST and subscription.pk:
            subscription.delete()
            messages.success(request, "Subscription deleted.")
            return redirect("alerts:subscriptions")
        form = SubscriptionForm(request.POST, instance=subscription)
        if form.is_valid():
            services.save_subscription(
                subscription=form.save(commit=False), countries=form.cleaned_data["countries"]
            )
            messages.success(request, "Subscription saved.")
            return redirect("alerts:subscriptions")
        return render(
            request,
            "alerts/subscription_form.html",
            {"form": form, "subscription": subscription},
            status=400,
        )
