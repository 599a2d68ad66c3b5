"""The benchmarks, run from the repository root as `python -m benchmarks.<name>`: they import the example scripts
(`examples.<script>`) and their shared helpers (`benchmarks.results_files`) as modules."""
