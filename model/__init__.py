"""The detector: configuration, network, training and grid search, prediction, evaluation.

- ``config``: :class:`~model.config.ModelConfig`, every hyperparameter, validated and saved.
- ``run_config``: :class:`~model.run_config.RunConfig`, how a run uses the machine (hardware,
  workers, precision), apart from the model's identity.
- ``validation``: the one validator of both, reading each field's annotation.
- ``network``: backbones, the RetinaNet factory, anchors, data-dependent settings,
  checkpoints and weights files.
- ``training``: the data module, the Lightning module, the Trainer, metrics, the grid search.
- ``inference``: whole-raster prediction (windows, batches, merge) and catalogue writers.
- ``evaluate``: a predicted catalogue against the truth (matching, P/R/F1, AP).
- ``preflight``: the rasters, catalogues and planned splits checked before any tile is read.
"""
