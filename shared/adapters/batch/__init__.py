"""The Azure Batch adapter behind the Batch port (shared/ports/batch.py); the local one is localbatch/."""
