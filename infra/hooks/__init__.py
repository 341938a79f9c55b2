"""azd hooks on azure-identity and azure-mgmt-*: the Batch pool (postprovision), the trigger subscription."""
