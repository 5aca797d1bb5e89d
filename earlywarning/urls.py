from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from indicators.api import ApiTokenView
from indicators.forms import ThrottledAdminAuthenticationForm
from indicators.views import ThrottledLoginView

# Unmatched paths under /api/ answer JSON like the API; others get templates/404.html.
handler404 = "indicators.api_support.api_aware_page_not_found"

admin.site.site_header = "Atrocity-risk early warning"
admin.site.site_title = "Early warning administration"
# The admin's sign-in is under the same lockout as the dashboard's.
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", ThrottledLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/token/", ApiTokenView.as_view(), name="api_token"),
    path("api/v1/", include("indicators.api_urls")),
    path("api/v1/", include("alerts.api_urls")),
    path("alerts/", include("alerts.urls")),
    path("", include("indicators.urls")),
]
