# Stock MMRazor KD (Hinton et al.), ResNet56 -> ResNet20 on CIFAR-100:
# SingleTeacherDistill + ConfigurableDistiller + KLDivergence at the KD
# benchmark's tau 4 and weight 0.9, the student's cross-entropy at 0.1.
# Nothing of the plugin runs but the backbones and the dataset; the
# networks are spelled out since stock MMRazor reads `cfg_path` from
# installed packages only.
_base_ = [
    '../_base_/datasets/cifar100.py', '../_base_/schedules/cifar_kd_240e.py',
    '../_base_/default_runtime.py'
]
default_scope = 'mmrazor'


def _cifar_resnet(depth, loss_weight=1.0):
    return dict(
        type='ImageClassifier',
        _scope_='mmpretrain',  # its parts build in MMPretrain's scope
        backbone=dict(type='CIFARResNet', depth=depth),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=100,
            in_channels=64,
            loss=dict(type='CrossEntropyLoss', loss_weight=loss_weight)))


model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    # configs/_base_/models/resnet20.py's network.
    architecture=_cifar_resnet(20, loss_weight=0.1),
    # configs/teachers/resnet56_cifar100.py's network.
    teacher=_cifar_resnet(56),
    teacher_ckpt='work_dirs/resnet56_cifar100/epoch_240.pth',
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
