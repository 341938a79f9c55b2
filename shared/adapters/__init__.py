"""Adapters: the only code that talks to Azure (Blob Storage, Batch) or runs local processes, behind the ports."""
