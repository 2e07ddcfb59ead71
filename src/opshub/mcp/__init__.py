"""The hub as a Model Context Protocol server at ``/mcp``: the REST API's services as MCP tools."""
