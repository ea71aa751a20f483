"""Governance: who may see what (API keys and roles) and erasure of persons on request."""
