"""The built-in dashboard (static pages over the JSON APIs)."""
