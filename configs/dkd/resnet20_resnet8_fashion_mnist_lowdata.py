# Stock MMRazor DKD (DKDLoss, Zhao et al. CVPR 2022) on the low-data
# Fashion-MNIST regime, at DKD's CIFAR settings (tau 4, alpha 1, beta 8)
# in place of KD's KL term.
_base_ = ['../kd/resnet20_resnet8_fashion_mnist_lowdata.py']
model = dict(
    distiller=dict(
        # DKD needs the labels: read them where the student's loss gets them.
        student_recorders=dict(
            gt_labels=dict(type='ModuleInputs', source='head.loss_module')),
        distill_losses=dict(
            _delete_=True,
            loss_dkd=dict(
                type='DKDLoss', tau=4, alpha=1, beta=8, reduction='batchmean',
                loss_weight=1)),
        loss_forward_mappings=dict(
            _delete_=True,
            loss_dkd=dict(
                preds_S=dict(from_student=True, recorder='logits'),
                preds_T=dict(from_student=False, recorder='logits'),
                gt_labels=dict(
                    from_student=True, recorder='gt_labels', data_idx=1)))))
