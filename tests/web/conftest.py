"""The web tests' fixtures live in web_fixtures (shared with the test modules)."""

from web_fixtures import client_ro, client_rw, served

__all__ = ["client_ro", "client_rw", "served"]
