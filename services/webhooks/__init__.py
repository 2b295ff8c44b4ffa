"""The webhooks service: delivers the webhook outbox, on its own queue so that a slow or dead
receiver holds none of the workers that run jobs."""
