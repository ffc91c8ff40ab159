"""Running scenarios: the deep check of a scenario (``check``), one point (``point``), sweeps
(``runner``), calibrate-then-replay (``calibration``), the run directory (``rundir``) and the
progress bar (``progress``)."""
