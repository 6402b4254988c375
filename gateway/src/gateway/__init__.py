"""Switchboard's MCP gateway: one endpoint, /ucp/v2/mcp, for AI voice agents during a live call."""
