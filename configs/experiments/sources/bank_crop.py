# The banked boundary image with the clean image's random crop (the digits
# recipe: RandomCrop 32, padding 4), which moves it off the teacher's
# boundary; the teacher's banked logits no longer hold for it, so they are
# not packed. For the digits pairs only.
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='mmpretrain.LoadBoundaryBank', decode=True),
        dict(
            # mmcv's, found via MMEngine's root registry from any scope.
            type='TransformBroadcaster',
            mapping={'img': ['img', 'boundary_img']},
            auto_remap=True,
            share_random_params=True,
            transforms=[
                dict(type='mmpretrain.RandomCrop', crop_size=32, padding=4),
            ]),
        dict(
            type='mmpretrain.PackInputs',
            algorithm_keys=[
                'boundary_img', 'boundary_target', 'boundary_correct',
                'boundary_reached'
            ]),
    ]))
