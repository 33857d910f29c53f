# KD on the raw logits, as the KD benchmark and BSS have it (temperature 4,
# KD weight 0.9, no gradient clipping), instead of the AMKD default's
# standardized logits. The KD and BSS baselines and the rows of
# docs/results.md measured without logit standardization
# (experiments/logits/no_ls.py) merge `raw_kd` (BSS: `bss_kd`) into
# model.distiller and `unclipped` into optim_wrapper.
_kd = dict(type='KLDivergence', tau=4, loss_weight=0.9)
raw_kd = dict(
    connectors=dict(_delete_=True),
    distill_losses=dict(loss_kd=_kd, loss_boundary_kd=_kd),
    loss_forward_mappings=dict(
        loss_kd=dict(
            _delete_=True,
            preds_S=dict(from_student=True, recorder='logits'),
            preds_T=dict(from_student=False, recorder='logits')),
        loss_boundary_kd=dict(
            _delete_=True,
            preds_S=dict(from_student=True, recorder='logits', record_idx=1),
            preds_T=dict(from_student=False, recorder='logits',
                         record_idx=1))))
unclipped = dict(clip_grad=None)
# BSS (Heo et al., AAAI 2019): raw KD on the clean and the boundary
# samples, no metric term; its boundary samples made online with its step
# (10 steps of eta 0.3) on the augmented batch: merge `bss_attack` into
# model.boundary.attack of an OnlineBoundary.
bss_kd = dict(
    raw_kd,
    distill_losses=dict(
        loss_kd=_kd, loss_boundary_kd=_kd,
        loss_triplet=dict(loss_weight=0.)))
bss_attack = dict(
    _delete_=True,
    type='BoundaryAttack',
    max_steps=10,
    step_size=0.3,
    max_ratio=0.25)
