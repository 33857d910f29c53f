# Boundary samples made online, with BSS's step (10 steps of eta 0.3) on
# the augmented batch, as BSS makes them.
_base_ = ['../../_base_/distill/raw_logits.py']
model = dict(
    boundary=dict(type='OnlineBoundary', attack={{_base_.bss_attack}}))
