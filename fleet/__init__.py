"""The fleet simulation: the device side and the event loop (``sim``, ``sim_generate``,
``arrivals``, ``costs``), networks (``fleet.network``), where real compute runs
(``fleet.compute``) and running scenarios (``fleet.run``). Importing it loads no torch."""
