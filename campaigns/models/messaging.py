"""Templates, campaigns, outbox deliveries, journeys, opt-outs (campaigns issue)."""
