"""The send console served at ``GET /``: the page (``page``) assembled once from its static files
(``static/``: HTML, CSS and JS, no build step).

May import: the standard library only.
"""
