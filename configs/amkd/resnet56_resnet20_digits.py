# AMKD on the embedded digits data (the README demo's student).
_base_ = [
    '../_base_/distill/amkd.py', '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_30e.py'
]
model = dict(
    architecture=dict(
        cfg_path='configs/_base_/models/resnet20.py',
        head=dict(num_classes=10)),
    teacher=dict(cfg_path='configs/teachers/resnet56_digits.py'),
    teacher_ckpt='work_dirs/resnet56_digits/epoch_30.pth')
default_hooks = dict(logger=dict(interval=10))
