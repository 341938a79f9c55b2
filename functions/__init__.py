"""Thin Azure Functions entry points: each translates one trigger into one call into shared/."""
