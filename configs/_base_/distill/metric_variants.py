# The forms of AMKD's metric term compared in docs/results.md, as pieces a
# pair config merges into its `model.distiller` (docs/method.md). Each
# replaces the default triplet term: Euclidean distance on L2-normalised
# logits, the hardest clean image of another class as negative, margin
# 0.5, boundary samples only.
# The pooled features (the neck's output) as the embedding. Student and
# teacher widths agree on digits; where they differ, add a connector
# (e.g. dict(type='TorchNNConnector', module_name='Linear',
# module_args=dict(in_features=CS, out_features=CT))) on the anchor.
features = dict(
    student_recorders=dict(
        features=dict(type='ModuleOutputs', source='neck')),
    teacher_recorders=dict(
        features=dict(type='ModuleOutputs', source='neck')),
    loss_forward_mappings=dict(
        loss_triplet=dict(
            anchor=dict(recorder='features', data_idx=0),
            positive=dict(recorder='features', data_idx=0),
            negatives=dict(recorder='features', data_idx=0))))

# Features and logits: a second triplet term on the features, the same
# weight as the one on the logits.
features_and_logits = dict(
    student_recorders=features['student_recorders'],
    teacher_recorders=features['teacher_recorders'],
    distill_losses=dict(
        loss_triplet_features=dict(
            type='TripletMetricLoss', margin=0.5, loss_weight=0.25)),
    loss_forward_mappings=dict(
        loss_triplet_features=dict(
            anchor=dict(from_student=True, recorder='features',
                        record_idx=1, data_idx=0),
            positive=dict(from_student=False, recorder='features',
                          record_idx=1, data_idx=0),
            negatives=dict(from_student=False, recorder='features',
                           data_idx=0))))

# Negatives: the teacher's boundary samples of other (b, k) pairs.
boundary_negatives = dict(
    distill_losses=dict(loss_triplet=dict(negatives_from='boundary')),
    loss_forward_mappings=dict(
        loss_triplet=dict(negatives=dict(record_idx=1))))

# Negatives: the teacher's class centroids in the batch.
centroid_negatives = dict(
    distill_losses=dict(loss_triplet=dict(negatives_from='centroids')))

# The margin relative to the teacher's own gap d(p_i, n_i).
relative_margin = dict(
    distill_losses=dict(loss_triplet=dict(relative_margin=True, margin=1.)))
relative_margin_raw = dict(
    distill_losses=dict(
        loss_triplet=dict(relative_margin=True, margin=1., normalize=False)))

# Also on the clean images (Oki et al., IJCNN 2020): a second triplet
# term, negatives of any other class.
also_clean = dict(
    distill_losses=dict(
        loss_triplet_clean=dict(
            type='TripletMetricLoss',
            margin=0.5,
            apply_to='clean',
            loss_weight=0.25)),
    loss_forward_mappings=dict(
        loss_triplet_clean=dict(
            anchor=dict(from_student=True, recorder='logits'),
            positive=dict(from_student=False, recorder='logits'),
            negatives=dict(from_student=False, recorder='logits'))))

# No metric term: the default's boundary samples with boundary KD alone,
# what BSS's losses make of them; the baseline each form above must beat.
no_triplet = dict(distill_losses=dict(loss_triplet=dict(loss_weight=0.)))
