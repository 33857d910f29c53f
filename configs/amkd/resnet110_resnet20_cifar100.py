_base_ = ['./resnet56_resnet20_cifar100.py']
model = dict(
    architecture=dict(cfg_path='configs/_base_/models/resnet20.py'),
    teacher=dict(cfg_path='configs/teachers/resnet110_cifar100.py'),
    teacher_ckpt='work_dirs/resnet110_cifar100/epoch_240.pth')
