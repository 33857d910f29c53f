# A bank made with BSS's step (BoundaryAttack's defaults: 10 steps of eta
# 0.3) instead of the first-order step.
model = dict(
    boundary=dict(
        attack=dict(_delete_=True, type='BoundaryAttack', max_ratio=0.25)))
