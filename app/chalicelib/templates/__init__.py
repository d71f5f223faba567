"""Templates: message bodies with ``((placeholders))``, kept in versions, that sends fill in. The placeholder
rules (``render``), the templates table (``store``), creating, reading, listing, versioning and archiving
templates and finding the version a send renders (``manage``), and the ``/templates`` routes (``routes``).

May import: ``core``, and ``keys.routing`` (its routes are protected like every other). ``sending`` imports this
package (a send from a template renders it); nothing here imports ``sending``.
"""
