"""Per-guest code the lab ships as plugins, found through entry points like any package's (see pyproject.toml)."""
