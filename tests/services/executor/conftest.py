from tests.services.pipeline.support import sim_env  # noqa: F401 - the simulator pair fixture
