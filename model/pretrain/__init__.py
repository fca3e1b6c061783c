"""Self-supervised pretraining of the detector's backbone on the user's own (unlabelled) tiles."""

from model.pretrain.loop import pretrain_backbone, save_backbone
from model.pretrain.simsiam import SimSiam, view_transform

__all__ = ["SimSiam", "pretrain_backbone", "save_backbone", "view_transform"]
