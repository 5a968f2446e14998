"""Storyloop's engine: content model, Pelican plugin, plan, ledger, scheduler, tracking, reports."""

__version__ = "0.1.0"
