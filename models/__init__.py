"""Split DNN workloads: offline pretrained models, head/tail splits, cost profiles, quality."""
