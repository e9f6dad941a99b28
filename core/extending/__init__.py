"""The plugin system: hook specifications, the catalog of what plugins register, registry files, task files, and the head wrapper."""
