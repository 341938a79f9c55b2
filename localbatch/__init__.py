"""The local Batch gateway: Batch's task model run as ffmpeg processes on this machine (never deployed to Azure)."""
