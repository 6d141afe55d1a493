"""The one base for request bodies: a write that sends a field the endpoint does not take
(a typo, a field of another endpoint, a read-only one like ``id`` or ``score``) is refused
with a 400 naming it, instead of answering 200 and dropping it (docs/api.md).

Query-string serializers stay plain ``serializers.Serializer``: a query may carry paging or
cache-busting parameters that are not the serializer's business."""

from __future__ import annotations

from collections.abc import Mapping

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

UNKNOWN = _("未知字段")
READ_ONLY = _("只读字段，不能修改")


class StrictInputMixin:
    """Refuses unknown and read-only fields, reported together with the other field errors."""

    def to_internal_value(self, data):
        refused = {}
        if isinstance(data, Mapping):
            fields = self.fields
            for name in data:
                field = fields.get(name)
                if field is None:
                    refused[name] = [UNKNOWN]
                elif field.read_only:
                    refused[name] = [READ_ONLY]
        try:
            value = super().to_internal_value(data)
        except ValidationError as exc:
            if refused and isinstance(exc.detail, dict):
                raise ValidationError({**exc.detail, **refused}) from None
            raise
        if refused:
            raise ValidationError(refused)
        return value


class InputSerializer(StrictInputMixin, serializers.Serializer):
    """Base of every request-body serializer."""


class ModelInputSerializer(StrictInputMixin, serializers.ModelSerializer):
    """Base of every request-body model serializer."""
