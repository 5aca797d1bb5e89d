"""Dashboard pages: thin views over selectors and the pure chart builders."""

from __future__ import annotations

from django.views.generic import TemplateView

from indicators.roles import RoleRequiredMixin


class OverviewView(RoleRequiredMixin, TemplateView):
    template_name = "indicators/overview.html"
