# The digits recipe for the 269-image low-data split: 60 epochs (300
# steps of 64, about what the 20 epochs of the full split take) with the
# decay points of digits_20e.py scaled to 60%, 80%.
_base_ = ['./cifar_kd_240e.py']
param_scheduler = dict(milestones=[36, 48])
train_cfg = dict(max_epochs=60)
