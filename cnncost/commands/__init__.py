"""CLI commands that live in their own modules (one per command), registered by name in
``cnncost.cli.LAZY_COMMANDS`` and imported only when invoked."""
