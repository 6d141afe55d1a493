from django.shortcuts import render


def home(request):
    """Landing page linking the product's pages and the API docs."""
    return render(request, "home.html")
