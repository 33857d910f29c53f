# The CIFAR-100 recipe of the KD benchmark (RepDistiller, CRD, DKD):
# 240 epochs of SGD, lr 0.05 decayed x0.1 at epochs 150, 180 and 210.
# The batch size of 64 lives in the dataset configs.
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=5e-4))
param_scheduler = dict(
    type='MultiStepLR', by_epoch=True, milestones=[150, 180, 210], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=240, val_interval=1)
val_cfg = dict()
test_cfg = dict()
# Lets `--auto-scale-lr` rescale lr for other total batch sizes.
auto_scale_lr = dict(base_batch_size=64)
