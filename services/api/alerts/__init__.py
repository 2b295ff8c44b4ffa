"""Budget alerts: a tenant's own (``GET /v1/alerts``) and every tenant's (``GET
/v1/admin/alerts``)."""
