"""Build the client for a role, and check at start that the engine serves the configured model.

The adapters import their client packages (huggingface_hub, openai) only here, on demand, so
importing :mod:`shared.engines` costs nothing in processes that never call an engine.
"""

from __future__ import annotations

import logging

from shared.db.models import Role
from shared.engines.base import EngineClient, EngineInfo
from shared.engines.config import EngineConfig, engine_config
from shared.engines.role_settings import EngineKind
from shared.errors import ConfigurationError

log = logging.getLogger(__name__)


def make_client(role_or_config: Role | str | EngineConfig) -> EngineClient:
    """The client for a role (from settings) or for an explicit :class:`EngineConfig`."""
    config = (
        role_or_config
        if isinstance(role_or_config, EngineConfig)
        else engine_config(role_or_config)
    )
    if config.kind is EngineKind.OPENAI:
        from shared.engines.openai_compat import OpenAICompatClient

        return OpenAICompatClient(config)
    from shared.engines.tgi import TGIClient

    return TGIClient(config)


async def check_engine(client: EngineClient, *, check_model: bool = True) -> EngineInfo:
    """Ask the engine who it is; refuse to start against a model other than the configured one.

    Costs, FLOPs and the classifier's features are all tied to the configured model, so a
    mismatch is a configuration error, not something to log and carry on with.
    """
    info = await client.info()
    expected = client.profile.name
    if check_model and info.model_id != expected:
        raise ConfigurationError(
            f"engine serves model {info.model_id!r} but {expected!r} is configured; fix the "
            "role's TANDEM_<ROLE>_ENGINE_MODEL_ID (and its parameters and prices) or the engine",
            field="model_id",
            expected=expected,
            served=info.model_id,
        )
    log.info("engine ok: %s serves %s (%s)", info.engine, info.model_id, info.version)
    return info
