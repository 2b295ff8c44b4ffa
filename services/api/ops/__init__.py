"""Operations: liveness, readiness and the Prometheus endpoint."""
