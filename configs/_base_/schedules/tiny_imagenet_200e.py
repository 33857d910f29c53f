# Tiny ImageNet recipe: the CIFAR KD recipe scaled to the larger set
# (200 epochs, lr 0.1 for batch 128, x0.1 at epochs 60, 120 and 160).
_base_ = ['./cifar_kd_240e.py']
optim_wrapper = dict(optimizer=dict(lr=0.1))
param_scheduler = dict(milestones=[60, 120, 160])
train_cfg = dict(max_epochs=200)
auto_scale_lr = dict(base_batch_size=128)
