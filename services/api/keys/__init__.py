"""A tenant's own API keys: their limits and spend (read-only; the admin API changes them)."""
