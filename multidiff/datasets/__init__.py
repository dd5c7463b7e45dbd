"""Adapters from real, published data formats to arrays the core understands."""
