from __future__ import annotations

from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "Atrocity-risk early warning"
admin.site.site_title = "Early warning administration"

urlpatterns = [
    # Until the dashboard lands, the administration is the product's front door.
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
]
