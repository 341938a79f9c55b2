"""Use-cases: submit one blob version, a monitor tick, reconcile, status; each reaches the outside through ports."""
