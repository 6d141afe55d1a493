from rest_framework import serializers

# Database ids are positive 64-bit integers: anything outside is a 400 on input, never an
# overflow inside the database driver (a 500 schemathesis found).
MAX_ID = 2**63 - 1


class IdField(serializers.IntegerField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)
