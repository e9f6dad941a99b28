"""Built-in domain plugins; each registers through the same hooks as third-party ones."""
