"""The reports' roll-ups: what settlement adds per job, so reports never read raw rows."""
