//! `Aspp` loaded from torchvision's `ASPP` state_dict and from smp's separable `ASPP` (eval
//! mode), forward and gradients with respect to the input and every parameter.

use burn::module::Param;
use zoo_nn::layers::{Aspp, AsppConfig, ConvNormActConfig};
use zoo_testing::{Inputs, check_case};

use crate::cases;
use crate::load::{block, differentiable};

fn load(aspp: Aspp, x: &Inputs) -> Aspp {
    let last = aspp.convs.len();
    let convs = aspp
        .convs
        .into_iter()
        .enumerate()
        .map(|(i, b)| block(b, x, &format!("convs.{i}.0"), &format!("convs.{i}.1")))
        .collect();
    Aspp {
        convs,
        pooling: block(
            aspp.pooling,
            x,
            &format!("convs.{last}.1"),
            &format!("convs.{last}.2"),
        ),
        project: block(aspp.project, x, "project.0", "project.1"),
        // Eval mode, as the reference: dropout off even on autodiff devices.
        dropout: burn::nn::Dropout {
            training: Param::from_bool(false),
            ..aspp.dropout
        },
    }
}

#[test]
fn aspp_matches_torchvision_and_smp() {
    for case in cases("aspp") {
        let config = AsppConfig::new(case.param("in_channels"))
            .with_out_channels(case.param("out_channels"))
            .with_atrous_rates(case.param("atrous_rates"))
            .with_separable(case.param_opt("separable").unwrap_or(false));
        let params = differentiable(&case);
        let wrt: Vec<&str> = params.iter().map(String::as_str).collect();
        check_case("aspp", &case, &wrt, |x| {
            let aspp = load(config.init(&x.device), x);
            aspp.forward(x.float("input"))
        });
    }
}

#[test]
fn aspp_config_round_trips_and_rejects_bad_fields() {
    let config = AsppConfig::new(16).with_atrous_rates(vec![2, 4]);
    let json = serde_json::to_string(&config).unwrap();
    let back: AsppConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back.atrous_rates, vec![2, 4]);
    assert_eq!(back.out_channels, 256);
    let device = burn::prelude::Device::flex();
    zoo_testing::assert_panics_with(
        || {
            drop(
                AsppConfig::new(16)
                    .with_atrous_rates(vec![2, 0])
                    .init(&device),
            )
        },
        &["AsppConfig", "atrous_rates", "[2, 0]"],
    );
    zoo_testing::assert_panics_with(
        || drop(AsppConfig::new(0).init(&device)),
        &["AsppConfig", "in_channels", "positive"],
    );
    let separable = ConvNormActConfig::new(4, 8).with_separable(true);
    let back: ConvNormActConfig =
        serde_json::from_str(&serde_json::to_string(&separable).unwrap()).unwrap();
    assert!(back.separable);
    zoo_testing::assert_panics_with(
        || drop(separable.with_groups(2).init(&device)),
        &[
            "ConvNormActConfig",
            "separable requires groups = 1",
            "got groups 2",
        ],
    );
}
