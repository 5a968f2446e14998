"""The web layer: accounts, sessions, the till, personal offer codes, the shop's order webhook.

Served by Starlette (with Jinja2 templates and Babel catalogues) inside the tracker process;
``/go/<code>`` stays on the tracker's own lean path.
"""
