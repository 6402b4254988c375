"""Benchmarks of Switchboard: a load generator of MCP clients, a single-process baseline, reports.

`make bench` (python -m bench) starts its own system on free ports, measures it, and writes
`bench/results/<name>.json` and `.md`. See bench/README.md.
"""
