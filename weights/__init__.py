"""The shipped models, their cards and licences: package data of `sanitary.weights` (see pyproject.toml)."""
