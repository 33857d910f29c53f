# The boundary losses at full weight to the end of training, not faded out
# linearly to 0 at 75% of it (BSS's schedule, the default): on a long
# schedule the default's last quarter is plain KD, which may undo what the
# boundary samples taught.
custom_hooks = [
    dict(type='AdversarialBoundaryHook', schedule='constant'),
    dict(type='BoundaryBankHook')
]
