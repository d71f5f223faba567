"""Access: scoped, revocable API keys. What a key looks like and how it is checked (``tokens``), which routes
each scope opens (``scopes``), the Chalice built-in authorizer API Gateway runs before every protected route
(``authorizer``), and the ``/keys`` routes that create, list and revoke keys (``manage``, ``routes``).

May import: ``core`` only. The other capabilities' routes import ``authorizer`` (every protected route names
it) and nothing else of this package.
"""
