"""All of the sender's logic. ``app/app.py`` only wires routes to these modules."""
