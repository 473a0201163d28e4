"""Clients for the model services: pooled HTTP, deadlines, retries, breakers, variant routing."""
