"""Benchmark helpers: a discrete-event model of an Azure Batch pool and the scaling policies run on it."""
