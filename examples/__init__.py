"""The example scripts. Each runs as `python examples/<script>.py`; tests and benchmarks import them as
`examples.<script>` from the repository root."""
