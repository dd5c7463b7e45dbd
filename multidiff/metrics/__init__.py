"""Metrics as pure functions, each tested against hand-computed values."""
