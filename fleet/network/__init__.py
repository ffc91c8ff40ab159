"""Networks of the simulation: bandwidth traces, their file formats, synthetic presets and the
spec-to-trace mapping (``traces``, ``trace_files``, ``trace_synthetic``, ``trace_source``),
one-device and shared-cell links (``links``), their outage processes (``outages``), and the
links of a whole fleet (``fleet_links``)."""
