"""Fine-tuning a project's model on new labels: annotations -> labeled windows -> fit.

``annotations.py`` reads the reference's two annotation files; ``samplers.py``,
``preparers.py`` and ``splitters.py`` are the three strategies of
``finetune_strategies.yaml`` (``window_prep`` in ``olmoearth_run.yaml``); ``steps.py`` runs
prepare_windows / build_dataset / fit / evaluate, each reading and writing only
``SCRATCH/finetune/``; ``metrics.py`` and ``report.py`` score and draw the result;
``export.py`` writes the fine-tuned model as a new project version.
"""
