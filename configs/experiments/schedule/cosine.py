# The patient schedule of the Fashion-MNIST benchmark: lr 0.05 annealed to
# 0 along a cosine over the whole run, whatever its length, so that one
# `train_cfg.max_epochs=E` gives the schedule of E epochs (the convergence
# curve of docs/results.md measures E). MMEngine ends a scheduler without
# `end` at max_epochs; per iteration, not in epoch-long steps. Validation
# only after the last epoch: the tables test the last checkpoint.
param_scheduler = dict(
    _delete_=True,
    type='CosineAnnealingLR',
    by_epoch=True,
    convert_to_iter_based=True,
    eta_min=0)
train_cfg = dict(val_interval=100000)
