"""``slicer plan``: choose the split per device group, the codec setting and the replica count
that meet a latency SLO at the least of an objective, from a real-compute calibration and
replayed simulations (``fleet.plan.space``: what is searched; ``fleet.plan.bounds``: what is
known without simulating; ``fleet.plan.search``: the search; ``fleet.plan.output``: the Pareto
set, the recommendation and the files written)."""
