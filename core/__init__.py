"""The tunehub core: plugin manager, task specs, config, data, engine, hub and CLI.

Nothing here imports torch or transformers at import time; the functions that need
them import them.
"""
