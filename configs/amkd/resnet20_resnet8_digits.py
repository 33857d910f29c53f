# AMKD on the embedded digits data: the README demo's student.
_base_ = [
    '../_base_/distill/amkd.py', '../_base_/datasets/digits.py',
    '../_base_/schedules/digits_20e.py'
]
model = dict(
    architecture=dict(
        cfg_path='configs/_base_/models/resnet8.py',
        head=dict(num_classes=10)),
    teacher=dict(cfg_path='configs/teachers/resnet20_digits.py'),
    teacher_ckpt='work_dirs/resnet20_digits/epoch_20.pth')
default_hooks = dict(logger=dict(interval=10))
# Standardized logits need a clipped gradient (_base_/distill/amkd.py).
optim_wrapper = dict(clip_grad=dict(max_norm=5))
