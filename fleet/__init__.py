"""The fleet simulation: devices, networks, the event loop, oracles, the runner and the CLI."""
