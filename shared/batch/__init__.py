"""The Batch port (gateway interface) and its adapters: local ffmpeg processes and Azure Batch."""
