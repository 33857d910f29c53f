# A short recipe for the embedded digits data (1,347 training images), so
# the demo trains in CPU minutes: the KD recipe compressed to 20 epochs.
_base_ = ['./cifar_kd_240e.py']
param_scheduler = dict(milestones=[12, 16])
train_cfg = dict(max_epochs=20)
