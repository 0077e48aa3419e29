"""One module per exercise (`<id>` with '-' as '_'): its SCALES and `run(ctx)`; see pipeline/runner.py."""
