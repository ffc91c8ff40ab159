"""Networks of the simulation: bandwidth traces and their file formats (``traces``,
``trace_files``, ``trace_synthetic``), one-device and shared-cell links (``links``), and the
links of a whole fleet (``fleet_links``)."""
