_base_ = ['./resnet56_resnet20_cifar100.py']
model = dict(
    architecture=dict(cfg_path='configs/_base_/models/vgg8.py'),
    teacher=dict(cfg_path='configs/teachers/vgg13_cifar100.py'),
    teacher_ckpt='work_dirs/vgg13_cifar100/epoch_240.pth')
