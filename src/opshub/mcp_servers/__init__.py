"""MCP servers a tenant registers, whose tools join the crews it names."""
