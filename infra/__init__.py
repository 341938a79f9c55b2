"""Infrastructure: the Bicep template (infra/*.bicep) and the azd hooks (infra/hooks)."""
