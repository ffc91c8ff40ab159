"""Read results, compute metrics, draw plots and write reports."""
