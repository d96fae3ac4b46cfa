"""Ready-made strategies shared by projects: partitioners and postprocessors."""
