_base_ = ['./resnet56_resnet20_cifar100.py']
model = dict(
    architecture=dict(cfg_path='configs/_base_/models/resnet8x4.py'),
    teacher=dict(cfg_path='configs/teachers/resnet32x4_cifar100.py'),
    teacher_ckpt='work_dirs/resnet32x4_cifar100/epoch_240.pth')
