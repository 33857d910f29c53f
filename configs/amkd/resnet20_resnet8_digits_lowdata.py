# AMKD on the low-data digits proxy (20% of the training split, 60 epochs):
# the digits pair with the low-data teacher, data and recipe.
_base_ = ['./resnet20_resnet8_digits.py']
model = dict(
    teacher=dict(cfg_path='configs/teachers/resnet20_digits_lowdata.py'),
    teacher_ckpt='work_dirs/resnet20_digits_lowdata/epoch_60.pth')
train_dataloader = dict(dataset=dict(train_fraction=0.2))
param_scheduler = dict(milestones=[36, 48])
train_cfg = dict(max_epochs=60)
