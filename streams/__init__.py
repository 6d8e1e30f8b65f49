"""streamrec's stream processor: the Faust app, its agents and tables, and the CLI."""

__version__ = "0.1.0"
