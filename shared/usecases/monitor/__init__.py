"""The monitor: one tick (tick.py) and the steps it calls (pool health, clean-up, URL renewal; reporting.py)."""
