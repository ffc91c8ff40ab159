"""The fleet simulation: the event loop and the device side (``sim``, ``rows``, ``arrivals``),
the two kinds of request (``infer``, ``sequences`` with ``steps``), the shapes they share
(``core``, ``host``), networks (``fleet.network``), where real compute runs
(``fleet.compute``) and running scenarios (``fleet.run``). Importing it loads no torch."""
