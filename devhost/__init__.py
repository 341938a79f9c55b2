"""The local stand-in for the Azure Functions host: Azurite, blob-trigger receipts, NCRONTAB timers, the main job."""
