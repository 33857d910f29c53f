# BSS (Heo et al., AAAI 2019) on the low-data Fashion-MNIST regime: the
# online attack with BSS's step on the augmented batch, KD on the raw
# logits (tau 4, weight 0.9) on clean and boundary samples, no triplet
# term, no gradient clipping.
_base_ = [
    '../amkd/resnet20_resnet8_fashion_mnist_lowdata_no_triplet.py',
    '../_base_/distill/raw_logits.py',
]
model = dict(bank=None, distiller={{_base_.raw_kd}})
train_dataloader = dict(dataset=dict(
    dataset=dict(pipeline={{_base_.train_pipeline}})))
optim_wrapper = {{_base_.unclipped}}
