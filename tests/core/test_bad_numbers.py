import pytest


@pytest.mark.django_db
class TestNumbersOutOfRange:
    def test_an_id_too_large_for_any_column_is_a_field_error(self, sales_bob):
        response = sales_bob.client().post(
            "/api/v1/leads/assign", {"leads": [2**70]}, format="json"
        )
        assert response.status_code == 400
        assert "leads" in response.json()["fields"]

    def test_a_negative_id_is_a_field_error(self, sales_bob):
        response = sales_bob.client().post("/api/v1/leads/assign", {"leads": [-1]}, format="json")
        assert response.status_code == 400
        assert "leads" in response.json()["fields"]
