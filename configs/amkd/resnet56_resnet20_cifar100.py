# AMKD, ResNet56 -> ResNet20 on CIFAR-100: the flagship pair.
# Train the teacher first (or use a released one, README):
#   python tools/train.py configs/teachers/resnet56_cifar100.py
_base_ = [
    '../_base_/distill/amkd.py', '../_base_/datasets/cifar100.py',
    '../_base_/schedules/cifar_kd_240e.py'
]
model = dict(
    architecture=dict(cfg_path='configs/_base_/models/resnet20.py'),
    teacher=dict(cfg_path='configs/teachers/resnet56_cifar100.py'),
    teacher_ckpt='work_dirs/resnet56_cifar100/epoch_240.pth')
# Standardized logits need a clipped gradient (_base_/distill/amkd.py).
optim_wrapper = dict(clip_grad=dict(max_norm=5))
