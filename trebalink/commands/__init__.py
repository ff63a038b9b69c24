"""The ``trebalink`` command modules (argument parsing and printing only)."""
