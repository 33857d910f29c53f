# AMKD on the low-data Fashion-MNIST regime with the second student
# family: the ResNet20 teacher, a MobileNetV2 student.
_base_ = ['./resnet20_resnet8_fashion_mnist_lowdata.py']
model = dict(
    architecture=dict(
        cfg_path='configs/students/mobilenetv2_fashion_mnist_lowdata.py'))
# MobileNetV2 students train at lr 0.01, as the KD benchmark's.
optim_wrapper = dict(optimizer=dict(lr=0.01))
