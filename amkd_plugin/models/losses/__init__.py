# Copyright (c) amkd-mmrazor contributors.
from .triplet_metric_loss import TripletMetricLoss

__all__ = ['TripletMetricLoss']
