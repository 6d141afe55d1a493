from django.urls import path

from wechat import pages

urlpatterns = [
    path("oauth/start", pages.oauth_start, name="wechat-oauth-start"),
    path("oauth/callback", pages.oauth_callback, name="wechat-oauth-callback"),
]
