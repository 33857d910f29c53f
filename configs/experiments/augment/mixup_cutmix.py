# The batch augments of function-matching KD (configs/kd/*_fm.py) on an
# AMKD pair: the clean pass of teacher and student is on the mixed batch,
# the student's cross-entropy on the mixed labels; boundary samples stay
# those of the training images (the images both models get right, by the
# image's own label).
_base_ = ['../../_base_/augments/mixup_cutmix.py']
data_preprocessor = dict(batch_augments={{_base_.batch_augments}})
model = dict(architecture=dict(head=dict(loss=dict(use_soft=True))))
