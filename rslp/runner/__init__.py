"""The pipeline steps. Each reads and writes only the scratch directory, so any runs alone."""
