"""OAuth 2.1 for MCP servers: the pure client in ``oauth.client`` and its
Django side (registrations, pending authorizations, credentials, views)."""
