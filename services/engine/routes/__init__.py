"""The engine server's HTTP routes, one router per concern.

``generate`` holds TGI's generation routes (``/generate``, ``/generate_stream``, ``/`` and
SageMaker's ``/invocations``), ``info`` the server's own state (``/info``, ``/health``,
``/metrics``, ``/tokenize``), ``openai`` the OpenAI-compatible routes. :mod:`services.engine.app`
only assembles them.
"""
