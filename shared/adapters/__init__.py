"""Adapters: the only deployed code that talks to Azure (Blob Storage, Batch), behind the ports."""
