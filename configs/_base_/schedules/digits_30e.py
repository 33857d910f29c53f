# A short recipe for the embedded digits data (1,347 training images), so
# the demo trains in CPU minutes: the KD recipe compressed to 30 epochs.
_base_ = ['./cifar_kd_240e.py']
param_scheduler = dict(milestones=[18, 24])
train_cfg = dict(max_epochs=30)
