"""Marketplace API clients: one interface, real marketplaces and the local simulator behind the same code.

The base URL and credentials come from settings; the simulator (``sim/``) implements the same endpoints.
"""
