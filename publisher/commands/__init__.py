"""CLI commands, one module per area; each exports ``COMMANDS``, a list of click commands."""
