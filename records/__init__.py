"""Result tables and the one definition of every number: Arrow schemas and the row-group
writer (``records.tables``), and the metrics that ``summary.json``, reports and benchmarks all
compute through (``records.summary``). pyarrow and numpy only: this package sits below both the
simulator and the analysis."""
