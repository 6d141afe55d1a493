"""The sales workspace page. Data comes from the API with the staff token (no server state)."""

from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def workspace(request):
    return render(request, "workspace/index.html")
