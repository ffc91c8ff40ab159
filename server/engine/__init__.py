"""The real-compute engine both sides' actors host: jobs, results and the oracle protocol
(``jobs``), the in-process oracle that runs heads, the codec and tails (``local``) and whole
generated sequences (``local_gen``, ``generate``), and the server-worker actor (``workers``)."""
