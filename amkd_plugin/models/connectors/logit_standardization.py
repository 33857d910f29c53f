# Copyright (c) amkd-mmrazor contributors.
from typing import Dict, Optional

import torch
from mmrazor.models.architectures.connectors.base_connector import \
    BaseConnector
from mmrazor.registry import MODELS


@MODELS.register_module()
class LogitStandardization(BaseConnector):
    """Z-score each sample's logits: logit standardization (Sun et al.,
    "Logit Standardization in Knowledge Distillation", CVPR 2024)::

        z' = (z - mean_c z) / (std_c z + eps)

    over the classes ``c`` of each row (``std`` with Bessel's correction,
    as the paper's code). A temperature-softmax loss then compares the
    shapes of the teacher's and the student's logits, not their scales,
    which a small student cannot match. It has no parameters; put it on
    both sides of any logit loss through the distiller's ``connectors``::

        connectors=dict(ls=dict(type='LogitStandardization')),
        loss_forward_mappings=dict(loss_kd=dict(
            preds_S=dict(from_student=True, recorder='logits',
                         connector='ls'),
            preds_T=dict(from_student=False, recorder='logits',
                         connector='ls')))

    Args:
        eps (float): Added to the standard deviation. Defaults to 1e-7
            (the paper's code).
        init_cfg (dict, optional): Initialization config. Defaults to None.
    """

    def __init__(self, eps: float = 1e-7,
                 init_cfg: Optional[Dict] = None) -> None:
        super().__init__(init_cfg)
        self.eps = eps

    def forward_train(self, feature: torch.Tensor) -> torch.Tensor:
        """Standardize logits of shape (N, C) along the classes.

        Args:
            feature (torch.Tensor): Logits, shape (N, C).

        Returns:
            torch.Tensor: The standardized logits, same shape.
        """
        mean = feature.mean(dim=1, keepdim=True)
        std = feature.std(dim=1, keepdim=True)
        return (feature - mean) / (std + self.eps)
