"""Access: scoped, revocable API keys. What a key looks like and how it is checked (``tokens``), which routes
each scope opens (``scopes``), the check API Gateway runs before every protected route (``authorizer``, a
Lambda function of its own that loads no Chalice), Chalice's built-in authorizer around it and the decorator
every protected route is declared with (``routing``), and the ``/keys`` routes that create, list and revoke
keys (``manage``, ``routes``).

May import: ``core`` only. The other capabilities' routes import ``routing.protected`` and nothing else of this
package.
"""
