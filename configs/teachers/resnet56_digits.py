# ResNet56 on digits: the flagship teacher's architecture on the embedded
# data, used by tools/analysis/benchmark_step.py for a trained boundary.
_base_ = ['./resnet20_digits.py']
model = dict(backbone=dict(depth=56))
