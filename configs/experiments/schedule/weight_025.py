# The boundary losses at a quarter of their weight (the schedule's peak).
custom_hooks = [
    dict(type='AdversarialBoundaryHook', schedule='linear', end=0.75,
         scale=0.25),
    dict(type='BoundaryBankHook')
]
