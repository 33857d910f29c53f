# Stock MMRazor KD (Hinton et al.): SingleTeacherDistill +
# ConfigurableDistiller + KLDivergence at the KD benchmark's tau 4 and
# weight 0.9 on the logits (the student's cross-entropy weighs 0.1, set in
# the pair's `architecture`). Nothing of the plugin runs but the backbones
# and the dataset. A pair config inherits this with its dataset, schedule
# and runtime and spells out `architecture`, `teacher` (full model dicts:
# stock MMRazor reads `cfg_path` from installed packages only) and
# `teacher_ckpt`.
_base_ = ['../default_runtime.py']
default_scope = 'mmrazor'

model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    distiller=dict(
        type='ConfigurableDistiller',
        student_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        teacher_recorders=dict(
            logits=dict(type='ModuleOutputs', source='head.fc')),
        distill_losses=dict(
            loss_kd=dict(type='KLDivergence', tau=4, loss_weight=0.9)),
        loss_forward_mappings=dict(
            loss_kd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits')))))
