"""What tests and benchmarks share: stand-ins for Azure, test media, the pool simulator, readers of infra/."""
