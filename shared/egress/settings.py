"""The operator's opening in the egress policy (read by the API and the webhooks worker)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from shared.settings import CommonSettings


class EgressSettings(CommonSettings):
    egress_allow_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (names, addresses or networks such as 10.1.0.0/16) that webhooks and "
        "alerts may reach although they are loopback, private or link-local; a JSON list.",
    )


@lru_cache
def get_egress_settings() -> EgressSettings:
    return EgressSettings()
