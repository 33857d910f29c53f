# The benchmark trains MobileNetV2 and ShuffleNet students with lr 0.01
# (RepDistiller's train_student.py), not 0.05.
_base_ = ['./resnet56_resnet20_cifar100.py']
model = dict(
    architecture=dict(cfg_path='configs/_base_/models/shufflenetv1.py'),
    teacher=dict(cfg_path='configs/teachers/wrn_40_2_cifar100.py'),
    teacher_ckpt='work_dirs/wrn_40_2_cifar100/epoch_240.pth')
optim_wrapper = dict(optimizer=dict(lr=0.01))
