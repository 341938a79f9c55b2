"""The Batch adapters behind the Batch port (shared/ports/batch.py): local ffmpeg processes and Azure Batch."""
