"""Agents: the factory that binds a crew's YAML definitions to a tenant's model and tools."""
