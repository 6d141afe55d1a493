"""Resolving the organisation of a request and the object-level rules that go with it."""

from __future__ import annotations

from django.db import models
from django.http import Http404


def get_for_org_or_404(model: type[models.Model], org, **lookup):
    """Fetch one tenant object, answering 404 (not 403) for other tenants' ids.

    404 rather than 403 so that an outsider cannot even learn that an id exists.
    """
    try:
        return model.objects.for_org(org).get(**lookup)
    except (model.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
