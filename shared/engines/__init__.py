"""Clients of the inference engines (TGI, OpenAI-compatible) behind one async interface.

``make_client(role)`` builds the client a role is configured with; ``check_engine(client)``
verifies at start that the engine serves the configured model. See :mod:`shared.engines.base`
for the interface and :mod:`shared.engines.config` for the settings.
"""

from shared.engines.config import EngineConfig, engine_config
from shared.engines.errors import EngineError, TransientEngineError
from shared.engines.factory import check_engine, make_client

__all__ = [
    "EngineConfig",
    "EngineError",
    "TransientEngineError",
    "check_engine",
    "engine_config",
    "make_client",
]
