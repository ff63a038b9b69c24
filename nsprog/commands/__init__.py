"""Command groups of the ``nsprog`` CLI (see ``nsprog.cli.COMMANDS``)."""
