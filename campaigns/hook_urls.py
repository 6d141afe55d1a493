"""Provider callbacks, short links and the campaigns workspace page (mounted at the site root
in qianmian/urls.py)."""

from django.urls import path

from campaigns import hooks, pages

urlpatterns = [
    path("hooks/sms/<str:provider>/receipts", hooks.sms_receipts, name="sms-receipts"),
    path("hooks/sms/<str:provider>/replies", hooks.sms_replies, name="sms-replies"),
    path("t/<str:code>", hooks.short_link, name="short-link"),
    path("workspace/campaigns/", pages.campaigns_page, name="workspace-campaigns"),
]
