"""The crm app's HTTP APIs, one module per domain (docs/architecture.md, "crm"). Views are thin
adapters: validate with a serializer, call one service (crm/services/) or selector
(crm/selectors/), shape the response. crm/urls.py imports the modules by name."""
