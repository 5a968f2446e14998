"""The step into the shop: stores, offers and their rules, personal codes, redemptions.

One module per concern, each typed and free of HTTP: the till, the APIs, the CLI and the CSV
import all redeem through :func:`publisher.shop.redeem.redeem`, so every path keys a sale the
same way and applies the same rules.
"""
