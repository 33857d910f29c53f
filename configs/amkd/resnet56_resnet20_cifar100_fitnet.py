# AMKD + a FitNet-style feature hint (Romero et al. ICLR 2015): MMRazor's
# L2Loss between last-stage features, the student's through a 1x1 conv
# connector. Add record_idx=1 to both sides to apply it to the boundary
# samples instead.
_base_ = ['./resnet56_resnet20_cifar100.py']
model = dict(
    distiller=dict(
        student_recorders=dict(
            feat=dict(type='ModuleOutputs', source='backbone.layer3')),
        teacher_recorders=dict(
            feat=dict(type='ModuleOutputs', source='backbone.layer3')),
        connectors=dict(
            hint=dict(
                type='ConvModuleConnector', in_channel=64, out_channel=64,
                norm_cfg=dict(type='BN'))),
        distill_losses=dict(loss_fitnet=dict(type='L2Loss', loss_weight=10)),
        loss_forward_mappings=dict(
            loss_fitnet=dict(
                s_feature=dict(
                    from_student=True, recorder='feat', connector='hint'),
                t_feature=dict(from_student=False, recorder='feat')))))
