# AMKD on the low-data Fashion-MNIST regime (5% of the training split):
# ResNet20 teacher trained on all 60,000 images, ResNet8 student.
_base_ = [
    '../_base_/distill/amkd.py',
    '../_base_/datasets/fashion_mnist_lowdata.py',
    '../_base_/schedules/fashion_mnist_lowdata_240e.py'
]
model = dict(
    architecture=dict(
        cfg_path='configs/students/resnet8_fashion_mnist_lowdata.py'),
    teacher=dict(cfg_path='configs/teachers/resnet20_fashion_mnist.py'),
    teacher_ckpt='results/fashion_mnist/teacher/resnet20_fashion_mnist.pth')
# Standardized logits need a clipped gradient (_base_/distill/amkd.py).
optim_wrapper = dict(clip_grad=dict(max_norm=5))
