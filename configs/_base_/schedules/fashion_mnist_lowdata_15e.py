# The low-data Fashion-MNIST student recipe, sized for a 2-core CPU: 15
# epochs of SGD (lr 0.05, decayed x0.1 at 60% and 80%, as the digits
# recipes), validated every 5 epochs to spend the CPU on training.
_base_ = ['./cifar_kd_240e.py']
param_scheduler = dict(milestones=[9, 12])
train_cfg = dict(max_epochs=15, val_interval=5)
