"""Closed forms of classic queues, to check the simulator against theory.

``mm1_wait_s``, ``mmc_wait_s`` (Erlang C) and ``md1_wait_s`` (Pollaczek-Khinchine) give the
mean time a request waits in the queue before service, for Poisson arrivals at ``rate_per_s``
and mean service time ``service_s``; ``ps_sojourn_s`` the time of ``jobs`` equal transfers that
share one link from the same instant.
"""

from __future__ import annotations


def _load(rate_per_s: float, service_s: float, servers: int) -> float:
    rho = rate_per_s * service_s / servers
    if not 0 <= rho < 1:
        raise ValueError(f"the queue is unstable: utilisation {rho:.3f} must be < 1")
    return rho


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with ``offered`` = rate x service time."""
    term = 1.0
    total = 1.0
    for k in range(1, servers):
        term *= offered / k
        total += term
    last = term * offered / servers / (1 - offered / servers)
    return last / (total + last)


def mm1_wait_s(rate_per_s: float, service_s: float) -> float:
    rho = _load(rate_per_s, service_s, 1)
    return rho * service_s / (1 - rho)


def mmc_wait_s(rate_per_s: float, service_s: float, servers: int) -> float:
    _load(rate_per_s, service_s, servers)
    offered = rate_per_s * service_s
    return erlang_c(servers, offered) * service_s / (servers - offered)


def md1_wait_s(rate_per_s: float, service_s: float) -> float:
    rho = _load(rate_per_s, service_s, 1)
    return rho * service_s / (2 * (1 - rho))


def ps_sojourn_s(jobs: int, nbytes: float, bandwidth_bps: float) -> float:
    return jobs * nbytes * 8 / bandwidth_bps
