"""Provider callbacks and short links (mounted at the site root in qianmian/urls.py)."""

from django.urls import path

from campaigns import hooks

urlpatterns = [
    path("hooks/sms/<str:provider>/receipts", hooks.sms_receipts, name="sms-receipts"),
    path("hooks/sms/<str:provider>/replies", hooks.sms_replies, name="sms-replies"),
    path("t/<str:code>", hooks.short_link, name="short-link"),
]
