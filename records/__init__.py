"""Result tables and the one definition of every number: Arrow schemas and the row-group
writer (``records.tables``), the metric functions that ``summary.json``, reports and benchmarks
all compute through (``records.metrics``, reading columns with ``records.columns``), and
``summary.json`` itself (``records.summary``). pyarrow and numpy only: this package sits below
both the simulator and the analysis."""
