"""Local 🤗 evaluate metric scripts (`evaluate.load(modeling_ashnets.metrics.metric_path(name))`)."""
