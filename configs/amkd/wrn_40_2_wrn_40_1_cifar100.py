_base_ = ['./resnet56_resnet20_cifar100.py']
model = dict(
    architecture=dict(cfg_path='configs/_base_/models/wrn_40_1.py'),
    teacher=dict(cfg_path='configs/teachers/wrn_40_2_cifar100.py'),
    teacher_ckpt='work_dirs/wrn_40_2_cifar100/epoch_240.pth')
