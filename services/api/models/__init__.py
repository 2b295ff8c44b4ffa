"""The models a tenant may name in an OpenAI request (``GET /v1/models``)."""
