"""ModelConfig, the RetinaNet factory, Lightning modules, grid search, prediction, evaluation."""
