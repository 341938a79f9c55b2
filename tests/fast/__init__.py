"""The fast tier: use-case tests on the in-memory fakes (`make check`); contract suites hold the fakes to Azure."""
