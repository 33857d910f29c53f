_base_ = [
    '../_base_/distill/amkd.py', '../_base_/datasets/tiny_imagenet.py',
    '../_base_/schedules/tiny_imagenet_200e.py'
]
model = dict(
    architecture=dict(
        cfg_path='configs/_base_/models/resnet20.py',
        head=dict(num_classes=200)),
    teacher=dict(cfg_path='configs/teachers/resnet56_tiny_imagenet.py'),
    teacher_ckpt='work_dirs/resnet56_tiny_imagenet/epoch_200.pth')
# Standardized logits need a clipped gradient (_base_/distill/amkd.py).
optim_wrapper = dict(clip_grad=dict(max_norm=5))
