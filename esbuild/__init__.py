"""esbuild: validate, lock, build and publish model images for esrunner projects."""
