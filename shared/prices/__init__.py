"""Model prices: a table with history, seeded from the environment, snapshotted by each job.

See docs/architecture.md, 'Cost model'. The SQL is :mod:`shared.prices.repository`; seeding,
validation and pricing the configured models :mod:`shared.prices.service`; what a job keeps of
them :mod:`shared.prices.snapshot`.
"""

from shared.prices.service import (
    ADMIN,
    ENVIRONMENT,
    configured_profiles,
    listing,
    priced_profiles,
    seed_from_environment,
    set_price,
)
from shared.prices.snapshot import job_profiles, priced, snapshot

__all__ = [
    "ADMIN",
    "ENVIRONMENT",
    "configured_profiles",
    "job_profiles",
    "listing",
    "priced",
    "priced_profiles",
    "seed_from_environment",
    "set_price",
    "snapshot",
]
