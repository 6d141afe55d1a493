from django.urls import path

from core import apis

urlpatterns = [
    path("health", apis.HealthApi.as_view(), name="health"),
    path("auth/token", apis.AuthTokenApi.as_view(), name="auth-token"),
    path("auth/logout", apis.SignOutApi.as_view(), name="auth-logout"),
    path("me", apis.MeApi.as_view(), name="me"),
]
