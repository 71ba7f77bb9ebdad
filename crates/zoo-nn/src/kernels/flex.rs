//! [`ZooKernels`] on the flex backend: borrow the f32 storage, run the host kernels, wrap the
//! result.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;
use burn::tensor::ops::ConvOptions;

use super::ZooKernels;
use super::activation;
use super::conv::{self, Epilogue, Geometry};
use super::linear;
use super::norm::{self, Planes};
use super::optim;
use super::resize;
use super::roi::{self, RoiTaps};
use super::window_attention::{self, Windows};
use crate::ops::ResizeOptions;
use crate::ops::SgdStep;
use crate::ops::resize::host_taps;
use std::sync::Arc;

/// The tensor with a contiguous f32 view (a copy only if it is a strided view).
fn contiguous(t: FlexTensor) -> FlexTensor {
    match t.as_slice::<f32>() {
        Some(_) => t,
        None => t.to_contiguous(),
    }
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("zoo kernels: f32 contiguous tensor (checked by the caller)")
}

/// `t` contiguous and the sole owner of its buffer (copied if shared), to be written in place.
fn owned(t: FlexTensor) -> FlexTensor {
    let mut t = contiguous(t);
    if t.try_storage_mut::<f32>().is_none() {
        t = tensor(slice(&t).to_vec(), dims(&t).to_vec());
    }
    t
}

/// The values of an [`owned`] tensor, writable.
fn slice_mut(t: &mut FlexTensor) -> &mut [f32] {
    let (start, end) = t
        .layout()
        .contiguous_offsets()
        .expect("zoo kernels: contiguous tensor (made so by `owned`)");
    &mut t.storage_mut::<f32>()[start..end]
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn dims(t: &FlexTensor) -> &[usize] {
    t.layout().shape()
}

fn geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> Geometry {
    let (&[n, c_in, h, w], &[c_out, cpg, kh, kw]) = (dims(x), dims(weight)) else {
        panic!(
            "conv2d: x {:?} must be [N, C_in, H, W] and weight {:?} [C_out, C_in/groups, KH, KW]",
            dims(x),
            dims(weight)
        );
    };
    assert_eq!(
        cpg * options.groups,
        c_in,
        "conv2d: weight {:?} expects {} input channels in {} groups, x has {c_in}",
        dims(weight),
        cpg * options.groups,
        options.groups
    );
    let out = |axis: usize, k: usize, len: usize| {
        let (begin, end) = options.padding[axis];
        let padded = len + begin + end;
        let span = options.dilation[axis] * (k - 1) + 1;
        assert!(
            padded >= span,
            "conv2d: the dilated kernel ({span}) is larger than the padded input ({padded})"
        );
        (padded - span) / options.stride[axis] + 1
    };
    Geometry {
        n,
        c_in,
        h,
        w,
        c_out,
        kh,
        kw,
        stride: options.stride,
        pad: options.padding_begin(),
        dilation: options.dilation,
        groups: options.groups,
        oh: out(0, kh, h),
        ow: out(1, kw, w),
    }
}

/// `[N, C, S]` view of an `[N, C, …]` tensor.
fn planes(x: &FlexTensor) -> Planes {
    let shape = dims(x);
    Planes {
        batch: shape[0],
        channels: shape[1],
        spatial: shape[2..].iter().product(),
    }
}

fn conv2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
) -> FlexTensor {
    let (x, weight) = (contiguous(x), contiguous(weight));
    let bias = bias.map(contiguous);
    let g = geometry(&x, &weight, &options);
    let out = conv::forward(
        &g,
        slice(&x),
        slice(&weight),
        bias.as_ref().map(slice),
        None,
    );
    tensor(out, vec![g.n, g.c_out, g.oh, g.ow])
}

/// [`conv::forward`] with an [`Epilogue`].
fn conv2d_affine(
    x: FlexTensor,
    weight: FlexTensor,
    scale: FlexTensor,
    shift: FlexTensor,
    residual: Option<FlexTensor>,
    relu: bool,
    options: ConvOptions<2>,
) -> FlexTensor {
    let (x, weight) = (contiguous(x), contiguous(weight));
    let (scale, shift, residual) = (
        contiguous(scale),
        contiguous(shift),
        residual.map(contiguous),
    );
    let g = geometry(&x, &weight, &options);
    let shape = vec![g.n, g.c_out, g.oh, g.ow];
    if let Some(r) = &residual {
        assert_eq!(
            dims(r),
            shape,
            "conv2d_affine: residual must be the output's shape"
        );
    }
    let epilogue = Epilogue {
        scale: slice(&scale),
        shift: slice(&shift),
        residual: residual.as_ref().map(slice),
        relu,
    };
    let out = conv::forward(&g, slice(&x), slice(&weight), None, Some(&epilogue));
    tensor(out, shape)
}

/// `t` (`[N, C, H, W]`) as planes read in place: the first value of each of its `N·C`
/// planes in `t.storage()`, when each plane is contiguous (a channel slice of a contiguous
/// tensor, as a concatenation's backward hands out); else `t` made contiguous first.
fn plane_starts(t: FlexTensor) -> (FlexTensor, Vec<usize>) {
    let layout = t.layout();
    let (&[n, c, h, w], &[sn, sc, sh, sw]) = (layout.shape().as_slice(), layout.strides()) else {
        panic!("resize: expected [N, C, H, W], got {:?}", dims(&t));
    };
    let in_place = (sw == 1 || w == 1) && (sh == w as isize || h == 1) && sn >= 0 && sc >= 0;
    if !in_place {
        let plane = h * w;
        return (contiguous(t), (0..n * c).map(|i| i * plane).collect());
    }
    let at = layout.start_offset();
    let starts = (0..n)
        .flat_map(|i| (0..c).map(move |j| at + i * sn as usize + j * sc as usize))
        .collect();
    (t, starts)
}

/// The spatial size of an `[N, C, H, W]` tensor, which must be of rank 4.
fn spatial(t: &FlexTensor, op: &str) -> [usize; 2] {
    let &[_, _, h, w] = dims(t) else {
        panic!("{op}: expected [N, C, H, W], got {:?}", dims(t));
    };
    [h, w]
}

/// `(d_in, d_out)` of a linear layer's `[d_in, d_out]` weight, checked against `x`'s last
/// dimension.
fn linear_dims(x: &FlexTensor, weight: &FlexTensor) -> (usize, usize) {
    let &[d_in, d_out] = dims(weight) else {
        panic!(
            "linear: weight must be [d_in, d_out], got {:?}",
            dims(weight)
        );
    };
    assert_eq!(
        dims(x).last(),
        Some(&d_in),
        "linear: x {:?} must end in d_in = {d_in}",
        dims(x)
    );
    (d_in, d_out)
}

fn linear_forward(x: FlexTensor, weight: FlexTensor, bias: Option<FlexTensor>) -> FlexTensor {
    let (x, weight, bias) = (contiguous(x), contiguous(weight), bias.map(contiguous));
    let (_, d_out) = linear_dims(&x, &weight);
    if let Some(b) = &bias {
        assert_eq!(dims(b), [d_out], "linear: bias must be [d_out = {d_out}]");
    }
    let y = linear::forward(slice(&x), slice(&weight), bias.as_ref().map(slice), d_out);
    let mut shape = dims(&x).to_vec();
    *shape.last_mut().expect("rank ≥ 1") = d_out;
    tensor(y, shape)
}

/// [`norm::train_forward`] on flex tensors.
fn batch_norm_train(
    x: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    residual: Option<FlexTensor>,
    relu: bool,
    epsilon: f64,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let (x, gamma, beta) = (contiguous(x), contiguous(gamma), contiguous(beta));
    let residual = residual.map(contiguous);
    let p = planes(&x);
    let tail = norm::Tail {
        residual: residual.as_ref().map(slice),
        relu,
    };
    let (y, mean, var) =
        norm::train_forward(slice(&x), p, slice(&gamma), slice(&beta), tail, epsilon);
    (
        tensor(y, dims(&x).to_vec()),
        tensor(mean, vec![p.channels]),
        tensor(var, vec![p.channels]),
    )
}

/// [`norm::train_backward`] on flex tensors.
#[allow(clippy::too_many_arguments)]
fn batch_norm_train_backward(
    x: FlexTensor,
    gamma: FlexTensor,
    mean: FlexTensor,
    variance: FlexTensor,
    output: Option<FlexTensor>,
    epsilon: f64,
    output_grad: FlexTensor,
    residual_grad: bool,
) -> (FlexTensor, FlexTensor, FlexTensor, Option<FlexTensor>) {
    let (x, dy) = (contiguous(x), contiguous(output_grad));
    let (gamma, mean, var) = (contiguous(gamma), contiguous(mean), contiguous(variance));
    let output = output.map(contiguous);
    let p = planes(&x);
    let (dx, dgamma, dbeta, dresidual) = norm::train_backward(
        slice(&x),
        slice(&dy),
        output.as_ref().map(slice),
        p,
        slice(&gamma),
        slice(&mean),
        slice(&var),
        residual_grad,
        epsilon,
    );
    (
        tensor(dx, dims(&x).to_vec()),
        tensor(dgamma, vec![p.channels]),
        tensor(dbeta, vec![p.channels]),
        dresidual.map(|d| tensor(d, dims(&x).to_vec())),
    )
}

impl ZooKernels for Flex {
    fn zoo_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        conv2d(x, weight, None, options)
    }

    fn zoo_conv2d_bias(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        conv2d(x, weight, Some(bias), options)
    }

    fn zoo_conv2d_affine(
        x: FlexTensor,
        weight: FlexTensor,
        scale: FlexTensor,
        shift: FlexTensor,
        relu: bool,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        conv2d_affine(x, weight, scale, shift, None, relu, options)
    }

    fn zoo_conv2d_affine_add(
        x: FlexTensor,
        weight: FlexTensor,
        scale: FlexTensor,
        shift: FlexTensor,
        residual: FlexTensor,
        relu: bool,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        conv2d_affine(x, weight, scale, shift, Some(residual), relu, options)
    }

    fn zoo_conv2d_x_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let (weight, dy) = (contiguous(weight), contiguous(output_grad));
        let g = geometry(&x, &weight, &options);
        let dx = conv::input_grad(&g, slice(&weight), slice(&dy));
        tensor(dx, vec![g.n, g.c_in, g.h, g.w])
    }

    fn zoo_conv2d_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let (x, dy) = (contiguous(x), contiguous(output_grad));
        let g = geometry(&x, &weight, &options);
        let dw = conv::weight_grad(&g, slice(&x), slice(&dy));
        tensor(dw, dims(&weight).to_vec())
    }

    fn zoo_channel_sum(output_grad: FlexTensor) -> FlexTensor {
        let dy = contiguous(output_grad);
        let p = planes(&dy);
        tensor(norm::channel_sums(slice(&dy), p), vec![p.channels])
    }

    fn zoo_batch_norm_train(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        relu: bool,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        batch_norm_train(x, gamma, beta, None, relu, epsilon)
    }

    fn zoo_batch_norm_train_add(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        residual: FlexTensor,
        relu: bool,
        epsilon: f64,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        batch_norm_train(x, gamma, beta, Some(residual), relu, epsilon)
    }

    fn zoo_batch_norm_train_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        output_grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (dx, dgamma, dbeta, _) =
            batch_norm_train_backward(x, gamma, mean, variance, None, epsilon, output_grad, false);
        (dx, dgamma, dbeta)
    }

    fn zoo_batch_norm_train_relu_backward(
        x: FlexTensor,
        gamma: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        output: FlexTensor,
        epsilon: f64,
        output_grad: FlexTensor,
        residual_grad: bool,
    ) -> (FlexTensor, FlexTensor, FlexTensor, Option<FlexTensor>) {
        batch_norm_train_backward(
            x,
            gamma,
            mean,
            variance,
            Some(output),
            epsilon,
            output_grad,
            residual_grad,
        )
    }

    fn zoo_channel_affine(x: FlexTensor, scale: FlexTensor, shift: FlexTensor) -> FlexTensor {
        let (x, scale, shift) = (contiguous(x), contiguous(scale), contiguous(shift));
        let p = planes(&x);
        let y = norm::affine_forward(slice(&x), p, slice(&scale), slice(&shift));
        tensor(y, dims(&x).to_vec())
    }

    fn zoo_channel_affine_backward(
        x: FlexTensor,
        scale: FlexTensor,
        output_grad: FlexTensor,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (x, scale, dy) = (contiguous(x), contiguous(scale), contiguous(output_grad));
        let p = planes(&x);
        let (dx, dscale, dshift) = norm::affine_backward(slice(&x), slice(&dy), p, slice(&scale));
        (
            tensor(dx, dims(&x).to_vec()),
            tensor(dscale, vec![p.channels]),
            tensor(dshift, vec![p.channels]),
        )
    }

    fn zoo_resize(x: FlexTensor, size: [usize; 2], options: ResizeOptions) -> FlexTensor {
        let [h, w] = spatial(&x, "resize");
        let rows = host_taps(h, size[0], &options);
        let cols = host_taps(w, size[1], &options);
        let (x, starts) = plane_starts(x);
        let y = resize::forward(x.storage(), &starts, h, w, rows.as_ref(), cols.as_ref());
        let mut shape = dims(&x).to_vec();
        shape[2..].copy_from_slice(&size);
        tensor(y, shape)
    }

    fn zoo_resize_backward(
        output_grad: FlexTensor,
        input_size: [usize; 2],
        options: ResizeOptions,
    ) -> FlexTensor {
        let [oh, ow] = spatial(&output_grad, "resize backward");
        let [h, w] = input_size;
        let rows = host_taps(h, oh, &options);
        let cols = host_taps(w, ow, &options);
        let (dy, starts) = plane_starts(output_grad);
        let dx = resize::backward(dy.storage(), &starts, h, w, rows.as_ref(), cols.as_ref());
        let mut shape = dims(&dy).to_vec();
        shape[2..].copy_from_slice(&input_size);
        tensor(dx, shape)
    }

    fn zoo_roi_pool(x: FlexTensor, taps: Arc<RoiTaps>) -> FlexTensor {
        let x = contiguous(x);
        let &[n, c, h, w] = dims(&x) else {
            panic!("roi pooling: expected [N, C, H, W], got {:?}", dims(&x));
        };
        let y = roi::forward(slice(&x), [n, c, h, w], &taps);
        tensor(y, vec![taps.rois(), c, taps.pooled[0], taps.pooled[1]])
    }

    fn zoo_roi_pool_backward(
        output_grad: FlexTensor,
        taps: Arc<RoiTaps>,
        input_shape: [usize; 4],
    ) -> FlexTensor {
        let dy = contiguous(output_grad);
        let dx = roi::backward(slice(&dy), input_shape, &taps);
        tensor(dx, input_shape.to_vec())
    }

    fn zoo_linear(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        linear_forward(x, weight, None)
    }

    fn zoo_linear_bias(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        linear_forward(x, weight, Some(bias))
    }

    fn zoo_linear_x_backward(weight: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let (weight, dy) = (contiguous(weight), contiguous(output_grad));
        let &[d_in, _] = dims(&weight) else {
            panic!(
                "linear backward: weight must be [d_in, d_out], got {:?}",
                dims(&weight)
            );
        };
        let dx = linear::x_backward(slice(&weight), slice(&dy), d_in);
        let mut shape = dims(&dy).to_vec();
        *shape.last_mut().expect("rank ≥ 1") = d_in;
        tensor(dx, shape)
    }

    fn zoo_linear_weight_backward(x: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let (x, dy) = (contiguous(x), contiguous(output_grad));
        let d_in = *dims(&x).last().expect("rank ≥ 1");
        let d_out = *dims(&dy).last().expect("rank ≥ 1");
        let dw = linear::weight_backward(slice(&x), slice(&dy), d_in, d_out);
        tensor(dw, vec![d_in, d_out])
    }

    fn zoo_last_dim_sum(output_grad: FlexTensor) -> FlexTensor {
        let dy = contiguous(output_grad);
        let d_out = *dims(&dy).last().expect("rank ≥ 1");
        tensor(linear::bias_backward(slice(&dy), d_out), vec![d_out])
    }

    fn zoo_window_attention(
        qkv: FlexTensor,
        qkv_bias: FlexTensor,
        rel_bias: FlexTensor,
        heads: usize,
        window: [usize; 2],
        shift: [usize; 2],
        scale: f32,
    ) -> FlexTensor {
        let (qkv, qkv_bias, rel_bias) =
            (contiguous(qkv), contiguous(qkv_bias), contiguous(rel_bias));
        let &[b, h, w, c3] = dims(&qkv) else {
            panic!(
                "window attention: qkv must be [B, H, W, 3·A], got {:?}",
                dims(&qkv)
            );
        };
        let n = window[0] * window[1];
        assert!(
            heads > 0 && c3 % (3 * heads) == 0,
            "window attention: qkv's last dimension ({c3}) must be 3·heads·head_dim with heads = {heads}"
        );
        assert_eq!(
            dims(&qkv_bias),
            [c3],
            "window attention: qkv_bias must be [{c3}]"
        );
        assert_eq!(
            dims(&rel_bias),
            [heads, n, n],
            "window attention: rel_bias must be [heads, wh·ww, wh·ww]"
        );
        let g = Windows {
            map: [b, h, w],
            heads,
            head_dim: c3 / (3 * heads),
            window,
            shift,
            scale,
        };
        let y = window_attention::forward(slice(&qkv), slice(&qkv_bias), slice(&rel_bias), g);
        tensor(y, vec![b, h, w, c3 / 3])
    }

    fn zoo_sgd_momentum(
        param: FlexTensor,
        grad: FlexTensor,
        velocity: FlexTensor,
        step: SgdStep,
    ) -> (FlexTensor, FlexTensor) {
        let (mut param, grad, mut velocity) = (owned(param), contiguous(grad), owned(velocity));
        assert!(
            dims(&grad) == dims(&param) && dims(&velocity) == dims(&param),
            "sgd: parameter {:?}, gradient {:?} and momentum {:?} must have one shape",
            dims(&param),
            dims(&grad),
            dims(&velocity)
        );
        optim::sgd_momentum(
            slice_mut(&mut param),
            slice_mut(&mut velocity),
            slice(&grad),
            step,
        );
        (param, velocity)
    }

    fn zoo_gelu(x: FlexTensor) -> FlexTensor {
        let x = contiguous(x);
        tensor(activation::gelu(slice(&x)), dims(&x).to_vec())
    }

    fn zoo_gelu_backward(x: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let (x, dy) = (contiguous(x), contiguous(output_grad));
        tensor(
            activation::gelu_backward(slice(&x), slice(&dy)),
            dims(&x).to_vec(),
        )
    }
}
