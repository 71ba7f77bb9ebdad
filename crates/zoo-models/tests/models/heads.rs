//! Heads and backbones as modules of their own: each built from its own `Config` and loaded
//! in one call, `load_upstream(part, file, &part.key_map().within(prefix))`, out of the full
//! model's upstream state dict, then run on the backbone's features and compared with the
//! upstream model's output (or with the whole model where the fixture has no intermediate).

use burn::prelude::*;
use zoo_models::deeplab::{
    DeepLabHeadConfig, DeepLabV3PlusConfig, DeepLabV3PlusDecoderConfig, FcnHeadConfig,
};
use zoo_models::features::FeatureInfo;
use zoo_models::resnet::{DilationRule, ResNetConfig, ResNetDepth};
use zoo_models::segmentation_head::SegmentationHeadConfig;
use zoo_models::swin::SwinTransformerConfig;
use zoo_models::unet::UnetDecoderConfig;
use zoo_models::weights::{KeyMap, load_upstream};
use zoo_nn::ops::{ResizeMode, ResizeOptions, resize};
use zoo_testing::{FWD_TOL, Fixture, assert_close, for_each_device};

use crate::segmentation::{deeplabv3_config, unet_config};
use crate::{cases, weights, with_weights};

/// `part` loaded from the case's full-model weights through `map`.
fn load<M: burn::module::Module + burn::store::ModuleSnapshot>(
    model: &str,
    case: &Fixture,
    part: M,
    map: &KeyMap,
) -> M {
    load_upstream(part, weights(model, case), map)
        .unwrap_or_else(|e| panic!("{model}/{}: {e}", case.name))
}

fn bilinear(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    resize(x, size, ResizeOptions::new(ResizeMode::Bilinear, false))
}

#[test]
fn deeplab_and_fcn_heads_load_alone_from_torchvision_state_dicts() {
    for case in cases("deeplabv3") {
        let config = deeplabv3_config(&case);
        let backbone = config.backbone();
        let [_, _, _, c4, c5] = backbone.feature_channels();
        for_each_device(|name, device| {
            let what = format!("deeplabv3/{} heads on {name}", case.name);
            let resnet = backbone.init(device);
            let map = resnet.key_map().within("backbone");
            let resnet = load("deeplabv3", &case, resnet, &map);
            let input: Tensor<4> = case.float("input", device);
            let [_, _, h, w] = input.dims();
            let f = resnet.features(input);

            let head = DeepLabHeadConfig::new(c5, config.num_classes)
                .with_channels(config.head_channels)
                .with_atrous_rates(config.atrous_rates.clone())
                .init(device);
            let map = head.key_map().within("classifier");
            let head = load("deeplabv3", &case, head, &map);
            let out = bilinear(head.forward(f.c5), [h, w]);
            assert_close(out, case.float("output", device), FWD_TOL, &what);

            if case.has("aux") {
                let aux = FcnHeadConfig::new(c4, config.num_classes).init(device);
                let map = aux.key_map().within("aux_classifier");
                let aux = load("deeplabv3", &case, aux, &map);
                let out = bilinear(aux.forward(f.c4), [h, w]);
                assert_close(out, case.float("aux", device), FWD_TOL, &what);
            }
        });
    }
}

#[test]
fn deeplabv3plus_decoder_and_segmentation_head_load_alone_from_smp_state_dicts() {
    for case in cases("deeplabv3plus") {
        let output_stride: usize = case.param("output_stride");
        let d: usize = case.param("decoder_channels");
        let encoder = DeepLabV3PlusConfig::new(case.param("num_classes"))
            .with_depth(case.param("depth"))
            .with_base_channels(case.param("base_channels"))
            .with_output_stride(output_stride)
            .encoder();
        let [_, c2, _, _, c5] = encoder.feature_channels();
        for_each_device(|name, device| {
            let what = format!("deeplabv3plus/{} decoder and head on {name}", case.name);
            let resnet = encoder.init(device);
            let map = resnet.key_map().within("encoder");
            let resnet = load("deeplabv3plus", &case, resnet, &map);
            let decoder = DeepLabV3PlusDecoderConfig::new(c2, c5)
                .with_out_channels(d)
                .with_output_stride(output_stride)
                .init(device);
            let map = decoder.key_map().within("decoder");
            let decoder = load("deeplabv3plus", &case, decoder, &map);
            let head = SegmentationHeadConfig::new(d, case.param("num_classes"))
                .with_kernel_size(1)
                .with_upsampling(4)
                .init(device);
            let map = head.key_map().within("segmentation_head");
            let head = load("deeplabv3plus", &case, head, &map);
            let f = resnet.features(case.float("input", device));
            let out = head.forward(decoder.forward(f.c2, f.c5));
            assert_close(out, case.float("output", device), FWD_TOL, &what);
        });
    }
}

#[test]
fn unet_decoder_and_segmentation_head_load_alone_from_smp_state_dicts() {
    for case in cases("unet") {
        let config = unet_config(&case);
        let encoder = ResNetConfig::new(config.depth).with_base_channels(config.base_channels);
        let mut channels = vec![config.in_channels];
        channels.extend(encoder.feature_channels());
        for_each_device(|name, device| {
            let what = format!("unet/{} decoder and head on {name}", case.name);
            let resnet = encoder.init(device);
            let map = resnet.key_map().within("encoder");
            let resnet = load("unet", &case, resnet, &map);
            let decoder = UnetDecoderConfig::new(channels.clone())
                .with_decoder_channels(config.decoder_channels.clone())
                .init(device);
            let map = decoder.key_map().within("decoder");
            let decoder = load("unet", &case, decoder, &map);
            let last = *config.decoder_channels.last().unwrap();
            let head = SegmentationHeadConfig::new(last, config.num_classes).init(device);
            let map = head.key_map().within("segmentation_head");
            let head = load("unet", &case, head, &map);
            let input: Tensor<4> = case.float("input", device);
            let mut features = vec![input.clone()];
            features.extend(resnet.features(input).into_vec());
            let out = head.forward(decoder.forward(features));
            assert_close(out, case.float("output", device), FWD_TOL, &what);
        });
    }
}

#[test]
fn mask_rcnn_rpn_and_roi_heads_load_alone_from_torchvision_state_dicts() {
    let case = crate::mask_rcnn::case("small");
    let config = crate::mask_rcnn::config(&case);
    let device = Device::flex();
    let model = config.init(&device);
    let map = model.key_map();
    let model = with_weights("mask_rcnn", &case, model, &map);
    // Fresh (differently drawn) heads, loaded alone.
    let fresh = config.init(&device);
    let map = fresh.rpn.head.key_map().within("rpn.head");
    let rpn_head = load("mask_rcnn", &case, fresh.rpn.head, &map);
    let map = fresh.roi_heads.key_map().within("roi_heads");
    let roi_heads = load("mask_rcnn", &case, fresh.roi_heads, &map);

    let fpn: usize = case.param("fpn_channels");
    let features: Vec<Tensor<4>> = [8, 4]
        .iter()
        .map(|&s| Tensor::random([1, fpn, s, s], burn::tensor::Distribution::Default, &device))
        .collect();
    let (got, want) = (
        rpn_head.forward(&features),
        model.rpn.head.forward(&features),
    );
    for (g, w) in got.objectness.into_iter().zip(want.objectness) {
        assert_close(g, w, 0.0, "rpn objectness");
    }
    for (g, w) in got.deltas.into_iter().zip(want.deltas) {
        assert_close(g, w, 0.0, "rpn deltas");
    }
    let rois = Tensor::random(
        [3, fpn, 14, 14],
        burn::tensor::Distribution::Default,
        &device,
    );
    assert_close(
        roi_heads.mask_head.forward(rois.clone()),
        model.roi_heads.mask_head.forward(rois),
        0.0,
        "mask head",
    );
    let boxes = Tensor::random([3, fpn, 7, 7], burn::tensor::Distribution::Default, &device);
    let (got, want) = (
        roi_heads
            .box_predictor
            .forward(roi_heads.box_head.forward(boxes.clone())),
        model
            .roi_heads
            .box_predictor
            .forward(model.roi_heads.box_head.forward(boxes)),
    );
    assert_close(got.0, want.0, 0.0, "box logits");
    assert_close(got.1, want.1, 0.0, "box deltas");
}

/// `feature_info` names the channels and reduction of every map the backbone returns.
#[test]
fn backbone_feature_info_matches_the_features() {
    let device = Device::flex();
    let input = Tensor::<4>::zeros([1, 3, 64, 96], &device);
    let check = |info: Vec<FeatureInfo>, maps: Vec<Tensor<4>>, what: &str| {
        assert_eq!(info.len(), maps.len(), "{what}");
        for (i, m) in info.iter().zip(maps) {
            let [_, c, h, w] = m.dims();
            assert_eq!(
                [c, h, w],
                [
                    i.channels,
                    64usize.div_ceil(i.reduction),
                    96usize.div_ceil(i.reduction)
                ],
                "{what}: {}",
                i.module
            );
        }
    };
    for config in [
        ResNetConfig::new(ResNetDepth::R18).with_base_channels(4),
        ResNetConfig::new(ResNetDepth::R50)
            .with_base_channels(2)
            .with_replace_stride_with_dilation([false, true, true]),
        ResNetConfig::new(ResNetDepth::R18)
            .with_base_channels(2)
            .with_replace_stride_with_dilation([false, false, true])
            .with_dilation_rule(DilationRule::Uniform),
    ] {
        let info = config.feature_info();
        let maps = config.init(&device).features(input.clone()).into_vec();
        check(info, maps, "resnet");
    }
    let r50 = ResNetConfig::new(ResNetDepth::R50).feature_info();
    assert_eq!(
        r50.iter()
            .map(|i| (i.module.as_str(), i.channels, i.reduction))
            .collect::<Vec<_>>(),
        [
            ("relu", 64, 2),
            ("layer1", 256, 4),
            ("layer2", 512, 8),
            ("layer3", 1024, 16),
            ("layer4", 2048, 32)
        ]
    );
    let swin = SwinTransformerConfig::new()
        .with_embed_dim(8)
        .with_depths(vec![1, 1, 1, 1])
        .with_num_heads(vec![1, 1, 2, 2])
        .with_window_size(4)
        .with_img_size([64, 64]);
    let info = swin.feature_info();
    let maps = swin.init(&device).stage_features(input);
    check(info, maps, "swin");
}
