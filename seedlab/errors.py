"""The one user-facing error family; the CLI turns these into a one-line message."""


class SeedlabError(Exception):
    """A known failure the user can fix: the message names what failed and what to do."""


class ConfigError(SeedlabError):
    """The config file is missing, malformed or holds an unknown or mistyped key."""


class TaxonomyError(SeedlabError):
    """A taxonomy path, git ref or leaf cannot be used."""
