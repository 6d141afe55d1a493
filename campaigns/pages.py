"""Campaign builder, report and journey list in the sales workspace (data from the API)."""

from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def campaigns_page(request):
    return render(request, "campaigns/index.html")
