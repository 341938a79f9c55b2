"""Ports: what the use-cases ask of the outside (Batch, Storage) and the bundle of them they receive (Deps)."""
