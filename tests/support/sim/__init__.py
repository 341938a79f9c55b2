"""The pool simulator that bench.scaling and the scaling tests run: a model of an Azure Batch pool and its policies."""
