from django.conf import settings
from django.contrib import admin
from django.contrib.staticfiles.views import serve as static_serve
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from django.views.i18n import JavaScriptCatalog
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core import views as core_views
from crm import views as crm_views

handler400 = "core.errors.handler_400"
handler403 = "core.errors.handler_403"
handler404 = "core.errors.handler_404"
handler500 = "core.errors.handler_500"

api_v1 = [
    path("", include("core.urls")),
    path("", include("livecommerce.urls")),
    path("", include("crm.urls")),
    path("", include("campaigns.urls")),
]

urlpatterns = [
    path("", core_views.home, name="home"),
    # Browsers and bots ask for /favicon.ico whatever the page links.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    path("metrics", core_views.metrics, name="metrics"),
    path("i18n/", include("django.conf.urls.i18n")),
    # Page scripts translate through gettext() from this catalog (static/shared/i18n.js).
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    # --- pages and hooks: live rooms ---
    path("", include("livecommerce.page_urls")),
    # --- pages: sales workspace ---
    path("workspace/", crm_views.workspace, name="workspace"),
    # --- hooks: campaigns (SMS receipts / replies, short links) ---
    path("", include("campaigns.hook_urls")),
    # --- hooks: wechat ---
    path("hooks/wechat/", include("wechat.hook_urls")),
    path("wechat/", include("wechat.page_urls")),
    path("api/v1/", include("wechat.urls")),
]

if settings.SERVE_FILES:
    # The embedded default serves its own files; production leaves this to nginx.
    urlpatterns += [
        re_path(r"^static/(?P<path>.*)$", static_serve, {"insecure": True}),
        # MEDIA_ROOT read per request (not frozen at import), like default_storage does.
        re_path(
            r"^media/(?P<path>.*)$", lambda request, path: serve(request, path, settings.MEDIA_ROOT)
        ),
    ]
