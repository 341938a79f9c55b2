"""In-memory fakes of the Storage and Batch ports for the fast tier; contract suites hold them to the adapters."""
