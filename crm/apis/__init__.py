"""The crm app's HTTP APIs (being split by domain: docs/architecture.md)."""
