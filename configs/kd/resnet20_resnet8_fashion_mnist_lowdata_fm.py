# Function-matching KD (Beyer et al., "Knowledge distillation: a good
# teacher is patient and consistent", CVPR 2022): stock MMRazor KD where
# teacher and student see the same mixed image. The distill algorithm
# preprocesses a batch once and feeds both models, so MMPretrain's own
# batch augments in the data preprocessor (Mixup or CutMix) give the
# teacher's logits on the very image the student sees. The student's
# cross-entropy takes the mixed labels with MMPretrain's soft CE.
_base_ = [
    './resnet20_resnet8_fashion_mnist_lowdata.py',
    '../_base_/augments/mixup_cutmix.py'
]
data_preprocessor = dict(batch_augments={{_base_.batch_augments}})
model = dict(architecture=dict(head=dict(loss=dict(use_soft=True))))
