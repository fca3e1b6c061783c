"""Box-aware image transforms and data-set level augmentation."""
