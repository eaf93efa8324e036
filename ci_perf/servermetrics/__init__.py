"""Server-side metrics through Prometheus (``server_metrics:``): the edge that asks Prometheus.

``prometheus`` is the HTTP client (``/api/v1/query``, ``/api/v1/query_range``) with its faults in
words; ``evaluate`` checks the expressions before the load and measures each one over the run's
measured window afterwards (run-level value + per-step series) into ``results.ServerMetric``.
"""

from __future__ import annotations

from ci_perf.servermetrics.evaluate import check_queries, measure_server, with_server_metrics

__all__ = ["check_queries", "measure_server", "with_server_metrics"]
