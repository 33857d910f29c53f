_base_ = [
    '../_base_/distill/amkd.py', '../_base_/datasets/cifar10.py',
    '../_base_/schedules/cifar_kd_240e.py'
]
model = dict(
    architecture=dict(
        cfg_path='configs/_base_/models/resnet20.py',
        head=dict(num_classes=10)),
    teacher=dict(cfg_path='configs/teachers/resnet56_cifar10.py'),
    teacher_ckpt='work_dirs/resnet56_cifar10/epoch_240.pth')
# Standardized logits need a clipped gradient (_base_/distill/amkd.py).
optim_wrapper = dict(clip_grad=dict(max_norm=5))
