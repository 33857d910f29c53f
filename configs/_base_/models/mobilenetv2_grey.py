# RepDistiller's MobileNetV2 (mobile_half) for 10 classes of grey 28x28
# images (Fashion-MNIST): the second student family of the benchmark. Its
# stride-2 stages take 28x28 to 2x2, then the global average pool.
_base_ = ['./mobilenetv2.py']
model = dict(backbone=dict(in_channels=1), head=dict(num_classes=10))
