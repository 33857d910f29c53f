# AMKD on the low-data Fashion-MNIST regime with the second teacher
# family: a WRN-16-2 teacher trained on all 60,000 images, the ResNet8
# student.
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata.py']
model = dict(
    teacher=dict(cfg_path='configs/teachers/wrn_16_2_fashion_mnist.py'),
    teacher_ckpt='work_dirs/wrn_16_2_fashion_mnist/epoch_6.pth')
