"""The local stack: real Postgres and Redis on loopback plus every service, without Docker.

Servers are Debian's ``postgresql``/``redis-server`` binaries (installed with apt-get when
root and absent) or, failing that, the ones shipped inside pip packages. Everything lives under
a project-local directory and is stopped by pid: ``down`` stops only what ``up`` started.
"""
